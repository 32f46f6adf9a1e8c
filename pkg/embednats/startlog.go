package embednats

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// startLog is the server's logger while and after it starts: it passes the
// log on to next (when not nil) and keeps the first fatal error. The server
// reports a port it cannot take (or a store it cannot open) only to its
// logger's Fatalf, and then never becomes ready: without this Start would
// wait out its whole timeout and say only that.
type startLog struct {
	next  server.Logger
	once  sync.Once
	fatal chan error // holds the first fatal error
}

func newStartLog(next server.Logger) *startLog {
	return &startLog{next: next, fatal: make(chan error, 1)}
}

// Fatalf keeps the error: a listener's *net.OpError as it is, which names
// the address ("listen tcp 127.0.0.1:4222: bind: address already in use")
// and lets errors.Is find syscall.EADDRINUSE; any other with the server's
// message.
func (l *startLog) Fatalf(format string, v ...any) {
	err := errors.New(fmt.Sprintf(format, v...))
	for _, a := range v {
		if oe, ok := a.(*net.OpError); ok {
			err = oe
			break
		}
	}
	l.once.Do(func() { l.fatal <- err })
	if l.next != nil {
		l.next.Fatalf(format, v...)
	}
}

func (l *startLog) Noticef(format string, v ...any) {
	if l.next != nil {
		l.next.Noticef(format, v...)
	}
}

func (l *startLog) Warnf(format string, v ...any) {
	if l.next != nil {
		l.next.Warnf(format, v...)
	}
}

func (l *startLog) Errorf(format string, v ...any) {
	if l.next != nil {
		l.next.Errorf(format, v...)
	}
}

func (l *startLog) Debugf(format string, v ...any) {
	if l.next != nil {
		l.next.Debugf(format, v...)
	}
}

func (l *startLog) Tracef(format string, v ...any) {
	if l.next != nil {
		l.next.Tracef(format, v...)
	}
}

package embednats

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A port another program holds fails Start at once, naming the address,
// as a taken HTTP port does: not after the whole start timeout, with
// nothing said of the port.
func TestStart_TakenPortFailsAtOnceNamingIt(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name   string
		logger *recordingLogger
	}{
		{"without-logger", nil},
		{"with-logger", &recordingLogger{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Options{Port: port, StoreDir: t.TempDir()}
			if tc.logger != nil {
				o.Logger = tc.logger
			}
			began := time.Now()
			s, err := Start(o)
			took := time.Since(began)
			if err == nil {
				s.Shutdown()
				t.Fatalf("started on port %d, which another listener holds", port)
			}
			if took > 3*time.Second {
				t.Errorf("failed after %s: not at once", took)
			}
			if addr := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name %s", err, addr)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error %q is not EADDRINUSE: a caller cannot tell a taken port", err)
			}
			// A caller's logger still gets the server's own line.
			if tc.logger != nil && len(tc.logger.fatals()) == 0 {
				t.Error("the caller's logger got no fatal line")
			}
		})
	}
}

// A free port still starts, and the server then accepts connections.
func TestStart_FreePortStarts(t *testing.T) {
	t.Parallel()
	s, err := Start(Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// recordingLogger keeps the fatal lines a server logs.
type recordingLogger struct {
	mu  sync.Mutex
	got []string
}

func (l *recordingLogger) fatals() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func (l *recordingLogger) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf(format, v...))
}

func (l *recordingLogger) Noticef(string, ...any) {}
func (l *recordingLogger) Warnf(string, ...any)   {}
func (l *recordingLogger) Errorf(string, ...any)  {}
func (l *recordingLogger) Debugf(string, ...any)  {}
func (l *recordingLogger) Tracef(string, ...any)  {}

package executor

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
)

// maxLine bounds one live output line; a longer one is sent in pieces.
const maxLine = 4096

// tail keeps the last max bytes of a run's output and publishes complete
// lines to the run's live output subject for `hookrun runs watch`.
type tail struct {
	mu       sync.Mutex
	max      int
	buf      []byte // holds up to 2*max bytes; the last max are the tail
	dropped  bool
	line     bytes.Buffer
	nc       *nats.Conn
	subject  string
	lines    int // lines published so far, the last one's number
	attempt  string
	delivery string
}

// newTail keeps the output of a run's attempt; its live lines carry the
// attempt's number and the delivery, so a watcher tells a late line of an
// earlier attempt (or of another delivery's run under the same run id)
// from the next attempt's.
func newTail(max int, nc *nats.Conn, subject string, attempt int, delivery string) *tail {
	return &tail{max: max, nc: nc, subject: subject, attempt: strconv.Itoa(attempt), delivery: delivery}
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if t.nc != nil {
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			chunk := p
			if i >= 0 {
				chunk = p[:i+1]
			}
			if room := maxLine - t.line.Len(); len(chunk) > room {
				chunk = chunk[:room]
			}
			t.line.Write(chunk)
			t.keep(chunk)
			p = p[len(chunk):]
			if t.line.Len() >= maxLine || chunk[len(chunk)-1] == '\n' {
				t.publishLine()
			}
		}
		return n, nil
	}
	t.keep(p)
	return n, nil
}

// keep appends p to the tail; the buffer is compacted only when it reaches
// twice the bound, so chatty output does not copy the tail on every write.
func (t *tail) keep(p []byte) {
	if len(p) > t.max {
		p = p[len(p)-t.max:]
		t.dropped = true
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		n := copy(t.buf, t.buf[len(t.buf)-t.max:])
		t.buf = t.buf[:n]
		t.dropped = true
	}
}

// Flush publishes a last partial line.
func (t *tail) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nc != nil && t.line.Len() > 0 {
		t.publishLine()
	}
}

// publishLine publishes the pending line, numbered, and starts the next.
func (t *tail) publishLine() {
	t.lines++
	m := &nats.Msg{Subject: t.subject, Data: t.line.Bytes(), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(t.lines)}, bus.HeaderAttempt: []string{t.attempt}, bus.HeaderDelivery: []string{t.delivery}}}
	_ = t.nc.PublishMsg(m)
	t.line.Reset()
}

// Published returns the output published live so far (within the tail's
// bound, marked when some was dropped) and the last published line's
// number: what a client that joins a running run has missed.
func (t *tail) Published() (string, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf[:max(0, len(t.buf)-t.line.Len())] // without the line not yet published
	dropped := t.dropped
	if len(b) > t.max {
		b, dropped = b[len(b)-t.max:], true
	}
	if dropped {
		return "[…output truncated…]\n" + string(b), t.lines
	}
	return string(b), t.lines
}

// String returns the tail, marked when output was dropped.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		t.dropped = true
	}
	if t.dropped {
		return "[…output truncated…]\n" + string(b)
	}
	return string(b)
}

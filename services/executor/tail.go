package executor

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
)

// maxLine bounds one live output line; a longer one is sent in pieces.
//
// A line's text keeps its "\n", so only the last piece of a long line ends
// with one: a piece without it continues on the next (as does the last line
// of an output that does not end one). Consumers that print the text as it
// comes (`hookrun runs watch`) show the line whole, and ones that take each
// message for a line still read it; keys passes the pieces on unchanged.
// Each piece is a message of its own, numbered like a line, so the snapshot
// and the line numbers need nothing else. A piece is cut only between two
// UTF-8 characters: keys sends each as a JSON string, and half a character
// would reach the client as U+FFFD.
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
	secrets  []string // masked wherever output leaves the executor (see maskable)
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
			switch {
			case chunk[len(chunk)-1] == '\n':
				t.publish(t.line.Len())
			case t.line.Len() >= maxLine:
				t.publish(secretSafeEnd(t.line.Bytes(), pieceEnd(t.line.Bytes()), t.secrets))
			}
		}
		return n, nil
	}
	t.keep(p)
	return n, nil
}

// pieceEnd returns where to cut a line that has reached maxLine bytes: at
// maxLine, or before a character that the first maxLine bytes hold only
// the start of (the rest of it may still be on its way through the pipe).
// Bytes that are not UTF-8 are cut anywhere.
func pieceEnd(line []byte) int {
	for i := maxLine - 1; i > maxLine-utf8.UTFMax; i-- {
		if utf8.RuneStart(line[i]) {
			if utf8.FullRune(line[i:maxLine]) {
				return maxLine
			}
			return i
		}
	}
	return maxLine
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
		t.publish(t.line.Len())
	}
}

// publish publishes the pending line's first n bytes, numbered; the rest
// (the start of a character a piece was not to split) begins the next.
func (t *tail) publish(n int) {
	t.lines++
	b := t.line.Bytes()
	m := &nats.Msg{Subject: t.subject, Data: mask(b[:n], t.secrets), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(t.lines)}, bus.HeaderAttempt: []string{t.attempt}, bus.HeaderDelivery: []string{t.delivery}}}
	_ = t.nc.PublishMsg(m)
	t.line.Truncate(copy(b, b[n:]))
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
		return message.OutputTruncated + string(maskCut(b, t.secrets, true, false)), t.lines
	}
	return string(mask(b, t.secrets)), t.lines
}

// Lines returns the number of the last line published live.
func (t *tail) Lines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lines
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
		return message.OutputTruncated + string(maskCut(b, t.secrets, true, false))
	}
	return string(mask(b, t.secrets))
}

// masked stands for a secret's value in output.
const masked = "***"

// minMasked is the shortest piece of a secret masked: shorter ones would
// match innocent output.
const minMasked = 6

// maskable is what of secret values is masked in output: a one-line value
// of at least minMasked bytes, and of a multi-line value (a PEM key, a
// kubeconfig) each line of at least minMaskedLine bytes (output is masked
// line by line; shorter lines of such values, "apiVersion: v1" or "},",
// are everyone's). Values and lines are trimmed of surrounding white space
// (a job may print them unindented); longest first, so that a value
// containing another is masked whole.
func maskable(values ...string) []string {
	var out []string
	add := func(v string, least int) {
		if v = strings.TrimSpace(v); len(v) >= least && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, v := range values {
		if lines := strings.Split(strings.TrimSpace(v), "\n"); len(lines) > 1 {
			for _, line := range lines {
				add(line, minMaskedLine)
			}
			continue
		}
		add(v, minMasked)
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// minMaskedLine is the shortest line of a multi-line secret masked.
const minMaskedLine = 16

// mask replaces every secret in b with masked, overlapping ones as one.
// Like CI systems, it keeps a job from showing its credentials in its
// output by accident (an echoed environment, a receiver's error page
// quoting the request): a job set on showing one can still encode it.
func mask(b []byte, secrets []string) []byte {
	var cover []bool
	for _, s := range secrets {
		for i := 0; i < len(b); {
			j := bytes.Index(b[i:], []byte(s))
			if j < 0 {
				break
			}
			if cover == nil {
				cover = make([]bool, len(b))
			}
			for k := i + j; k < i+j+len(s); k++ {
				cover[k] = true
			}
			i += j + 1
		}
	}
	if cover == nil {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if !cover[i] {
			out = append(out, b[i])
			i++
			continue
		}
		for i < len(b) && cover[i] {
			i++
		}
		out = append(out, masked...)
	}
	return out
}

// maskCut is mask for output cut short: at its start (front: the kept
// tail of longer output) or at its end (back: the first bytes of a longer
// answer). A secret the cut went through is there only in part, which mask
// would not find: the longest such part at a cut edge is masked too, down
// to a single byte (what it hides at the edge of a cut is noise).
func maskCut(b []byte, secrets []string, front, back bool) []byte {
	head, tail := 0, 0 // bytes to mask at the start and at the end
	for _, s := range secrets {
		for k := min(len(s)-1, len(b)); k > head && front; k-- {
			if bytes.HasPrefix(b, []byte(s[len(s)-k:])) {
				head = k
				break
			}
		}
		for k := min(len(s)-1, len(b)); k > tail && back; k-- {
			if bytes.HasSuffix(b, []byte(s[:k])) {
				tail = k
				break
			}
		}
	}
	if head+tail > len(b) {
		return []byte(masked)
	}
	mid := mask(b[head:len(b)-tail], secrets)
	if head == 0 && tail == 0 {
		return mid
	}
	out := make([]byte, 0, len(mid)+2*len(masked))
	if head > 0 {
		out = append(out, masked...)
	}
	out = append(out, mid...)
	if tail > 0 {
		out = append(out, masked...)
	}
	return out
}

// secretSafeEnd moves end, where a piece of a long line is to be cut,
// back before the start of a secret the piece ends inside: the two pieces
// are masked apart, and each would hold only part of it, unmasked.
func secretSafeEnd(line []byte, end int, secrets []string) int {
	cut := end
	for _, s := range secrets {
		for p := max(1, end-len(s)+1); p < end; p++ {
			if bytes.HasPrefix([]byte(s), line[p:end]) {
				cut = min(cut, p)
				break
			}
		}
	}
	return cut
}

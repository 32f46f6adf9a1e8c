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
// would reach the client as U+FFFD. Nor is it cut inside a secret, which
// each piece, masked apart, would show in part (pieceLen).
const maxLine = 4096

// tail keeps the last max bytes of a run's output and publishes complete
// lines to the run's live output subject for `hookrun runs watch`.
type tail struct {
	mu       sync.Mutex
	max      int
	buf      []byte // holds up to 2*max bytes; the last max are the tail
	dropped  bool
	line     bytes.Buffer
	head     int // bytes at line's start that go on a secret the last piece was cut inside (pieceLen)
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
			// A line is taken in up to maxLine bytes, a piece's worth. One
			// held back for a secret longer than a piece (pieceLen) grows
			// by doubling, so that it is scanned a bounded number of times.
			room := maxLine - t.line.Len()
			if room <= 0 {
				room = t.line.Len()
			}
			if len(chunk) > room {
				chunk = chunk[:room]
			}
			t.line.Write(chunk)
			t.keep(chunk)
			p = p[len(chunk):]
			t.publishPieces(chunk[len(chunk)-1] == '\n')
		}
		return n, nil
	}
	t.keep(p)
	return n, nil
}

// publishPieces publishes the pending line: whole when it has ended
// (final: its "\n" came, or the output ended), else in pieces while it
// holds a piece's worth.
func (t *tail) publishPieces(final bool) {
	for t.line.Len() > 0 && (final || t.line.Len() >= maxLine) {
		n, cover, head := pieceLen(t.line.Bytes(), t.secrets, t.head, final)
		if n == 0 {
			return // the line starts with what may be a secret: wait for the rest
		}
		t.publish(n, cover)
		t.head = head
	}
}

// pieceLen returns how much of the pending line to publish as the next
// piece, 0 to wait for more of it. A piece is masked apart from the next,
// so it is not cut inside a secret, nor inside what may still become one
// (the line's end is the start of a secret whose rest has not come yet):
// the cut moves back before it. Where the line starts with a secret longer
// than a piece, the piece is the whole secret, masked: "***"; one not
// whole yet is waited for (at most its length: environment values are
// under 128 KiB). So every piece is masked as the stored output is, and
// the pieces published make the start of the line, masked, exactly.
//
// Only output that is secrets end to end for longer than maxLine and the
// longest secret (one printed over and over, without a "\n") is cut
// inside one, so that the line held stays bounded: the piece is "***",
// and the bytes of the secrets it was cut inside that begin the rest
// (next, for the next call's head) are masked with the next piece.
//
// final says the line has ended: nothing more may complete a secret. The
// line's first head bytes are masked whatever they are. cover is which
// bytes of the line are masked, for publish.
func pieceLen(line []byte, secrets []string, head int, final bool) (n int, cover []bool, next int) {
	cover = coverOf(line, secrets)
	if head > 0 {
		if cover == nil {
			cover = make([]bool, len(line))
		}
		for i := range min(head, len(line)) {
			cover[i] = true
		}
	}
	if final && len(line) <= maxLine {
		return len(line), cover, 0
	}
	end := pieceEnd(line)
	if len(secrets) == 0 {
		return end, nil, 0
	}
	open := len(line) // where a secret that may go on past the line's end starts
	if !final {
		open = openSecret(line, secrets)
	}
	covered := func(i int) bool {
		if i == len(line) {
			return open < len(line) // the open secret goes on
		}
		return i >= open || cover != nil && cover[i]
	}
	// A cut at c is inside a secret when both bytes around it are.
	for c := end; c > 0; c-- {
		if !covered(c-1) || !covered(c) {
			return c, cover, 0
		}
	}
	for c := end + 1; c <= len(line); c++ {
		if !covered(c-1) || !covered(c) {
			return c, cover, 0 // after a secret that opens the line, longer than a piece
		}
	}
	longest := 0
	for _, s := range secrets {
		longest = max(longest, len(s))
	}
	if len(line) < maxLine+longest {
		return 0, nil, 0
	}
	// Secrets end to end from the line's start; an open one, if any, is
	// shorter than the longest, so it starts after end.
	next = end
	for next < len(line) && cover[next] {
		next++
	}
	return end, cover, next - end
}

// openSecret returns where the longest end of line that is the start of a
// secret (not the whole of it) begins: a secret the rest of the output may
// complete. len(line) when there is none.
func openSecret(line []byte, secrets []string) int {
	open := len(line)
	for _, s := range secrets {
		for p := max(0, len(line)-len(s)+1); p < open; p++ {
			j := bytes.IndexByte(line[p:open], s[0])
			if j < 0 {
				break
			}
			p += j
			if string(line[p:]) == s[:len(line)-p] {
				open = p
				break
			}
		}
	}
	return open
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
	// Beyond the last max bytes, the line held back (up to about twice a
	// piece and the longest secret) and the longest secret once more: what
	// goes before the kept tail tells maskCut whether it starts inside a
	// secret. The bytes kept follow each other in the output.
	keep := t.max + 2*maxLine + 3*longestOf(t.secrets)
	if len(p) > t.max {
		// What was kept, and what of p goes, is no longer kept.
		t.dropped = t.dropped || len(t.buf) > 0 || len(p) > keep
		p = p[max(0, len(p)-keep):]
		t.buf = append(t.buf[:0], p...)
		return
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*keep {
		n := copy(t.buf, t.buf[len(t.buf)-keep:])
		t.buf = t.buf[:n]
		t.dropped = true
	}
}

// longestOf is the length of the longest of secrets.
func longestOf(secrets []string) int {
	n := 0
	for _, s := range secrets {
		n = max(n, len(s))
	}
	return n
}

// Flush publishes a last partial line.
func (t *tail) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nc != nil {
		t.publishPieces(true)
	}
}

// publish publishes the pending line's first n bytes, numbered, masked
// where cover (coverOf the line, whose first n bytes end no secret short)
// says; the rest (the start of a character or of a secret a piece was not
// to split) begins the next.
func (t *tail) publish(n int, cover []bool) {
	t.lines++
	b := t.line.Bytes()
	if cover != nil {
		cover = cover[:n]
	}
	m := &nats.Msg{Subject: t.subject, Data: maskWith(b[:n], cover), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(t.lines)}, bus.HeaderAttempt: []string{t.attempt}, bus.HeaderDelivery: []string{t.delivery}}}
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
	dropped, before := t.dropped, []byte(nil)
	if len(b) > t.max {
		b, before, dropped = b[len(b)-t.max:], b[:len(b)-t.max], true
	}
	// Published up to inside a secret (pieceLen), b ends with part of it,
	// and the line held goes on with the rest.
	cut := t.head > 0
	if dropped {
		return message.OutputTruncated + string(maskEdges(b, before, t.line.Bytes(), !t.dropped, t.secrets, true, cut)), t.lines
	}
	return string(maskCut(b, nil, t.line.Bytes(), t.secrets, false, cut)), t.lines
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
	b, before, wholeBefore := t.buf, []byte(nil), !t.dropped
	if len(b) > t.max {
		b, before = b[len(b)-t.max:], b[:len(b)-t.max]
		t.dropped = true
	}
	if t.dropped {
		return message.OutputTruncated + string(maskEdges(b, before, nil, wholeBefore, t.secrets, true, false))
	}
	return string(mask(b, t.secrets))
}

// meets tells whether the bytes known beside a cut (next: those after it,
// else those before it) agree with part, the rest of a secret cut there:
// as much of them as there is of part, or all of them when fewer.
func meets(known []byte, part string, next bool) bool {
	n := min(len(known), len(part))
	if next {
		return string(known[:n]) == part[:n]
	}
	return string(known[len(known)-n:]) == part[len(part)-n:]
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
	return maskWith(b, coverOf(b, secrets))
}

// maskWith replaces each run of the bytes of b that cover marks with
// masked; a nil cover marks none.
func maskWith(b []byte, cover []bool) []byte {
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

// coverOf tells which bytes of b are in a secret; nil when none is.
func coverOf(b []byte, secrets []string) []bool {
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
	return cover
}

// maskCut is mask for output cut short: at its start (front: the kept
// tail of longer output) or at its end (back: the first bytes of a longer
// answer). A secret the cut went through is there only in part, which mask
// would not find: the longest such part at a cut edge is masked too, down
// to a single byte (what it hides at the edge of a cut is noise).
//
// before and after are the bytes the cut left out next to b, as many as
// are known (nil: none). A part at an edge counts only when the secret goes
// on into them: output cut between two secrets end to end ends with a
// whole one, whose last byte may also be the secret's first; masking that
// byte as a part would shift what mask sees, and it would find none of the
// secrets between (a 100-byte random secret shows in about 1 snapshot in 30
// otherwise).
func maskCut(b, before, after []byte, secrets []string, front, back bool) []byte {
	return maskEdges(b, before, after, false, secrets, front, back)
}

// maskEdges is maskCut; wholeBefore says before is all the output before b:
// a secret cut at b's start began in it, or not at all.
func maskEdges(b, before, after []byte, wholeBefore bool, secrets []string, front, back bool) []byte {
	head, tail := 0, 0 // bytes to mask at the start and at the end
	for _, s := range secrets {
		for k := min(len(s)-1, len(b)); k > head && front; k-- {
			if bytes.HasPrefix(b, []byte(s[len(s)-k:])) && meets(before, s[:len(s)-k], false) &&
				(!wholeBefore || len(before) >= len(s)-k) {
				head = k
				break
			}
		}
		for k := min(len(s)-1, len(b)); k > tail && back; k-- {
			if bytes.HasSuffix(b, []byte(s[:k])) && meets(after, s[k:], true) {
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

package executor

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A line longer than maxLine goes live in pieces that a watcher can put
// back together: each piece is whole UTF-8 characters (keys sends it as a
// JSON string, where half a character becomes U+FFFD), only the last piece
// of a line ends with its "\n", the pieces are numbered like lines, and the
// snapshot holds exactly what was published.
func TestTail_SplitsLongLinesBetweenCharactersAndEndsOnlyTheLastPiece(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	cases := []struct {
		name   string
		output string
	}{
		{"two-byte characters, 6000 bytes", strings.Repeat("é", 3000) + "\n"},
		{"two-byte characters after one byte", "x" + strings.Repeat("é", 3000) + "\n"},
		{"three-byte characters, 9000 bytes", strings.Repeat("€", 3000) + "\n"},
		{"four-byte characters after two bytes", "ab" + strings.Repeat("🙂", 2500) + "\n"},
		{"lines around a long one, the last unended", "short\n" + strings.Repeat("€", 2000) + "\nnext\n" + strings.Repeat("é", 2100)},
		{"a long ASCII line", strings.Repeat("a", 2*maxLine+10) + "\n"},
	}
	for i, tc := range cases {
		// Written at once, and in writes of 7 bytes, which split
		// characters between writes as a pipe may.
		for _, size := range []int{0, 7} {
			t.Run(fmt.Sprintf("%s, writes of %d", tc.name, size), func(t *testing.T) {
				subject := bus.OutputSubject(fmt.Sprintf("run_split%d_%d", i, size))
				sub, err := nc.SubscribeSync(subject)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sub.Unsubscribe() })
				tl := newTail(1<<20, nc, subject, 1, "dlv_1")
				for p := []byte(tc.output); len(p) > 0; {
					n := len(p)
					if size > 0 {
						n = min(n, size)
					}
					_, _ = tl.Write(p[:n])
					p = p[n:]
				}
				tl.Flush()

				var pieces []string
				var all strings.Builder
				for all.Len() < len(tc.output) {
					m, err := sub.NextMsg(5 * time.Second)
					if err != nil {
						t.Fatalf("after %d pieces (%d bytes): %v", len(pieces), all.Len(), err)
					}
					if n := m.Header.Get(bus.HeaderLine); n != strconv.Itoa(len(pieces)+1) {
						t.Fatalf("piece %d numbered %q", len(pieces)+1, n)
					}
					pieces = append(pieces, string(m.Data))
					all.Write(m.Data)
				}
				if all.String() != tc.output {
					t.Fatalf("the pieces do not make the output:\n got %q\nwant %q", all.String(), tc.output)
				}
				for j, p := range pieces {
					last := j == len(pieces)-1
					switch {
					case !utf8.ValidString(p):
						t.Errorf("piece %d of %d splits a character: %q…%q", j+1, len(pieces), p[:min(8, len(p))], p[max(0, len(p)-8):])
					case len(p) > maxLine:
						t.Errorf("piece %d has %d bytes, over %d", j+1, len(p), maxLine)
					case strings.Contains(strings.TrimSuffix(p, "\n"), "\n"):
						t.Errorf("piece %d holds more than one line: %q", j+1, p)
					case !last && !strings.HasSuffix(p, "\n") && len(p) <= maxLine-utf8.UTFMax:
						t.Errorf("piece %d cut early, at %d bytes, neither a line's end nor a character's before maxLine", j+1, len(p))
					}
				}
				if snap, n := tl.Published(); snap != tc.output || n != len(pieces) {
					t.Fatalf("snapshot up to line %d (want %d), %d bytes, want what was published", n, len(pieces), len(snap))
				}
			})
		}
	}
}

// A piece cut before a character waits for the rest of it: the snapshot
// taken meanwhile holds the pieces published, not the character's start,
// and the next piece begins with the whole character.
func TestTail_HoldsACharactersStartUntilItsRestComes(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testenv.StartNATS(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subject := bus.OutputSubject("run_held")
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	tl := newTail(1<<20, nc, subject, 1, "dlv_1")
	line := strings.Repeat("a", maxLine-1) + "€"
	_, _ = tl.Write([]byte(line[:maxLine])) // "a"… and the first byte of "€"
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != line[:maxLine-1] {
		t.Fatalf("first piece %d bytes ending %q, want the %d bytes before the character", len(m.Data), m.Data[max(0, len(m.Data)-4):], maxLine-1)
	}
	if snap, n := tl.Published(); snap != line[:maxLine-1] || n != 1 {
		t.Fatalf("snapshot of %d bytes up to line %d, want the first piece", len(snap), n)
	}
	_, _ = tl.Write([]byte(line[maxLine:] + "\n"))
	if m, err = sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "€\n" || m.Header.Get(bus.HeaderLine) != "2" {
		t.Fatalf("second piece %q numbered %s, want \"€\\n\" numbered 2", m.Data, m.Header.Get(bus.HeaderLine))
	}
}

// A run's record says how many lines it published live, so that a client
// resuming its output after a line's number knows which of the tail's
// lines it has (keys' SSE stream).
func TestExecutor_RecordCountsTheLinesPublished(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	r := e.final(e.submit(e.script("three-lines", `printf 'a\nb\nc'`), `{}`), 10*time.Second)
	want(t, "output", r.Output, "a\nb\nc")
	want(t, "output lines", r.OutputLines, 3)
}

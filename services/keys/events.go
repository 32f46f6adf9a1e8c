package keys

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// runEvents streams a run as server-sent events until it ends: every
// status event from the first ("event: status", the whole record), and the
// job's output lines ("event: output", a JSON string per line).
//
// Output lines travel on core NATS, apart from the stored statuses, so a
// client may join after some were published, and the last ones may still
// be in flight when the final status arrives. A client that joins a running
// run first gets what it has printed so far, from the executor running it
// (bus.OutputSnapshotSubject; lines are numbered, so the live lines that
// snapshot holds are not sent twice). The final record carries the output's
// tail, so before the final status the stream sends what of it was not sent
// live: a run that ended before the client came shows its whole output, one
// followed from its start loses no trailing line.
func (s *Service) runEvents(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	// Subscribe before reading the run, so no line falls between the two.
	lines := make(chan outputLine, 1024)
	sub, err := s.nc.Subscribe(bus.OutputSubject(id), func(m *nats.Msg) {
		n, _ := strconv.Atoi(m.Header.Get(bus.HeaderLine))
		select {
		case lines <- outputLine{text: m.Data, n: n}:
		default: // a slow reader loses live lines, never the statuses
		}
	})
	if err != nil {
		return errUnavailable
	}
	defer func() { _ = sub.Unsubscribe() }()
	r, err := s.loadRun(c, id)
	if err != nil {
		return err
	}
	events, err := runstatus.Watch(ctx, s.js, r.Namespace, id)
	if err != nil {
		return errUnavailable
	}
	var snapshot string
	var seen int // the live lines the snapshot holds: 1..seen
	attempt := r.Attempt
	if r.Status == message.StatusRunning {
		snapshot, seen = s.outputSoFar(id)
	}
	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()

	var sent strings.Builder
	output := func(line string) {
		sent.WriteString(line)
		b, _ := json.Marshal(line)
		fmt.Fprintf(w, "event: output\ndata: %s\n\n", b)
	}
	for _, line := range strings.SplitAfter(snapshot, "\n") {
		if line != "" {
			output(line)
		}
	}
	w.Flush()
	live := func(l outputLine) {
		if l.n == 0 || l.n > seen {
			output(string(l.text))
		}
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Attempt != attempt {
				// Another attempt (redelivered, perhaps to another
				// executor) numbers its lines from 1 again.
				attempt, seen = ev.Attempt, 0
			}
			if message.Final(ev.Status) {
				for drained := false; !drained; {
					select {
					case line := <-lines:
						live(line)
					default:
						drained = true
					}
				}
				for _, line := range strings.SplitAfter(unsent(ev.Output, sent.String()), "\n") {
					if line != "" {
						output(line)
					}
				}
			}
			b, _ := json.Marshal(viewOfRun(&ev))
			fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
			w.Flush()
		case line := <-lines:
			live(line)
			w.Flush()
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			w.Flush()
		}
	}
}

// outputLine is a live output line and its number (0: not numbered).
type outputLine struct {
	text []byte
	n    int
}

// snapshotTimeout bounds the wait for a running run's output so far; an
// executor that does not answer in time (or one too old to) leaves the
// client with the live lines from now on.
const snapshotTimeout = 250 * time.Millisecond

// outputSoFar asks the executor running run id for the output it has
// published so far, and the number of its last line.
func (s *Service) outputSoFar(id string) (string, int) {
	m, err := s.nc.Request(bus.OutputSnapshotSubject(id), nil, snapshotTimeout)
	if err != nil {
		return "", 0
	}
	n, err := strconv.Atoi(m.Header.Get(bus.HeaderLine))
	if err != nil {
		return "", 0
	}
	return string(m.Data), n
}

// unsent returns the part of a run's output (its tail) that follows what
// was already sent live: all of it when nothing was, the rest after the
// sent text when the sent text is found, and nothing when it is not (lines
// were lost, or the tail no longer holds them).
func unsent(output, sent string) string {
	switch {
	case sent == "":
		return output
	case strings.HasPrefix(output, sent):
		return output[len(sent):]
	}
	if i := strings.LastIndex(output, sent); i >= 0 {
		return output[i+len(sent):]
	}
	return ""
}

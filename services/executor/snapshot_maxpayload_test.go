package executor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The answer to a snapshot request is also an executor's "I still run it"
// (runningElsewhere): output so far over NATS' max_payload must not
// silence it, or the executor asking takes the live run over and runs it a
// second time. The answer keeps the output's end that fits, marked as cut;
// MaxOutput is bounded by max_payload at start-up, and an output kept
// under a larger bound (a server with a smaller max_payload reconnected
// to) is cut when answered.
func TestExecutor_AnswersForOutputOverMaxPayloadWithItsEnd(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	e := newXEnvOn(t, testenv.StartNATSWith(t, embednats.Options{MaxPayload: maxPayload}))
	e.conf.MaxOutput = 256 << 10
	x := e.start(nil)
	// 2000 lines of 100 bytes: 200 KiB, over max_payload.
	job := e.script("long", `i=1; while [ $i -le 2000 ]; do printf 'line %04d %090d\n' $i 0; i=$((i+1)); done; echo ready > "$OUT/ready"; sleep 3`)
	rr := e.submit(job, "{}")
	e.readFile("ready")
	lastLine := fmt.Sprintf("line 2000 %090d\n", 0)
	answered := func(id, wantLast string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			m, err := e.nc.Request(bus.OutputSnapshotSubject(id), nil, time.Second)
			if err != nil {
				return fmt.Errorf("no answer: %w", err)
			}
			if len(m.Data) > maxPayload || !strings.HasPrefix(string(m.Data), message.OutputTruncated) || !strings.HasSuffix(string(m.Data), lastLine) {
				return fmt.Errorf("answer of %d bytes, %.30q…%q: want the output's end, marked as cut", len(m.Data), m.Data, m.Data[max(0, len(m.Data)-20):])
			}
			if got := m.Header.Get(bus.HeaderLine); got != wantLast {
				return fmt.Errorf("last line %q, want %s", got, wantLast)
			}
			return nil
		})
	}
	answered(rr.ID, "2000")

	// Output kept under a bound over max_payload.
	tl := newTail(256<<10, nil, "", 1, "dlv")
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(tl, "line %04d %090d\n", i, 0)
	}
	x.x.addOutput("run_kept_over_max_payload", tl)
	answered("run_kept_over_max_payload", "0")

	want(t, "status", e.final(rr, 15*time.Second).Status, message.StatusSucceeded)
}

package executor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The executor running a command answers a request for the output it has
// published so far, numbered like the live lines; no one else answers.
func TestExecutor_AnswersForTheOutputSoFar(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("chatty", `echo start; echo "step 2"; printf partial; echo ready > "$OUT/ready"; sleep 2; echo " end"`)
	rr := e.submit(job, "{}")
	e.readFile("ready")
	// The output reaches the executor through a pipe, a moment after the
	// script wrote it. "partial" is not a published line yet: never in it.
	testenv.Eventually(t, 5*time.Second, func() error {
		m, err := e.nc.Request(bus.OutputSnapshotSubject(rr.ID), nil, 2*time.Second)
		if err != nil {
			return err
		}
		if string(m.Data) != "start\nstep 2\n" || m.Header.Get(bus.HeaderLine) != "2" || m.Header.Get(bus.HeaderAttempt) != "1" {
			return fmt.Errorf("snapshot %q, last line %q, attempt %q", m.Data, m.Header.Get(bus.HeaderLine), m.Header.Get(bus.HeaderAttempt))
		}
		return nil
	})
	r := e.final(rr, 15*time.Second)
	if r.Status != message.StatusSucceeded || !strings.HasSuffix(r.Output, "partial end\n") {
		t.Fatalf("run %s, output %q", r.Status, r.Output)
	}
	// Once it has ended (its message acked a moment after its final
	// status), nobody has its output to give.
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, err := e.nc.Request(bus.OutputSnapshotSubject(rr.ID), nil, 200*time.Millisecond); err == nil {
			return fmt.Errorf("a snapshot of a run that has ended")
		}
		return nil
	})
}

package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

// A dispatcher resuming a delivery (its "queued" stored, then it died)
// publishes the run request whatever its job is now, and leaves it to the
// executor to fail the run with why (dispatcher/handle.go). One published
// after the job was deleted and its runs drained still ends: the drained
// consumer is kept, so the request does not wait in RUNS for ever.
func TestExecutor_RunRequestAfterADeletedJobWasDrainedEndsFailed(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	x := e.start(nil)
	job := e.script("lateorphan", `echo hi`)
	want(t, "run", e.final(e.submit(job, "{}"), 10*time.Second).Status, message.StatusSucceeded)
	e.deleteJob(job)
	x.jobGoneFromCatalog(t, job)
	x.waitPasses(t, 1)        // the drained loop ended: no loop fetches the job's runs
	rr := e.submit(job, "{}") // the resumed delivery's request
	r := e.final(rr, 20*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "why", strings.Contains(r.Error, "no longer exists"), true)
	e.waitRunsAcked()
}

package executor

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// A "running" record names the RUNS sequence of the request that wrote
// it; RUNS made again since (deleted, lost with its store) numbers its
// messages from 1 again, and another run's request pending at that
// sequence is not this run's. The run's request stored again is not
// acked as if its other message were still running it: it takes the run
// over, as the next attempt. Before, any message there held the run, and
// the request was acked and lost, the run "running" for ever.
func TestExecutor_AnotherRunsRequestAtTheRunningSequenceDoesNotHoldTheRun(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	job := e.script("held", `echo "$HOOKRUN_RUN_ATTEMPT" >> "$OUT/starts"`)
	// Another run's request, pending: of a job no executor fetches.
	other := nats.NewMsg(bus.RunSubject(job.Metadata.Namespace, "not-fetched"))
	other.Data = []byte(`{}`)
	other.Header.Set(bus.HeaderSchema, message.SchemaRunRequest)
	ack, err := e.js.PublishMsg(ctx, other, jetstream.WithMsgID("run_other:dlv_other"))
	if err != nil {
		t.Fatal(err)
	}
	rr := e.submit(job, `{}`)
	cur, seq, err := runstatus.GetSeq(ctx, e.js, rr.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	cur.Status, cur.Attempt, cur.StartedAt, cur.RequestSeq = message.StatusRunning, 1, &now, ack.Sequence
	if _, err := runstatus.PublishAfter(ctx, e.js, cur, seq); err != nil {
		t.Fatal(err)
	}
	e.start(nil)

	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 2)
	want(t, "starts (attempt numbers)", e.readFile("starts"), "2")
	e.waitRunsLeft(1, "the other run's request stays")
}

// A request's message is its own id, or that id stored again under "#n";
// a retry copy's is the copy's; nothing else is.
func TestSameRequest_TheRequestsIDAndItsCopiesOnly(t *testing.T) {
	for _, tc := range []struct {
		id   string
		g    int
		same bool
	}{
		{"run_a:dlv_b", 0, true},
		{"run_a:dlv_b#2", 0, true},
		{"run_a:dlv_b#12", 0, true},
		{"run_a:dlv_b#", 0, false},
		{"run_a:dlv_b#x", 0, false},
		{"run_a:dlv_bc", 0, false},
		{"run_a:dlv_b:retry2", 0, false},
		{"run_a:dlv_b:retry2", 2, true},
		{"run_a:dlv_b:retry3", 2, false},
		{"run_other:dlv_other", 0, false},
		{"", 0, false},
	} {
		if got := sameRequest(tc.id, requestMsgID("run_a", "dlv_b", tc.g)); got != tc.same {
			t.Errorf("message id %q for copy %d: same request = %v, want %v", tc.id, tc.g, got, tc.same)
		}
	}
}

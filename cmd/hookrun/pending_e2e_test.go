package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The ingress answers "status": "queued" with an executionId before any
// dispatcher has the delivery. With the dispatcher down, the run is read
// queued (not 404), its cancel ends it at once, and once a dispatcher comes
// the cancelled run stays cancelled without running while the other one
// runs.
// Every service is on its own NATS user: keys reads the waiting deliveries
// within its permissions.
func TestE2E_RunNotDispatchedYetIsQueuedAndCancellable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	t.Parallel()
	n, s, endpointPath := startSecuredEcho(t)
	s.Kill("dispatcher")

	deliver := func(event string) string {
		code, body := s.Deliver(endpointPath, `{"id":"`+event+`"}`, map[string]string{"X-Event-Id": event})
		id, _ := body["executionId"].(string)
		if code != http.StatusAccepted || body["status"] != "queued" || id == "" {
			t.Fatalf("delivery %s: %d %v", event, code, body)
		}
		return id
	}
	kept, cancelled := deliver("evt-kept"), deliver("evt-cancelled")
	if kept == cancelled {
		t.Fatalf("two events, one run id %s", kept)
	}
	for _, id := range []string{kept, cancelled} {
		var r Run
		if code := s.API("GET", "/v1/runs/"+id, nil, &r); code != http.StatusOK || r.Status != "queued" || r.ID != id {
			t.Fatalf("run %s with no dispatcher: HTTP %d %+v", id, code, r)
		}
	}
	// The cancel ends it at once: no dispatcher or executor need reach it.
	var c Run
	if code := s.API("POST", "/v1/runs/"+cancelled+"/cancel", nil, &c); code != http.StatusAccepted || c.Status != "cancelled" {
		t.Fatalf("cancel of a run not dispatched yet: HTTP %d %+v", code, c)
	}
	if code := s.API("GET", "/v1/runs/"+cancelled, nil, &c); code != http.StatusOK || c.Status != "cancelled" {
		t.Fatalf("a run cancelled before it was dispatched, read at once: HTTP %d %+v", code, c)
	}

	s.Start("dispatcher")
	s.WaitReady("dispatcher")
	if r := s.WaitRun(kept, "succeeded", 30*time.Second); r.Output != "ran\n" {
		t.Fatalf("the run kept: %+v", r)
	}
	// The dispatcher acks the cancelled run's delivery too (it finds the
	// run ended), and the run stays as the cancel left it.
	_, js := n.Connect()
	testenv.Eventually(t, 15*time.Second, func() error {
		c, err := js.Consumer(context.Background(), bus.StreamDeliveries, bus.ConsumerDispatcher)
		if err != nil {
			return err
		}
		if i := c.CachedInfo(); i.NumPending != 0 || i.NumAckPending != 0 {
			return fmt.Errorf("dispatcher: %d deliveries pending, %d not acked", i.NumPending, i.NumAckPending)
		}
		return nil
	})
	r := s.WaitRun(cancelled, "cancelled", 30*time.Second)
	if r.Output != "" || r.ExitCode != nil {
		t.Fatalf("the cancelled run ran: %+v", r)
	}

	// A deleted job is told apart from one an executor cannot read by the
	// jobs bucket's leader, within the executor's NATS user's permissions:
	// its consumer stays (a late run request is drained too), and the
	// executors' passes over it (every 5 s) raise no violation.
	if code := s.API("DELETE", "/v1/jobs/echo", nil, nil); code != http.StatusOK {
		t.Fatalf("DELETE job: %d", code)
	}
	time.Sleep(7 * time.Second)
	if _, err := js.Consumer(context.Background(), bus.StreamRuns, bus.JobConsumer("default", "echo")); err != nil {
		t.Fatalf("the deleted job's consumer: %v", err)
	}
	if v := n.Violations(); len(v) > 0 {
		t.Fatalf("NATS permission violations: %q", v)
	}
}

package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// Delivery A stored "queued" and crashed before its run request; its claim
// expired and a later delivery B of the event claimed first. A's
// redelivery, a duplicate by its claim, still publishes its run request
// (resumed from its own status) instead of leaving its run queued for
// ever; B waits for that run to end, then runs.
func TestDispatcher_RedeliveredDuplicateStillPublishesItsQueuedRun(t *testing.T) {
	e := newEnv(t, "kv")
	w := e.hook("stale", func(w *resource.Webhook) { w.Spec.DedupWindow = resource.Duration(time.Second) })
	crashed := make(chan struct{})
	first := e.start(func(d *Dispatcher) { d.crashAt = crashOnceAt(stageQueued, crashed) })
	a := e.deliver(w, "evt-stale", `{}`)
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("no crash")
	}
	first.stop()
	testenv.Eventually(t, 10*time.Second, func() error {
		if owner, found, err := e.store.Lookup(context.Background(), dedupKey(w, "evt-stale"), time.Second); err != nil || found {
			return errorf("claim still held by %q (%v)", owner, err)
		}
		return nil
	})
	b := e.deliver(w, "evt-stale", `{}`)
	// Another dispatcher handled B first and claimed the event for it.
	if _, err := e.store.ClaimBatch(context.Background(), []dedup.Request{{Key: dedupKey(w, "evt-stale"), Owner: b.ID, TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	e.start(nil)
	testenv.Eventually(t, 15*time.Second, func() error {
		if reqs := e.runRequests(); len(reqs) != 1 || reqs[0].DeliveryID != a.ID {
			return errorf("run requests %v, want A's", reqs)
		}
		return nil
	})
	// A's run ends; B runs after it.
	r := e.run(a.RunID)
	now := time.Now().UTC()
	r.Status, r.Attempt, r.StartedAt, r.FinishedAt = message.StatusSucceeded, 1, &now, &now
	if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if reqs := e.runRequests(); len(reqs) != 2 || reqs[1].DeliveryID != b.ID {
			return errorf("run requests %d, want A's then B's", len(reqs))
		}
		return nil
	})
}

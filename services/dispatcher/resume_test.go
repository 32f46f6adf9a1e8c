package dispatcher

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// A delivery dispatched (queued status and run request stored) whose ack
// was lost to a crash comes back after its webhook was deleted: its run has
// meanwhile run and succeeded. The redelivery must only ack it, not store
// "rejected" over the run's final status.
func TestDispatcher_WebhookDeletedAfterDispatchKeepsTheRunsStatus(t *testing.T) {
	e := newEnv(t, "kv")
	w := e.hook("wdel", nil)
	crashed := make(chan struct{})
	first := e.start(func(d *Dispatcher) { d.crashAt = crashOnceAt(stagePublished, crashed) })
	d := e.deliver(w, "evt-wdel", `{"x":1}`, func(d *message.Delivery) { d.ReceivedAt = time.Now().UTC().Add(-10 * time.Second) })
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("no crash")
	}
	first.stop()
	// An executor ran the run meanwhile.
	r := e.run(d.RunID)
	now := time.Now().UTC()
	r.Status, r.Attempt, r.StartedAt, r.FinishedAt = message.StatusSucceeded, 1, &now, &now
	if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
		t.Fatal(err)
	}
	e.deleteWebhook(w)
	e.start(nil)
	e.allAcked()
	got := e.run(d.RunID)
	want(t, "run status after the redelivery", got.Status, message.StatusSucceeded)
}

// A sender's retry of an event, still in the backlog when the webhook is
// deleted, makes no dedup claim (there is no webhook to key it by) and is
// rejected. It may repeat the delivery whose run the run id holds, which
// ran: its rejection is a record of its own, and the run keeps its status.
func TestDispatcher_RejectedRetryOfADeletedWebhookKeepsTheRunsStatus(t *testing.T) {
	e := newEnv(t, "redis")
	w := e.hook("wdup", nil)
	e.start(nil)
	first := e.deliver(w, "evt-wdup", `{"x":1}`)
	want(t, "first outcome", e.outcome(first).Status, message.DeliveryDispatched)
	r := e.run(first.RunID)
	now := time.Now().UTC()
	r.Status, r.Attempt, r.StartedAt, r.FinishedAt = message.StatusSucceeded, 1, &now, &now
	if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
		t.Fatal(err)
	}
	e.deleteWebhook(w)
	retry := e.deliver(w, "evt-wdup", `{"x":1}`, func(d *message.Delivery) { d.ReceivedAt = time.Now().UTC().Add(-time.Minute) })
	out := e.outcome(retry)
	want(t, "retry's outcome", out.Status, message.DeliveryRejected)
	want(t, "retry's outcome is its own record", out.Kind == message.KindDelivery && out.ID == retry.ID, true)
	if !strings.Contains(out.Error, "no longer exists") {
		t.Errorf("retry's error %q", out.Error)
	}
	e.allAcked()
	got := e.run(first.RunID)
	want(t, "run status", got.Status, message.StatusSucceeded)
	want(t, "run's delivery", got.DeliveryID, first.ID)
}

// A delivery whose "queued" was stored before a crash, redelivered after its
// webhook was deleted, publishes its run request with the callback the run
// was queued with: the run's record keeps it (the executor then reads the
// webhook at each attempt, and sends none for a deleted one).
func TestDispatcher_ResumedRunKeepsItsCallback(t *testing.T) {
	e := newEnv(t, "kv")
	w := e.hook("wcb", func(w *resource.Webhook) {
		w.Spec.Callback = &resource.Callback{URL: "http://127.0.0.1:1/cb", SecretRef: "cb"}
	})
	// The first dispatcher "crashes" at that point every time: it cannot
	// take the delivery further on a redelivery before it is stopped.
	crashed := make(chan struct{})
	var once sync.Once
	first := e.start(func(d *Dispatcher) {
		d.crashAt = func(s string) bool {
			if s == stageQueued {
				once.Do(func() { close(crashed) })
				return true
			}
			return false
		}
	})
	d := e.deliver(w, "evt-wcb", `{"x":1}`, func(d *message.Delivery) { d.ReceivedAt = time.Now().UTC().Add(-10 * time.Second) })
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("no crash")
	}
	first.stop()
	e.deleteWebhook(w)
	e.start(nil)
	e.allAcked()
	reqs := e.runRequests()
	want(t, "run requests", len(reqs), 1)
	want(t, "request's delivery", reqs[0].DeliveryID, d.ID)
	want(t, "callback", reqs[0].Callback != nil && reqs[0].Callback.URL == "http://127.0.0.1:1/cb" && reqs[0].Callback.SecretRef == "cb", true)
	want(t, "run status", e.run(d.RunID).Status, message.StatusQueued)
}

// deleteWebhook removes w from the configuration the dispatcher watches.
func (e *env) deleteWebhook(w *resource.Webhook) {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), bus.BucketWebhooks)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name)); err != nil {
		e.t.Fatal(err)
	}
}

// A run cancelled before any dispatcher decided its delivery has its
// "cancelled" stored as its first status by keys (with the delivery's id).
// The dispatcher that comes to the delivery must not run it, nor store
// anything over the cancelled: its "queued" (expecting no status) is
// refused, and the delivery, handed back, resumes and is acked.
func TestDispatcher_ARunCancelledBeforeItsDeliveryWasDecidedDoesNotRun(t *testing.T) {
	e := newEnv(t, "redis")
	w := e.hook("wcan", nil)
	d := e.deliver(w, "evt-can", `{"x":1}`)
	now := time.Now().UTC()
	if _, err := runstatus.PublishFirst(context.Background(), e.js, &message.Run{
		Kind: message.KindRun, ID: d.RunID, Namespace: d.Namespace, Webhook: d.Webhook, Job: d.Job, DeliveryID: d.ID,
		Status: message.StatusCancelled, QueuedAt: &d.ReceivedAt, FinishedAt: &now, Error: message.CancelledWhileQueued,
	}); err != nil {
		t.Fatal(err)
	}
	// Another delivery, not cancelled, runs beside it.
	other := e.deliver(w, "evt-kept", `{"x":2}`)
	e.start(nil)
	e.allAcked()
	want(t, "the kept run's outcome", e.outcome(other).Status, message.DeliveryDispatched)
	got := e.run(d.RunID)
	want(t, "the cancelled run's status", got.Status, message.StatusCancelled)
	want(t, "its delivery", got.DeliveryID, d.ID)
	runs := e.runsPerID()
	want(t, "run requests of the cancelled run", runs[d.RunID], 0)
	want(t, "run requests of the kept run", runs[other.RunID], 1)
}

// Deliveries acked long ago, handed over again by a consumer made afresh
// (here from the stream's start: every dispatcher stopped while the
// consumer was gone), whose dedup claims have expired, do not run their
// event again: a duplicate has its own record, and a delivery whose run id
// now holds a later delivery's run was decided before that one. Each was
// found the run ended and ran it again.
func TestDispatcher_DeliveriesHandledAgainAfterTheirWindowDoNotRunAgain(t *testing.T) {
	e := newEnv(t, "redis")
	window := 300 * time.Millisecond
	w := e.hook("again", func(w *resource.Webhook) { w.Spec.DedupWindow = resource.Duration(window) })
	first := e.start(nil)
	// Received minutes before the event was sent again (a delivery is
	// later than another by its receipt time only past receivedSkew).
	earlier := func(d *message.Delivery) { d.ReceivedAt = time.Now().UTC().Add(-5 * time.Minute) }
	d1 := e.deliver(w, "evt-1", `{}`, earlier)
	want(t, "first outcome", e.outcome(d1).Status, message.DeliveryDispatched)
	dup := e.deliver(w, "evt-1", `{}`, earlier)
	want(t, "a retry inside the window", e.outcome(dup).Status, message.DeliveryDuplicate)
	e.succeeded(d1.RunID)
	// The event sent again after its window: a run of its own, ended.
	time.Sleep(2 * window)
	d3 := e.deliver(w, "evt-1", `{}`)
	want(t, "the event sent again after its window", e.outcome(d3).Status, message.DeliveryDispatched)
	e.succeeded(d3.RunID)
	e.allAcked()
	want(t, "run requests before", len(e.runRequests()), 2)

	first.stop()
	if err := e.js.DeleteConsumer(context.Background(), bus.StreamDeliveries, bus.ConsumerDispatcher); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * window) // every claim has expired
	e.start(nil)
	e.allAcked()
	time.Sleep(time.Second) // a delivery handed back comes again within a second
	e.allAcked()
	want(t, "run requests after the deliveries came again", len(e.runRequests()), 2)
	r := e.run(d3.RunID)
	want(t, "the run's delivery", r.DeliveryID, d3.ID)
	want(t, "the run's status", r.Status, message.StatusSucceeded)
	out, err := runstatus.DeliveryOutcome(context.Background(), e.js, &dup)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "the duplicate's outcome", out.Status, message.DeliveryDuplicate)
}

// Two ingress replicas' clocks differ: the event sent again after its
// dedup window, received by a replica whose clock is behind the one that
// received the first send, is still a new run, not the first's duplicate
// (a delivery is later than another by its receipt time only past
// receivedSkew).
func TestDispatcher_AResendReceivedByAClockBehindRunsAgain(t *testing.T) {
	e := newEnv(t, "redis")
	window := 300 * time.Millisecond
	w := e.hook("skew", func(w *resource.Webhook) { w.Spec.DedupWindow = resource.Duration(window) })
	e.start(nil)
	ahead := func(d *message.Delivery) { d.ReceivedAt = time.Now().UTC().Add(30 * time.Second) }
	d1 := e.deliver(w, "evt-skew", `{}`, ahead)
	want(t, "first outcome", e.outcome(d1).Status, message.DeliveryDispatched)
	e.succeeded(d1.RunID)
	time.Sleep(2 * window)
	d2 := e.deliver(w, "evt-skew", `{}`)
	want(t, "the resend's outcome", e.outcome(d2).Status, message.DeliveryDispatched)
	want(t, "the run's delivery", e.run(d1.RunID).DeliveryID, d2.ID)
}

// succeeded stores that run id's run (as it stands) ended succeeded, as an
// executor would, and returns that record.
func (e *env) succeeded(id string) *message.Run {
	e.t.Helper()
	r := e.run(id)
	now := time.Now().UTC()
	r.Status, r.Attempt, r.StartedAt, r.FinishedAt = message.StatusSucceeded, 1, &now, &now
	if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

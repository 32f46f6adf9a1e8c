package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// received10sAgo dates a delivery past catalogGrace: a webhook unknown to
// the dispatcher then is gone, not a configuration still on its way.
func received10sAgo(d *message.Delivery) { d.ReceivedAt = time.Now().UTC().Add(-10 * time.Second) }

// A delivery waiting while its webhook was deleted and made again under
// its name belongs to the webhook that is gone: it is rejected as a
// deleted webhook's is, and makes no claim in the new webhook's name. The
// new webhook's first delivery of the same event is then a run of its own,
// under the run id the ingress answered, not the duplicate of a run under
// the old webhook's id (an executionId that never got a status).
func TestDispatcher_DeliveryOfAWebhookMadeAgainIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	old := e.hook("again", nil)
	waiting := e.deliver(old, "evt-1", `{}`, received10sAgo)
	e.deleteWebhook(old)
	again := *old
	again.Metadata.UID, again.Status.EndpointID = "", ""
	made := e.cfg.Webhook(again)
	e.start(nil)

	out := e.outcome(waiting)
	want(t, "waiting delivery's outcome", out.Status, message.DeliveryRejected)
	if !strings.Contains(out.Error, "no longer exists") {
		t.Fatalf("waiting delivery's error %q", out.Error)
	}
	d := e.deliver(made, "evt-1", `{}`)
	want(t, "new webhook's delivery", e.outcome(d).Status, message.DeliveryDispatched)
	rrs := e.runRequests()
	want(t, "run requests", len(rrs), 1)
	want(t, "request's run", rrs[0].ID, d.RunID)
}

// A delivery runs the job the ingress accepted it for (and checked an API
// key's scopes against), not the one its webhook was pointed at while it
// waited; deliveries accepted after the change run the new job.
func TestDispatcher_WaitingDeliveryRunsTheJobItWasAcceptedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("repointed", nil)
	e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "other-job"}, Spec: resource.JobSpec{Command: []string{"true"}}})
	waiting := e.deliver(w, "evt-1", `{}`)
	w.Spec.Job = "other-job"
	e.cfg.Webhook(*w)
	e.start(nil)
	want(t, "waiting delivery's outcome", e.outcome(waiting).Status, message.DeliveryDispatched)
	want(t, "waiting delivery's run's job", e.run(waiting.RunID).Job, "repointed-job")
	later := e.deliver(w, "evt-2", `{}`)
	want(t, "later delivery's outcome", e.outcome(later).Status, message.DeliveryDispatched)
	jobs := map[string]string{}
	for _, rr := range e.runRequests() {
		jobs[rr.DeliveryID] = rr.Job
	}
	want(t, "waiting delivery's request's job", jobs[waiting.ID], "repointed-job")
	want(t, "later delivery's request's job", jobs[later.ID], "other-job")
}

// A delivery waiting while its webhook was disabled does not run (the
// ingress answers 404 for a disabled webhook): it is rejected, with why.
func TestDispatcher_DisabledWebhooksDeliveryIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("off", nil)
	waiting := e.deliver(w, "evt-1", `{}`, received10sAgo)
	w.Spec.Disabled = true
	e.cfg.Webhook(*w)
	e.start(nil)
	out := e.outcome(waiting)
	want(t, "outcome", out.Status, message.DeliveryRejected)
	if !strings.Contains(out.Error, "disabled") {
		t.Fatalf("error %q should say the webhook is disabled", out.Error)
	}
	want(t, "run status", e.run(waiting.RunID).Status, message.StatusRejected)
	want(t, "run requests", len(e.runRequests()), 0)
}

// A delivery without a run id (none the ingress or keys would store) gets
// the one they derive: for a replay, from the replay's own delivery id.
func TestDispatcher_ReplayWithoutRunIDGetsKeysRunID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("no-run-id", nil)
	e.start(nil)
	orig := e.deliver(w, "evt-1", `{}`)
	want(t, "original", e.outcome(orig).Status, message.DeliveryDispatched)
	replay := e.deliver(w, "evt-1", `{}`, func(d *message.Delivery) { d.ReplayOf, d.RunID = orig.ID, "" })
	replay.RunID = ident.RunID(w.Metadata.UID, "evt-1", replay.ID) // as keys' replay derives it
	want(t, "replay", e.outcome(replay).Status, message.DeliveryDispatched)
	want(t, "replay run's delivery", e.run(replay.RunID).DeliveryID, replay.ID)
}

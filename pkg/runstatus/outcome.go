package runstatus

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/message"
)

// What a run's record says about the delivery that made it (OutcomeOf).
const (
	// OutcomeQueued: dispatched; the run's queued status is stored, its
	// run request may not be in RUNS yet.
	OutcomeQueued = "queued"
	// OutcomeFailed: the dispatcher recorded the run failed before it
	// could run (its arguments could not be resolved).
	OutcomeFailed = "failed"
)

// OutcomeOf classifies run record r into the outcome of the delivery that
// made it (r.DeliveryID): message.DeliveryFiltered or DeliveryRejected,
// OutcomeFailed, OutcomeQueued, or message.DeliveryDispatched once the run
// has moved on (running, retried, finished, cancelled).
func OutcomeOf(r *message.Run) string {
	switch {
	case r.Status == message.StatusQueued && r.Attempt == 0:
		return OutcomeQueued
	case r.Status == message.StatusFiltered:
		return message.DeliveryFiltered
	case r.Status == message.StatusRejected:
		return message.DeliveryRejected
	case r.Status == message.StatusFailed && r.StartedAt == nil && r.Attempt == 0:
		return OutcomeFailed
	default:
		return message.DeliveryDispatched
	}
}

// DeliveryOutcome returns delivery d's outcome record: the one stored for d
// (a duplicate's, or any delivery's stored by a release before 2026-11-28),
// else one made from its run's record, when that record is still d's. The
// dispatcher stores a separate record only for a delivery that has no run
// record of its own (a duplicate): for the others the run's record says it
// all, and one subject per delivery less is memory nats-server does not
// need (docs/OPERATIONS.md, "Sizing NATS"). ErrNotFound: no outcome yet, or
// the run's record is now a later delivery's (the event sent again after
// its dedup window ran it again).
func DeliveryOutcome(ctx context.Context, js jetstream.JetStream, d *message.Delivery) (*message.Run, error) {
	rec, err := Get(ctx, js, d.ID)
	if !errors.Is(err, ErrNotFound) {
		return rec, err
	}
	if d.RunID == "" {
		return nil, ErrNotFound
	}
	r, err := Get(ctx, js, d.RunID)
	if err != nil {
		return nil, err
	}
	if r.Kind != message.KindRun || r.DeliveryID != d.ID {
		return nil, ErrNotFound
	}
	rec = &message.Run{
		Schema: message.SchemaRun, Kind: message.KindDelivery, ID: d.ID, Namespace: d.Namespace,
		Webhook: d.Webhook, Job: r.Job, DeliveryID: d.ID, RunID: d.RunID,
		WebhookEventID: d.EventID, WebhookReceivedAt: d.ReceivedAt, WebhookSource: r.WebhookSource,
		FinishedAt: r.QueuedAt, Replay: d.ReplayOf != "", // the dispatcher's time of it
	}
	switch o := OutcomeOf(r); o {
	case OutcomeQueued:
		rec.Status = message.DeliveryDispatched
	case OutcomeFailed:
		rec.Status, rec.Error = message.DeliveryRejected, r.Error // as the dispatcher recorded it
	case message.DeliveryDispatched:
		rec.Status = o
	default:
		rec.Status, rec.Error = o, r.Error
	}
	return rec, nil
}

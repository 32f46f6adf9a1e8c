package dispatcher

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// statusNote is a webhook status update: lastError, lastDeliveryAt or
// both, of the webhook with uid.
type statusNote struct {
	ns, name, uid string
	err           string
	delivered     time.Time
}

// statusNotes holds the webhook status updates waiting for writeStatuses:
// merged per webhook, bounded, never blocking a batch (webhookstatus.Notes,
// which the executor's start failures share).
type statusNotes struct{ q *webhookstatus.Notes }

func newStatusNotes() *statusNotes { return &statusNotes{q: webhookstatus.NewNotes()} }

// add queues n for writeStatuses, merged into its webhook's note waiting.
func (s *statusNotes) add(n statusNote, log *slog.Logger) {
	s.q.Add(webhookstatus.Note{Namespace: n.ns, Name: n.name, UID: n.uid, Error: n.err, Delivered: n.delivered}, log)
}

// writeStatuses writes the webhook status updates waiting, one at a time,
// until ctx ends; never for a webhook deleted (or made again under its
// name) since its note was made.
func (d *Dispatcher) writeStatuses(ctx context.Context) error {
	return d.notes.q.Write(ctx, d.status, d.cat, d.log)
}

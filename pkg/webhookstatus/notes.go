package webhookstatus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

// Note is a webhook status update: lastError, lastDeliveryAt or both, of
// the webhook with UID.
type Note struct {
	Namespace, Name, UID string
	Error                string
	Delivered            time.Time
}

// MaxNotes bounds the webhooks whose status updates wait for Notes.Write.
const MaxNotes = 4096

// dropLogEvery is how often, at most, dropped status updates are logged.
const dropLogEvery = 10 * time.Second

// Notes holds the webhook status updates waiting for Write, one per
// webhook: a webhook's later note is merged into the one waiting (the
// latest delivery time, the latest error). The updates are for operators
// (GET /v1/webhooks/{name}), not needed for any run, and a slow status
// bucket must not hold the services' hot paths (the dispatcher's batches,
// the executor's runs): while it is slow, a busy webhook's notes still take
// one place and one write, instead of one for each of its deliveries or
// runs pushing out a rare lastError. Past MaxNotes webhooks a note is
// dropped (counted, and logged at most every dropLogEvery), but a lastError
// only to make room for another, never for a lastDeliveryAt.
type Notes struct {
	wake chan struct{} // holds a token while notes wait

	mu      sync.Mutex
	waiting map[noteKey]Note // values: Add allocates nothing
	dropped int              // since the last log line
	logged  time.Time        // when dropped notes were last logged
}

// noteKey is a note's webhook: a webhook deleted and made again under its
// name is another (its uid), and a note of the old one is not merged into
// the new one's (Write skips it).
type noteKey struct{ ns, name, uid string }

// NewNotes returns an empty Notes.
func NewNotes() *Notes {
	return &Notes{wake: make(chan struct{}, 1), waiting: map[noteKey]Note{}}
}

// Add queues n for Write, merged into its webhook's note waiting. It never
// blocks on NATS; log gets the (rate-limited) line about dropped notes.
func (q *Notes) Add(n Note, log *slog.Logger) {
	k := noteKey{n.Namespace, n.Name, n.UID}
	q.mu.Lock()
	if w, ok := q.waiting[k]; ok {
		if n.Error != "" {
			w.Error = n.Error
		}
		if n.Delivered.After(w.Delivered) {
			w.Delivered = n.Delivered
		}
		q.waiting[k] = w
	} else if len(q.waiting) < MaxNotes || q.makeRoom(n) {
		q.waiting[k] = n
	} else {
		q.dropped++
	}
	q.logDropped(log)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// makeRoom drops a waiting note that holds no lastError for n, which
// holds one; it reports whether it did.
func (q *Notes) makeRoom(n Note) bool {
	if n.Error == "" {
		return false
	}
	for k, w := range q.waiting {
		if w.Error == "" {
			delete(q.waiting, k)
			q.dropped++
			return true
		}
	}
	return false
}

// logDropped logs the notes dropped since the last line, at most every
// dropLogEvery: at load, one line per dropped note would be thousands a
// second. Called with q.mu held.
func (q *Notes) logDropped(log *slog.Logger) {
	if q.dropped == 0 || time.Since(q.logged) < dropLogEvery {
		return
	}
	log.Warn("webhook status updates are behind (the webhook status bucket is slow): dropped some", "dropped", q.dropped, "webhooks_waiting", len(q.waiting))
	q.dropped, q.logged = 0, time.Now()
}

// take returns the notes waiting and forgets them.
func (q *Notes) take() []Note {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Note, 0, len(q.waiting))
	for _, n := range q.waiting {
		out = append(out, n)
	}
	clear(q.waiting)
	return out
}

// Webhooks is where Write finds a webhook's current uid (a catalog).
type Webhooks interface {
	Webhook(ns, name string) (*resource.Webhook, bool)
}

// Write writes the notes waiting with w, one at a time, until ctx ends.
// Without a deadline of ours, each KV request is bounded by the jetstream
// package's default (5 s); most Delivered calls are throttled and make
// none.
func (q *Notes) Write(ctx context.Context, w *Writer, hooks Webhooks, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		}
		for _, n := range q.take() {
			if ctx.Err() != nil {
				return nil
			}
			write(ctx, n, w, hooks, log)
		}
	}
}

// write writes one webhook's status update.
func write(ctx context.Context, n Note, w *Writer, hooks Webhooks, log *slog.Logger) {
	// The webhook may have been deleted since the note was made: keys
	// purged its status with it, and a write now would make the status
	// again, for a webhook made again under its name to show the old
	// one's lastError.
	if h, ok := hooks.Webhook(n.Namespace, n.Name); !ok || h.Metadata.UID != n.UID {
		return
	}
	if !n.Delivered.IsZero() {
		_ = w.Delivered(ctx, n.Namespace, n.Name, n.UID, n.Delivered)
	}
	if n.Error != "" {
		if err := w.Error(ctx, n.Namespace, n.Name, n.UID, n.Error); err != nil {
			log.Warn("cannot record lastError", "webhook", n.Namespace+"/"+n.Name, "err", err)
		}
	}
}

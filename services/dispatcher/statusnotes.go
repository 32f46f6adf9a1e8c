package dispatcher

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// statusNote is a webhook status update: lastError, lastDeliveryAt or
// both, of the webhook with uid.
type statusNote struct {
	ns, name, uid string
	err           string
	delivered     time.Time
}

// statusQueue bounds the webhooks whose status updates wait for
// writeStatuses.
const statusQueue = 4096

// dropLogEvery is how often, at most, dropped status updates are logged.
const dropLogEvery = 10 * time.Second

// statusNotes holds the webhook status updates waiting for writeStatuses,
// one per webhook: a webhook's later note is merged into the one waiting
// (the latest delivery time, the latest error). The updates are for
// operators (GET /v1/webhooks/{name}), not needed for any run, and a slow
// status bucket must not hold a batch: while it is slow, a busy webhook's
// notes still take one place and one write, instead of one for each of
// its deliveries pushing out a rare lastError. Past statusQueue webhooks a
// note is dropped (counted, and logged at most every dropLogEvery), but a
// lastError only to make room for another, never for a lastDeliveryAt.
type statusNotes struct {
	wake chan struct{} // holds a token while notes wait

	mu      sync.Mutex
	waiting map[statusKey]statusNote // values: add allocates nothing
	dropped int                      // since the last log line
	logged  time.Time                // when dropped notes were last logged
}

// statusKey is a note's webhook: a webhook deleted and made again under
// its name is another (its uid), and a note of the old one is not merged
// into the new one's (writeStatus skips it).
type statusKey struct{ ns, name, uid string }

func newStatusNotes() *statusNotes {
	return &statusNotes{wake: make(chan struct{}, 1), waiting: map[statusKey]statusNote{}}
}

// add queues n for writeStatuses, merged into its webhook's note waiting.
func (s *statusNotes) add(n statusNote, log *slog.Logger) {
	k := statusKey{n.ns, n.name, n.uid}
	s.mu.Lock()
	if w, ok := s.waiting[k]; ok {
		if n.err != "" {
			w.err = n.err
		}
		if n.delivered.After(w.delivered) {
			w.delivered = n.delivered
		}
		s.waiting[k] = w
	} else if len(s.waiting) < statusQueue || s.makeRoom(n) {
		s.waiting[k] = n
	} else {
		s.dropped++
	}
	s.logDropped(log)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// makeRoom drops a waiting note that holds no lastError for n, which
// holds one; it reports whether it did.
func (s *statusNotes) makeRoom(n statusNote) bool {
	if n.err == "" {
		return false
	}
	for k, w := range s.waiting {
		if w.err == "" {
			delete(s.waiting, k)
			s.dropped++
			return true
		}
	}
	return false
}

// logDropped logs the notes dropped since the last line, at most every
// dropLogEvery: at load, one line per dropped note would be thousands a
// second. Called with s.mu held.
func (s *statusNotes) logDropped(log *slog.Logger) {
	if s.dropped == 0 || time.Since(s.logged) < dropLogEvery {
		return
	}
	log.Warn("webhook status updates are behind (the webhook status bucket is slow): dropped some", "dropped", s.dropped, "webhooks_waiting", len(s.waiting))
	s.dropped, s.logged = 0, time.Now()
}

// take returns the notes waiting and forgets them.
func (s *statusNotes) take() []statusNote {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]statusNote, 0, len(s.waiting))
	for _, n := range s.waiting {
		out = append(out, n)
	}
	clear(s.waiting)
	return out
}

// writeStatuses writes the webhook status updates waiting, one at a time,
// until ctx ends.
func (d *Dispatcher) writeStatuses(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.notes.wake:
		}
		for _, n := range d.notes.take() {
			if ctx.Err() != nil {
				return nil
			}
			d.writeStatus(ctx, n)
		}
	}
}

// writeStatus writes one webhook's status update. Without a deadline of
// ours, each KV request is bounded by the jetstream package's default
// (5 s); most Delivered calls are throttled and make none.
func (d *Dispatcher) writeStatus(ctx context.Context, n statusNote) {
	// The webhook may have been deleted since the note was taken: keys
	// purged its status with it, and a write now would make the status
	// again, for a webhook made again under its name to show the old
	// one's lastError.
	if w, ok := d.cat.Webhook(n.ns, n.name); !ok || w.Metadata.UID != n.uid {
		return
	}
	if !n.delivered.IsZero() {
		_ = d.status.Delivered(ctx, n.ns, n.name, n.delivered)
	}
	if n.err != "" {
		if err := d.status.Error(ctx, n.ns, n.name, n.err); err != nil {
			d.log.Warn("cannot record lastError", "webhook", n.ns+"/"+n.name, "err", err)
		}
	}
}

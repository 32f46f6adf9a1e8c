package ingress

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// statusReader reads the current status of a duplicate's first run, so
// that a duplicate is answered as Stripe answers a repeated idempotent
// request: with what became of the original ("succeeded", "filtered", …),
// not always "queued". Only duplicates pay the read.
type statusReader struct {
	js     jetstream.JetStream
	mu     sync.Mutex
	stream jetstream.Stream
}

// dupStatusTimeout bounds the read; past it the answer says "queued".
const dupStatusTimeout = 250 * time.Millisecond

// current returns run id's status, or "queued" when it cannot be read in
// time or is not stored yet (the dispatcher has not handled the original),
// or is a delivery's for which ofOriginal is false (an earlier run under
// the same id).
func (r *statusReader) current(ctx context.Context, id string, ofOriginal func(run *message.Run) bool) string {
	ctx, cancel := context.WithTimeout(ctx, dupStatusTimeout)
	defer cancel()
	s, err := r.statusStream(ctx)
	if err != nil {
		return message.StatusQueued
	}
	run, err := runstatus.GetDirect(ctx, s, id)
	if err != nil || run.Kind != message.KindRun && run.Kind != "" || run.DeliveryID != "" && !ofOriginal(run) {
		return message.StatusQueued
	}
	return run.Status
}

// statusStream returns the STATUS stream's handle, looked up once it can
// be. The look-up runs outside the lock: duplicates do not queue behind a
// slow one.
func (r *statusReader) statusStream(ctx context.Context) (jetstream.Stream, error) {
	r.mu.Lock()
	s := r.stream
	r.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := r.js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.stream = s
	r.mu.Unlock()
	return s, nil
}

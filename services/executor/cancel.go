package executor

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
)

// cancelWildcard receives cancel requests of running runs. The keys
// service writes a mark in the cancels bucket first, then publishes here:
// a run not yet started sees the mark, a running one gets the message on
// whichever executor runs it.
var cancelWildcard = bus.CancelSubject("*")

// onCancel stops a run this instance is executing.
func (x *Executor) onCancel(m *nats.Msg) {
	id := string(m.Data)
	if id == "" {
		id = m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	}
	x.mu.Lock()
	cancel, ok := x.running[id]
	x.mu.Unlock()
	if ok {
		x.log.Info("cancelling run", "run", id)
		cancel(errCancelled)
	}
}

// cancelRequested reports whether the run of delivery was marked cancelled.
func (x *Executor) cancelRequested(ctx context.Context, id, delivery string, first bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// A mark seen on any replica is a mark. Its absence is checked on the
	// bucket's leader only for a redelivery (a replica catching up may
	// not have it yet); on a first delivery the run is tracked before this
	// read, so a cancel that a lagging replica hides still reaches it
	// through keys' cancel message.
	if kv, err := x.cancelMarks(ctx); err == nil {
		if e, err := kv.Get(ctx, id); err == nil {
			if bus.CancelMarkApplies(e.Value(), delivery) {
				return true
			}
		} else if first && errors.Is(err, jetstream.ErrKeyNotFound) {
			return false
		}
	}
	e, err := bus.LastKV(ctx, x.js.Conn(), bus.BucketCancels, id)
	return err == nil && bus.CancelMarkApplies(e.Value, delivery)
}

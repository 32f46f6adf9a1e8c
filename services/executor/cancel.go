package executor

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
)

// cancelWildcard receives cancel requests of running runs.
var cancelWildcard = bus.CancelSubject("*")

// onCancel stops a run this instance is executing.
func (x *Executor) onCancel(m *nats.Msg) {
	id := string(m.Data)
	x.mu.Lock()
	ar, ok := x.running[id]
	x.mu.Unlock()
	if ok {
		x.log.Info("cancelling run", "run", id)
		ar.cancel(errCancelled)
	}
}

// cancelRequested reports whether the run was cancelled while queued.
func (x *Executor) cancelRequested(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	kv, err := x.js.KeyValue(ctx, bus.BucketCancels)
	if err != nil {
		return false
	}
	_, err = kv.Get(ctx, id)
	return err == nil
}

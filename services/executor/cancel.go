package executor

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

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

// cancelRequested reports whether the run was marked cancelled.
func (x *Executor) cancelRequested(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// From the bucket's leader: a replica behind it may not have the mark
	// keys has just written.
	_, err := bus.LastKV(ctx, x.js.Conn(), bus.BucketCancels, id)
	return err == nil
}

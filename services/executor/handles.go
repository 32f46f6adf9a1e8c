package executor

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// handles are the stream and bucket handles every run uses. Opening one
// costs a stream info request, heavier on the server than the read it
// serves, so each is opened once, on first use, and kept; a failed open is
// tried again by the next run.
type handles struct {
	mu      sync.Mutex
	status  jetstream.Stream
	cancels jetstream.KeyValue
}

// statusStream is the STATUS stream.
func (x *Executor) statusStream(ctx context.Context) (jetstream.Stream, error) {
	x.h.mu.Lock()
	defer x.h.mu.Unlock()
	if x.h.status == nil {
		s, err := x.js.Stream(ctx, bus.StreamStatus)
		if err != nil {
			return nil, err
		}
		x.h.status = s
	}
	return x.h.status, nil
}

// cancelMarks is the bucket of cancel marks.
func (x *Executor) cancelMarks(ctx context.Context) (jetstream.KeyValue, error) {
	x.h.mu.Lock()
	defer x.h.mu.Unlock()
	if x.h.cancels == nil {
		kv, err := x.js.KeyValue(ctx, bus.BucketCancels)
		if err != nil {
			return nil, err
		}
		x.h.cancels = kv
	}
	return x.h.cancels, nil
}

// currentStatus is the run's current status (runstatus.Get).
func (x *Executor) currentStatus(ctx context.Context, id string) (*message.Run, error) {
	s, err := x.statusStream(ctx)
	if err != nil {
		return nil, err
	}
	return runstatus.Last(ctx, s, id)
}

package executor

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// handles are the stream and bucket handles of the direct reads every run
// makes. Opening one costs a stream info request, heavier on the server
// than the read it serves, so each is opened once, on first use, and kept;
// a failed open is tried again by the next run.
type handles struct {
	mu      sync.Mutex
	status  jetstream.Stream
	cancels jetstream.KeyValue
}

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

// firstDelivery reports whether m is the first delivery of the only
// request of its run: not a redelivery (a run handed back, or one whose
// executor was lost), not a copy the dispatcher stored under a "#n" id
// after an unconfirmed duplicate.
func firstDelivery(m jetstream.Msg) bool {
	md, err := m.Metadata()
	if err != nil || md.NumDelivered != 1 || retryAttempt(m) > 0 {
		return false // a retry copy: the run has a history, read the leader
	}
	return !strings.Contains(m.Headers().Get(jetstream.MsgIDHeader), "#")
}

// currentStatus is the run's current status. On a replicated STATUS stream
// a replica catching up (a node just back) can answer a direct get with an
// older status: a run that had finished would read "running" and run
// again. So the status comes from the stream's leader (runstatus.Get),
// except in the common case that cannot go wrong: the first delivery of
// the run's only request, whose direct read says what it must say then —
// queued by this delivery and never started — or a final status, which
// stays final. That keeps the cheaper direct get (about two thirds of the
// CPU of a leader read) on the hot path.
func (x *Executor) currentStatus(ctx context.Context, m jetstream.Msg, rr *message.RunRequest) (*message.Run, uint64, error) {
	if firstDelivery(m) {
		if s, err := x.statusStream(ctx); err == nil {
			r, seq, err := runstatus.GetDirectSeq(ctx, s, rr.ID)
			if err == nil && r.DeliveryID == rr.DeliveryID &&
				(message.Final(r.Status) || r.Status == message.StatusQueued && r.Attempt == 0) {
				return r, seq, nil
			}
		}
	}
	return runstatus.GetSeq(ctx, x.js, rr.ID)
}

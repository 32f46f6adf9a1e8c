package keys

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// pendingScan bounds how many of the newest deliveries a dispatcher has not
// decided yet a run look-up reads: a few milliseconds' worth normally, more
// while the dispatchers are down or behind. A run whose delivery waits
// further back is not found until a dispatcher comes to it.
var pendingScan uint64 = 10000

// pendingRun is the run of a delivery accepted and not yet decided by a
// dispatcher: the ingress answers with the executionId and "status":
// "queued" before a dispatcher stores the run's first status, and a client
// reading the run at once expects to find it queued, not missing. Only the
// deliveries past the dispatchers' ack floor are read, their headers first
// (a delivery's message id names its run); a replay's message id is its
// delivery id, so a replay's run is found once queued. ns, when not "",
// narrows as loadRunSeq does. Nothing found is runstatus.ErrNotFound.
func (s *Service) pendingRun(ctx context.Context, id, ns string) (*message.Run, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, bus.StreamDeliveries)
	if err != nil {
		return nil, err
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		return nil, runstatus.ErrNotFound
	}
	from := state.FirstSeq
	if c, err := st.Consumer(ctx, bus.ConsumerDispatcher); err == nil {
		from = max(from, c.CachedInfo().AckFloor.Stream+1)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	if state.LastSeq >= pendingScan {
		from = max(from, state.LastSeq-pendingScan+1)
	}
	if from > state.LastSeq {
		return nil, runstatus.ErrNotFound
	}
	// A few look-ups at once: each reads up to pendingScan headers, and
	// clients poll a run right after the 202, most when the dispatchers
	// are behind.
	select {
	case s.pendingScans <- struct{}{}:
		defer func() { <-s.pendingScans }()
	default:
		return nil, runstatus.ErrNotFound
	}
	seq, err := scanForRun(ctx, st, id, ns, from, state.LastSeq)
	if err != nil {
		return nil, err
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return nil, err
	}
	var d message.Delivery
	if err := message.Decode(m.Data, message.SchemaDelivery, &d); err != nil || d.RunID != id || d.ReplayOf != "" {
		return nil, runstatus.ErrNotFound
	}
	// Acks land out of order above the floor: a delivery decided apart
	// from a run (a duplicate, one rejected alone) has a record of its own.
	if _, err := runstatus.Get(ctx, s.js, d.ID); !errors.Is(err, runstatus.ErrNotFound) {
		return nil, runstatus.ErrNotFound
	}
	// The run as its queued status will show it, but for its arguments,
	// which only a dispatcher resolves; queued since the delivery was
	// accepted.
	at := d.ReceivedAt
	return &message.Run{
		Schema: message.SchemaRun, Kind: message.KindRun, ID: id, Namespace: d.Namespace,
		Webhook: d.Webhook, Job: d.Job, DeliveryID: d.ID, Status: message.StatusQueued, QueuedAt: &at,
		WebhookPayload: message.StatusPayload(d.Body), WebhookPayloadTruncated: message.PayloadTruncated(d.Body), WebhookEventID: d.EventID,
		WebhookReceivedAt: d.ReceivedAt, WebhookSource: d.Source(),
	}, nil
}

// scanForRun reads the headers of DELIVERIES' messages from..to for the
// first whose message id names run id ("<namespace>.<webhook>:<run>",
// with "#<delivery>" after it when the ingress made it the delivery's
// own), and returns its sequence. One ephemeral pull consumer of its own,
// deleted at the end (an ordered consumer makes a new one per fetch).
func scanForRun(ctx context.Context, st jetstream.Stream, id, ns string, from, to uint64) (uint64, error) {
	c, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from, HeadersOnly: true,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second, MemoryStorage: true,
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = st.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	for ctx.Err() == nil {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return 0, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return 0, err
			}
			if runOfMsgID(m.Headers().Get(bus.HeaderMsgID), ns) == id {
				return meta.Sequence.Stream, nil
			}
			if meta.Sequence.Stream >= to {
				return 0, runstatus.ErrNotFound
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return 0, err
		}
		if n == 0 {
			// Messages up to "to" aged out or were removed meanwhile.
			return 0, runstatus.ErrNotFound
		}
	}
	return 0, ctx.Err()
}

// runOfMsgID is the run a delivery's message id names, "" when it names
// none (a replay's) or one of another namespace than ns (when ns is set).
func runOfMsgID(msgID, ns string) string {
	i := strings.LastIndexByte(msgID, ':')
	if i < 0 {
		return ""
	}
	if ns != "" && !strings.HasPrefix(msgID, ns+".") {
		return ""
	}
	run, _, _ := strings.Cut(msgID[i+1:], "#")
	return run
}

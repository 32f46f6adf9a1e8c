package ingress

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
)

// publish stores the delivery in DELIVERIES and waits for the ack. The
// message id is webhook + event id, so JetStream's duplicate window drops a
// fast retry and tells us so. Any failure to get an ack in time is
// errUnavailable: the sender retries, and if the write did land after all,
// the retry is answered as a duplicate of it.
func (in *Ingress) publish(ctx context.Context, d *message.Delivery) (duplicate bool, err error) {
	data, err := json.Marshal(d)
	if err != nil {
		return false, err
	}
	m := nats.NewMsg(bus.DeliverySubject(d.Namespace, d.Webhook, d.ID))
	m.Data = data
	m.Header.Set(bus.HeaderSchema, message.SchemaDelivery)
	msgID := bus.DeliveryMsgID(d.Namespace, d.Webhook, d.EventID, d.ID, d.ReplayOf != "")
	start := time.Now()
	f, err := in.js.PublishMsgAsync(m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(bus.StreamDeliveries))
	if err != nil {
		in.log.Warn("publish refused", "delivery", d.ID, "err", err)
		return false, errUnavailable
	}
	t := time.NewTimer(in.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		mPublishSeconds.Observe(time.Since(start).Seconds())
		return ack.Duplicate, nil
	case err := <-f.Err():
		in.log.Warn("publish failed", "delivery", d.ID, "err", err)
		return false, errUnavailable
	case <-t.C:
		in.log.Warn("publish ack timed out", "delivery", d.ID, "timeout", in.cfg.PublishTimeout)
		return false, errUnavailable
	case <-ctx.Done():
		return false, errUnavailable
	}
}

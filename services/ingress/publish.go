package ingress

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
)

// published is JetStream's answer to a delivery.
type published struct {
	duplicate bool   // the duplicate window already held this webhook + event id
	seq       uint64 // the stored message (the original one for a duplicate)
	msgID     string // the message id it was published under
	size      int    // the message's bytes
}

// publish stores the delivery in DELIVERIES and waits for the ack. The
// message id is webhook + event id, so JetStream's duplicate window drops a
// fast retry and tells us so. An ack that does not come in time (lost with
// the connection to the stream's leader, or late) may be of a write that
// landed: the message is published once more under the same id, and a
// "duplicate" then names the write that did (this delivery's own, which
// handle answers as accepted, not as a duplicate). Only when that fails
// too is it errUnavailable: the sender retries, and if a write did land
// after all, a retry with the same event id is answered as a duplicate of
// it (without an event id, the retry is a delivery of its own).
//
// Nothing is published while the connection is down: the NATS client would
// hold the message in its reconnect buffer and store it after the 503 had
// told the sender it was not accepted. The publish is synchronous (a
// request bounded by PublishTimeout) so that an ack that never comes leaves
// nothing pending behind. It is not cut short when the sender hangs up:
// the delivery may be stored all the same, and its ack is counted.
//
// msgIDSuffix, when set, makes the message id this delivery's own (see
// handle's unconfirmed duplicate): that publish is not tried again, which
// keeps a delivery's handling within handleWithin, and a "duplicate" of
// an id no write has used before is not one (see handle).
func (in *Ingress) publish(d *message.Delivery, msgIDSuffix string) (published, error) {
	if !in.js.Conn().IsConnected() {
		if n, ok := in.publishLog.due(d.Namespace+"/"+d.Webhook, "not_connected"); ok {
			in.log.Warn("publish refused: not connected to NATS", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "suppressed", n)
		}
		return published{}, errUnavailable
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := message.Encode(buf, d); err != nil {
		return published{}, err
	}
	msgID := bus.DeliveryMsgID(d.Namespace, d.Webhook, d.RunID, d.ID, d.ReplayOf != "") + msgIDSuffix
	m := &nats.Msg{
		Subject: bus.DeliverySubject(d.Namespace, d.Webhook, d.ID),
		Data:    buf.Bytes(),
		Header: nats.Header{
			bus.HeaderSchema:         {message.SchemaDelivery},
			bus.HeaderMsgID:          {msgID},
			bus.HeaderExpectedStream: {bus.StreamDeliveries},
		},
	}
	var took time.Duration
	publishOnce := func() (*jetstream.PubAck, error) {
		start := time.Now()
		ack, err := in.cfg.publishWithin(in.js.Conn(), m, in.cfg.PublishTimeout)
		// Failed publishes count too: in a stall they are what the
		// histogram has to show.
		took = time.Since(start)
		mPublishSeconds.Observe(took.Seconds())
		return ack, err
	}
	ack, err := publishOnce()
	if errors.Is(err, nats.ErrTimeout) && msgIDSuffix == "" && in.js.Conn().IsConnected() {
		if n, ok := in.publishLog.due(d.Namespace+"/"+d.Webhook, "publish_retry"); ok {
			in.log.Info("no ack in time: publishing the delivery again under the same message id (a write that landed is answered as a duplicate)", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "suppressed", n)
		}
		mPublishRetries.Inc()
		ack, err = publishOnce()
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		// Within the webhook's limit (set before the limit was capped, or
		// NATS configured smaller) but over what one NATS message holds:
		// a retry cannot succeed, so not 503.
		in.log.Warn("delivery over NATS' max_payload: answering 413", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "bytes", len(m.Data), "max_payload", in.js.Conn().MaxPayload())
		return published{}, errPayloadTooLarge
	}
	if err != nil {
		if n, ok := in.publishLog.due(d.Namespace+"/"+d.Webhook, "publish_failed"); ok {
			in.log.Warn("publish failed: answering 503", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "err", err, "suppressed", n)
		}
		return published{}, errUnavailable
	}
	if in.lookups != nil {
		in.lookups.observePublish(took)
	}
	return published{duplicate: ack.Duplicate, seq: ack.Sequence, msgID: msgID, size: len(m.Data)}, nil
}

// originalDeliveryID returns the id of the delivery stored at seq (the one a
// duplicate repeats), from its subject, after checking that the message
// there carries msgID. It costs a read from the stream's leader (a replica
// behind it might not hold the original yet), paid only by duplicates;
// false means the original could not be confirmed: read is false when it
// could not be read at all (in time), true when it is not there. size is
// the duplicate's own message, of the original's size: the read (the whole
// message) is given time for it.
func (in *Ingress) originalDeliveryID(ctx context.Context, seq uint64, msgID string, size int) (id string, ok, read bool) {
	ctx, cancel := context.WithTimeout(ctx, confirmWithin(size, in.cfg.PublishTimeout))
	defer cancel()
	subject, stored, found, err := bus.MsgAt(ctx, in.js.Conn(), bus.StreamDeliveries, seq)
	if err != nil {
		in.log.Debug("cannot read the original of a duplicate", "seq", seq, "err", err)
		return "", false, false
	}
	if !found || stored != msgID {
		return "", false, true
	}
	i := strings.LastIndexByte(subject, '.')
	return subject[i+1:], i >= 0 && i < len(subject)-1, true
}

// confirmWithin bounds the read of a duplicate's original of size bytes:
// 250 ms, and 125 ms more per MiB (a duplicate of a 4 MiB body, ~5.6 MB
// with its base64, took ~0.2 s alone and ~0.5 s six at once on a single
// node, and timing out stores it again), at most the publish timeout.
func confirmWithin(size int, publishTimeout time.Duration) time.Duration {
	d := 250*time.Millisecond + time.Duration(size)*(125*time.Millisecond)/(1<<20)
	if publishTimeout > 250*time.Millisecond {
		d = min(d, publishTimeout)
	}
	return d
}

// Encoding buffers are reused: a delivery is encoded, published and
// forgotten within one request (the synchronous publish has copied the bytes
// out before it returns). Buffers grown by huge bodies are dropped.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 256 << 10

func getBuffer() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// storeRunStatus stores each run's status: queued, or its final status
// when it will never run. It is stored before the run request so that an
// executor's "running" can never be overtaken by a late "queued".
func (d *Dispatcher) storeRunStatus(ctx context.Context, items []*item) {
	if late(ctx, items) {
		return
	}
	now := d.now().UTC()
	limit := d.js.Conn().MaxPayload()
	var futs []pending
	for _, it := range items {
		if it.skip || it.failed || it.queuedStored || it.ownRecord {
			continue
		}
		var st string
		switch it.outcome {
		case message.DeliveryDispatched:
			st = message.StatusQueued
		case message.DeliveryFiltered:
			st = message.StatusFiltered
		case message.DeliveryRejected:
			st = message.StatusRejected
		case outcomeFailed:
			st = message.StatusFailed
		default:
			continue
		}
		r := d.record(it, st, now)
		data, err := fitRecord(r, limit)
		if errors.Is(err, errArgsTooLarge) {
			// A queued record keeps its arguments whole (a resumed
			// delivery publishes its run request from them): the run
			// cannot be queued, it fails with why.
			it.outcome, it.err = outcomeFailed, fmt.Errorf("the run's status record with the arguments of job %s would be over NATS' max_payload of %d even without its webhook_payload: lower the webhook's maxBodyBytes or the size of the job's arguments", r.Job, limit)
			r = d.record(it, message.StatusFailed, now)
			data, err = fitRecord(r, limit)
		}
		if err != nil {
			d.log.Error("cannot store the run's status: handing the delivery back", "delivery", it.d.ID, "run", it.d.RunID, "err", err)
			it.failed, it.retryIn = true, bus.RedeliveryBackoff(it.msg)
			continue
		}
		it.queuedAt = now
		futs = append(futs, d.publishRecord(it, r, data, jetstream.WithExpectLastSequencePerSubject(it.statusSeq)))
	}
	d.wait(ctx, futs)
}

// headerRoom is what a status record's headers may take of max_payload.
const headerRoom = 1 << 10

// errArgsTooLarge: a queued record's arguments do not fit in NATS'
// max_payload beside the rest of the record.
var errArgsTooLarge = errors.New("the run's arguments do not fit in a status record")

// fitRecord encodes status record r within NATS' limit (none when limit
// is 0). A record over it (webhook_payload, up to 64 KiB of body, and
// arguments templated from the body can take six times their size in
// JSON, each control byte escaped as \u00XX; < > & are kept as they are)
// is encoded again
// without its webhook_payload, and a record of a run that will not run
// without its arguments' values too. Only a record over the limit is
// encoded more than once.
func fitRecord(r *message.Run, limit int64) ([]byte, error) {
	data, err := message.MarshalNoHTMLEscape(r)
	if err != nil || limit <= 0 || int64(len(data))+headerRoom <= limit {
		return data, err
	}
	if r.WebhookPayload != "" {
		r.WebhookPayload = message.PayloadLeftOut
		r.WebhookPayloadTruncated = false // the marker says more
		if data, err = message.MarshalNoHTMLEscape(r); err != nil || int64(len(data))+headerRoom <= limit {
			return data, err
		}
	}
	if r.Status == message.StatusQueued {
		return nil, errArgsTooLarge
	}
	if len(r.Args) > 0 {
		args := make(map[string]string, len(r.Args))
		for k := range r.Args {
			args[k] = message.ArgLeftOut
		}
		r.Args = args
	}
	if len(r.Error) > maxRecordError {
		r.Error = strings.ToValidUTF8(r.Error[:maxRecordError], "") + "…"
	}
	if data, err = message.MarshalNoHTMLEscape(r); err != nil || int64(len(data))+headerRoom <= limit {
		return data, err
	}
	return nil, fmt.Errorf("the run's status record takes %d bytes even without its payload and arguments, over NATS' max_payload of %d", len(data), limit)
}

// maxRecordError bounds the error of a record cut to fit max_payload.
const maxRecordError = 4 << 10

// publishRuns stores the run requests of the batch in RUNS.
func (d *Dispatcher) publishRuns(ctx context.Context, items []*item) {
	if late(ctx, items) {
		return
	}
	now := d.now().UTC()
	var futs []pending
	for _, it := range items {
		if it.outcome != message.DeliveryDispatched || it.skip || it.failed {
			continue
		}
		at := now
		if !it.queuedAt.IsZero() {
			at = it.queuedAt // the queued status'
		}
		rr := runRequest(it, at)
		futs = append(futs, d.publishJSON(it, bus.RunSubject(it.d.Namespace, rr.Job), message.SchemaRunRequest, rr, bus.RunMsgID(rr.ID, it.d.ID)))
	}
	d.wait(ctx, futs)
	d.failTooLarge(ctx, items)
}

// failTooLarge ends the runs whose request NATS refused as over its
// max_payload (runRequestSize bounds a request from above, so only a
// server whose max_payload shrank since can): such a request is refused
// again on every try, so the run's queued status becomes failed, with why,
// if it is still the one stored, instead of the delivery coming back for
// ever.
func (d *Dispatcher) failTooLarge(ctx context.Context, items []*item) {
	now := d.now().UTC()
	limit := d.js.Conn().MaxPayload()
	var futs []pending
	for _, it := range items {
		if !it.tooLarge {
			continue
		}
		it.tooLarge, it.failed = false, false
		it.outcome, it.err = outcomeFailed, errRunRequestTooLarge(it.job.Metadata.Name, 0, limit)
		r := d.record(it, message.StatusFailed, now)
		if !it.queuedAt.IsZero() {
			r.QueuedAt = &it.queuedAt // the run keeps one queue time
		}
		data, err := fitRecord(r, limit)
		if err != nil || it.statusSeq == 0 {
			// Without the queued status' sequence it could overwrite
			// another status: come back, and resume reads it.
			it.failed, it.retryIn = true, bus.RedeliveryBackoff(it.msg)
			continue
		}
		futs = append(futs, d.publishRecord(it, r, data, jetstream.WithExpectLastSequencePerSubject(it.statusSeq)))
	}
	d.wait(ctx, futs)
}

// runRequest is it's run request, queued at now.
func runRequest(it *item, now time.Time) *message.RunRequest {
	return &message.RunRequest{
		Schema: message.SchemaRunRequest, ID: it.d.RunID, Namespace: it.d.Namespace, Job: it.job.Metadata.Name,
		Webhook: it.d.Webhook, DeliveryID: it.d.ID, EventID: it.d.EventID, Args: it.args,
		Payload: it.d.Body, ContentType: it.d.ContentType, Header: it.d.Header, Method: it.d.Method, Query: it.d.Query,
		ReceivedAt: it.d.ReceivedAt, Source: it.d.Source(), QueuedAt: now, Replay: it.d.ReplayOf != "",
		Callback: callback(it),
	}
}

// finish stores the outcome records of duplicates (and of deliveries whose
// outcome is not their run's, see item.ownRecord), records webhook
// status, and acks. An item whose publishes did not all succeed is NAKed:
// it comes back and resumes under its own claim. Every other outcome is
// told by the delivery's run record, already stored (runstatus.
// DeliveryOutcome reads it so): a second record per delivery would cost a
// publish, a STATUS subject (nats-server memory for as long as it is
// retained) and a message to every STATUS reader.
func (d *Dispatcher) finish(ctx context.Context, items []*item) {
	now := d.now().UTC()
	var futs []pending
	for _, it := range items {
		if it.failed || it.skip || (it.outcome != message.DeliveryDuplicate && !it.ownRecord) {
			continue
		}
		rec := &message.Run{
			Schema: message.SchemaRun, Kind: message.KindDelivery, ID: it.d.ID, Namespace: it.d.Namespace,
			Webhook: it.d.Webhook, Job: it.d.Job, DeliveryID: it.d.ID, RunID: it.d.RunID, Status: deliveryStatus(it.outcome),
			WebhookEventID: it.d.EventID, WebhookReceivedAt: it.d.ReceivedAt, WebhookSource: it.d.Source(), FinishedAt: &now,
			Replay: it.d.ReplayOf != "",
		}
		if it.err != nil {
			rec.Error = it.err.Error()
		}
		futs = append(futs, d.publishJSON(it, bus.StatusSubject(rec.Namespace, rec.ID), message.SchemaRun, rec, ""))
	}
	d.wait(ctx, futs)
	for _, it := range items {
		label := it.d.Namespace + "/" + it.d.Webhook
		if it.failed {
			_ = it.msg.NakWithDelay(cmp.Or(it.retryIn, time.Second))
			mHandedBack.Inc()
			continue
		}
		if err := it.msg.Ack(); err != nil {
			d.log.Warn("ack failed; the delivery will come back and resume", "delivery", it.d.ID, "err", err)
		}
		mDeliveries.WithLabelValues(label, it.outcome).Inc()
		if it.outcome == message.DeliveryDispatched && !it.skip {
			mAcceptToDispatch.Observe(now.Sub(it.d.ReceivedAt).Seconds())
		}
		if it.err != nil && (it.outcome == message.DeliveryRejected || it.outcome == outcomeFailed) {
			d.log.Warn("delivery did not become a run", "webhook", label, "delivery", it.d.ID, "run", it.d.RunID, "outcome", it.outcome, "err", it.err)
			if it.w != nil {
				// Not for a deleted webhook: its status was deleted with
				// it, and a webhook created again under its name would
				// show the old one's "no longer exists".
				d.notes.add(statusNote{ns: it.d.Namespace, name: it.d.Webhook, uid: it.w.Metadata.UID, err: it.err.Error()}, d.log)
			}
		}
		if it.w != nil && it.d.ReplayOf == "" {
			// Not for a replay: lastDeliveryAt tells when the sender last
			// called, and a replay is an operator's.
			d.notes.add(statusNote{ns: it.d.Namespace, name: it.d.Webhook, uid: it.w.Metadata.UID, delivered: it.d.ReceivedAt}, d.log)
		}
	}
}

// deliveryStatus is the status of the delivery record: a delivery whose run
// failed before running did not become a run, so it is rejected.
func deliveryStatus(outcome string) string {
	if outcome == outcomeFailed {
		return message.DeliveryRejected
	}
	return outcome
}

// record is the run's status record as the dispatcher knows it.
func (d *Dispatcher) record(it *item, status string, now time.Time) *message.Run {
	job := it.d.Job // the job the delivery was accepted for
	switch {
	case it.job != nil:
		job = it.job.Metadata.Name
	case job == "" && it.w != nil:
		job = it.w.Spec.Job
	}
	r := &message.Run{
		Schema: message.SchemaRun, Kind: message.KindRun, ID: it.d.RunID, Namespace: it.d.Namespace,
		Webhook: it.d.Webhook, Job: job, DeliveryID: it.d.ID, Status: status, QueuedAt: &now,
		Args: it.args, Replay: it.d.ReplayOf != "",
		WebhookPayload: message.StatusPayload(it.d.Body), WebhookPayloadTruncated: message.PayloadTruncated(it.d.Body), WebhookEventID: it.d.EventID, WebhookReceivedAt: it.d.ReceivedAt, WebhookSource: it.d.Source(),
	}
	// The callback travels with the record so that whoever stores the
	// final status — the executor, keys cancelling a queued run, or this
	// dispatcher for a run that failed before running — triggers it.
	// Filtered and rejected deliveries never became runs: no callback.
	if status == message.StatusQueued || status == message.StatusFailed {
		r.Callback = callback(it)
	}
	if message.Final(status) {
		r.FinishedAt = &now
	}
	if it.err != nil {
		r.Error = it.err.Error()
	}
	return r
}

func callback(it *item) *message.Callback {
	if it.hasStoredCB {
		return it.storedCallback
	}
	if it.w == nil || it.w.Spec.Callback == nil {
		return nil
	}
	c := it.w.Spec.Callback
	return &message.Callback{URL: c.URL, URLSecretRef: c.URLSecretRef, SecretRef: c.SecretRef}
}

type pending struct {
	it    *item
	f     jetstream.PubAckFuture
	msgID string
	// runStatus: a run's status record; its sequence becomes it's
	// statusSeq, the run's last status.
	runStatus bool
}

func (d *Dispatcher) publishJSON(it *item, subject, schema string, v any, msgID string, opts ...jetstream.PublishOpt) pending {
	data, err := message.Marshal(v)
	if err != nil {
		it.failed = true
		return pending{it: it}
	}
	var status string
	if r, ok := v.(*message.Run); ok {
		status = r.Status
	}
	return d.publish(it, subject, schema, status, data, msgID, opts...)
}

// publish sends data asynchronously; status, when not empty, is a status
// record's (its header). A publish NATS refuses as over its max_payload
// marks it tooLarge: trying again would be refused again.
func (d *Dispatcher) publish(it *item, subject, schema, status string, data []byte, msgID string, opts ...jetstream.PublishOpt) pending {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(bus.HeaderSchema, schema)
	if status != "" {
		m.Header.Set(bus.HeaderStatus, status)
	}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	var f jetstream.PubAckFuture
	var err error
	if d.publishFault != nil {
		err = d.publishFault(subject)
	}
	if err == nil {
		f, err = d.js.PublishMsgAsync(m, opts...)
	}
	if err != nil {
		d.log.Warn("publish failed", "subject", subject, "bytes", len(data), "err", err)
		it.failed = true
		it.tooLarge = errors.Is(err, nats.ErrMaxPayload) && msgID != ""
		return pending{it: it}
	}
	return pending{it: it, f: f, msgID: msgID}
}

// publishRecord publishes a run's status record; its sequence becomes it's
// statusSeq.
func (d *Dispatcher) publishRecord(it *item, r *message.Run, data []byte, opts ...jetstream.PublishOpt) pending {
	p := d.publish(it, bus.StatusSubject(r.Namespace, r.ID), message.SchemaRun, r.Status, data, "", opts...)
	p.runStatus = true
	return p
}

// wait collects acks; an item with a failed or unacknowledged publish is
// marked for NAK (it comes back and resumes under its own claim).
func (d *Dispatcher) wait(ctx context.Context, ps []pending) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range ps {
		if p.f == nil {
			continue
		}
		select {
		case ack := <-p.f.Ok():
			if ack.Duplicate && p.msgID != "" {
				d.confirmDuplicate(ctx, p, ack)
			}
			if p.runStatus {
				p.it.statusSeq = ack.Sequence
			}
		case err := <-p.f.Err():
			if runstatus.IsNotLatest(err) {
				// Another status of the run came first (an earlier
				// delivery of the event): resume reads it on the
				// redelivery.
				d.log.Info("the run's status changed since it was read: handing the delivery back", "delivery", p.it.d.ID, "run", p.it.d.RunID)
			} else {
				d.log.Warn("publish not acknowledged", "delivery", p.it.d.ID, "err", err)
			}
			p.it.failed = true
		case <-ctx.Done():
			p.it.failed = true
		}
	}
}

// confirmDuplicate checks a run request that JetStream answered as a
// duplicate (bus.ConfirmDuplicate): acking the delivery of a request that
// no write holds would lose its run. When the check cannot be made, or no
// copy is confirmed, the delivery is handed back.
func (d *Dispatcher) confirmDuplicate(ctx context.Context, p pending, ack *jetstream.PubAck) {
	err := bus.ConfirmDuplicate(ctx, d.js, p.f.Msg(), p.msgID, ack, func(msgID string, seq uint64, next string) {
		mUnconfirmedDuplicates.Inc()
		if next != "" {
			d.log.Warn("duplicate run request not confirmed: storing it under the next message id", "delivery", p.it.d.ID, "run", p.it.d.RunID, "msg_id", msgID, "seq", seq, "next", next)
		}
	})
	if err != nil {
		d.log.Warn("cannot confirm a duplicate run request; handing the delivery back", "delivery", p.it.d.ID, "run", p.it.d.RunID, "err", err)
		p.it.failed = true
	}
}

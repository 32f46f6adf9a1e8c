package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/filter"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/signature"
)

// item is one delivery of a batch on its way to an outcome.
type item struct {
	msg     jetstream.Msg
	d       message.Delivery
	w       *resource.Webhook
	job     *resource.Job
	claim   dedup.Result
	outcome string
	err     error // why the outcome is filtered/failed/rejected
	args    map[string]string
	skip    bool // already dispatched by an earlier attempt: just ack
	failed  bool // a publish failed: NAK, it comes back
}

// handleBatch takes a batch to its outcomes. The order is the invariant:
//  1. claim every event id (one pipelined round trip); the claim's owner is
//     the delivery id, so a redelivery of the same delivery continues;
//  2. store the "queued" status of runs, then their run requests (RUNS,
//     Nats-Msg-Id = run id, so a re-publish after a crash is dropped);
//  3. store delivery outcomes; only then ack.
//
// A crash anywhere before 3 redelivers the delivery and the claim lets it
// continue; a dedup store that does not answer NAKs the batch and pauses.
func (d *Dispatcher) handleBatch(ctx context.Context, msgs []jetstream.Msg) {
	items := make([]*item, 0, len(msgs))
	for _, m := range msgs {
		it := &item{msg: m}
		if err := message.Decode(m.Data(), message.SchemaDelivery, &it.d); err != nil {
			d.log.Error("undecodable delivery terminated", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		items = append(items, it)
	}
	if !d.claim(ctx, items) {
		return
	}
	for _, it := range items {
		d.decide(ctx, it)
	}
	d.dispatch(ctx, items)
	d.finish(ctx, items)
}

// claim resolves webhooks and claims event ids. It returns false when the
// dedup store failed: every message is NAKed with a delay and the
// dispatcher pauses until the store answers.
func (d *Dispatcher) claim(ctx context.Context, items []*item) bool {
	var reqs []dedup.Request
	var claimed []*item
	for _, it := range items {
		w, ok := d.cat.Webhook(it.d.Namespace, it.d.Webhook)
		if !ok {
			it.outcome, it.err = message.DeliveryRejected, fmt.Errorf("webhook %s/%s no longer exists", it.d.Namespace, it.d.Webhook)
			continue
		}
		it.w = w
		if it.d.ReplayOf != "" {
			it.claim = dedup.Claimed // replays bypass dedup on purpose
			continue
		}
		reqs = append(reqs, dedup.Request{Key: dedup.Key(w.Metadata.UID, it.d.EventID), Owner: it.d.ID, TTL: d.window(w)})
		claimed = append(claimed, it)
	}
	if len(reqs) == 0 {
		return true
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	res, err := d.store.ClaimBatch(cctx, reqs)
	cancel()
	mDedupSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		d.log.Error("dedup store failed: pausing and handing the batch back", "err", err, "batch", len(items))
		d.paused.Store(true)
		mPaused.Set(1)
		for _, it := range items {
			_ = it.msg.NakWithDelay(d.cfg.PauseDelay)
		}
		return false
	}
	for i, it := range claimed {
		it.claim = res[i]
	}
	return true
}

// window is the webhook's dedup window: its own, else its profile's default,
// else the dispatcher's default.
func (d *Dispatcher) window(w *resource.Webhook) time.Duration {
	if w.Spec.DedupWindow > 0 {
		return w.Spec.DedupWindow.D()
	}
	if s := w.Spec.Auth.Signature; s != nil {
		if p, ok := signature.Lookup(s.Profile); ok {
			return p.DefaultWindow()
		}
	}
	return d.cfg.DefaultWindow
}

// decide picks the outcome of one claimed delivery: duplicate, filtered,
// failed (arguments cannot be resolved), rejected (no job) or dispatched.
func (d *Dispatcher) decide(ctx context.Context, it *item) {
	if it.outcome != "" {
		return
	}
	if it.claim == dedup.Duplicate {
		it.outcome = message.DeliveryDuplicate
		return
	}
	if it.claim == dedup.Continued {
		// An earlier attempt got this far; if its run moved past queued,
		// the run request is stored and only the ack was lost.
		if r, err := runstatus.Get(ctx, d.js, it.d.RunID); err == nil && r.Status != message.StatusQueued {
			it.outcome, it.skip = message.DeliveryDispatched, true
			return
		}
	}
	w := it.w
	if p, err := d.cache.filter(w); err != nil {
		it.outcome, it.err = message.DeliveryRejected, fmt.Errorf("filter does not compile: %w", err)
		return
	} else if p != nil {
		ok, err := p.Match(ctx, filter.Input{Body: it.d.Body, ContentType: it.d.ContentType, Header: it.d.Header, Query: it.d.Query, Method: it.d.Method})
		if err != nil {
			it.outcome, it.err = message.DeliveryFiltered, fmt.Errorf("filter: %w", err)
			return
		}
		if !ok {
			it.outcome = message.DeliveryFiltered
			return
		}
	}
	job, ok := d.cat.Job(w.Metadata.Namespace, w.Spec.Job)
	if !ok {
		it.outcome, it.err = message.DeliveryRejected, fmt.Errorf("job %s not found in namespace %s", w.Spec.Job, w.Metadata.Namespace)
		return
	}
	it.job = job
	set, err := d.cache.templates(job)
	if err == nil {
		data := argtemplate.NewData(it.d.Body, it.d.ContentType, it.d.Header, it.d.Query, it.d.Method, w.Metadata.Name, it.d.EventID)
		it.args, err = set.Resolve(data)
	}
	if err != nil {
		it.outcome, it.err = outcomeFailed, fmt.Errorf("cannot resolve job arguments: %w", err)
		return
	}
	it.outcome = message.DeliveryDispatched
}

// outcomeFailed is a delivery whose run was recorded failed before running.
const outcomeFailed = "failed"

// dispatch stores run statuses and run requests for the batch.
func (d *Dispatcher) dispatch(ctx context.Context, items []*item) {
	now := d.now().UTC()
	// Phase 1: the run's status (queued, or its terminal status when it will
	// never run) — stored before the request so that an executor's "running"
	// can never be overtaken by a late "queued".
	var futs []pending
	for _, it := range items {
		if it.skip || it.w == nil {
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
		futs = append(futs, d.publishJSON(it, bus.StatusSubject(r.Namespace, r.ID), message.SchemaRun, r, ""))
	}
	d.wait(ctx, futs)
	// Phase 2: run requests.
	futs = futs[:0]
	for _, it := range items {
		if it.outcome != message.DeliveryDispatched || it.skip || it.failed {
			continue
		}
		rr := &message.RunRequest{
			Schema: message.SchemaRunRequest, ID: it.d.RunID, Namespace: it.d.Namespace, Job: it.job.Metadata.Name,
			Webhook: it.d.Webhook, DeliveryID: it.d.ID, EventID: it.d.EventID, Args: it.args,
			Payload: it.d.Body, ContentType: it.d.ContentType, Header: it.d.Header,
			ReceivedAt: it.d.ReceivedAt, Source: source(&it.d), QueuedAt: now, Replay: it.d.ReplayOf != "",
		}
		if cb := it.w.Spec.Callback; cb != nil {
			rr.Callback = &message.Callback{URL: cb.URL, SecretRef: cb.SecretRef}
		}
		futs = append(futs, d.publishJSON(it, bus.RunSubject(it.d.Namespace, rr.Job), message.SchemaRunRequest, rr, rr.ID))
	}
	d.wait(ctx, futs)
}

// finish stores delivery outcomes, records webhook status, and acks.
func (d *Dispatcher) finish(ctx context.Context, items []*item) {
	now := d.now().UTC()
	var futs []pending
	for _, it := range items {
		if it.failed {
			continue
		}
		rec := &message.Run{
			Schema: message.SchemaRun, Kind: message.KindDelivery, ID: it.d.ID, Namespace: it.d.Namespace,
			Webhook: it.d.Webhook, Job: it.d.Job, DeliveryID: it.d.ID, RunID: it.d.RunID, Status: deliveryStatus(it.outcome),
			WebhookEventID: it.d.EventID, WebhookReceivedAt: it.d.ReceivedAt, WebhookSource: source(&it.d), FinishedAt: &now,
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
			_ = it.msg.NakWithDelay(time.Second)
			continue
		}
		if err := it.msg.Ack(); err != nil {
			d.log.Warn("ack failed; the delivery will come back and continue", "delivery", it.d.ID, "err", err)
		}
		mDeliveries.WithLabelValues(label, it.outcome).Inc()
		if it.outcome == message.DeliveryDispatched && !it.skip {
			mAcceptToDispatch.Observe(now.Sub(it.d.ReceivedAt).Seconds())
		}
		if it.err != nil && (it.outcome == message.DeliveryRejected || it.outcome == outcomeFailed) {
			d.log.Warn("delivery did not become a run", "webhook", label, "delivery", it.d.ID, "run", it.d.RunID, "outcome", it.outcome, "err", it.err)
			if err := d.status.Error(ctx, it.d.Namespace, it.d.Webhook, it.err.Error()); err != nil {
				d.log.Warn("cannot record lastError", "webhook", label, "err", err)
			}
		}
		if it.w != nil {
			_ = d.status.Delivered(ctx, it.d.Namespace, it.d.Webhook, it.d.ReceivedAt)
		}
	}
}

func deliveryStatus(outcome string) string {
	if outcome == outcomeFailed {
		return message.DeliveryRejected
	}
	return outcome
}

// record is the run's status record as the dispatcher knows it.
func (d *Dispatcher) record(it *item, status string, now time.Time) *message.Run {
	payload := it.d.Body
	if len(payload) > message.MaxStatusPayload {
		payload = payload[:message.MaxStatusPayload]
	}
	r := &message.Run{
		Schema: message.SchemaRun, Kind: message.KindRun, ID: it.d.RunID, Namespace: it.d.Namespace,
		Webhook: it.d.Webhook, Job: it.w.Spec.Job, DeliveryID: it.d.ID, Status: status, QueuedAt: &now,
		Args: it.args, Replay: it.d.ReplayOf != "",
		WebhookPayload: string(payload), WebhookEventID: it.d.EventID, WebhookReceivedAt: it.d.ReceivedAt, WebhookSource: source(&it.d),
	}
	if message.Final(status) {
		r.FinishedAt = &now
	}
	if it.err != nil {
		r.Error = it.err.Error()
	}
	return r
}

// source is the run's webhook_source: the signature profile that
// authenticated it, else the auth mode.
func source(d *message.Delivery) string {
	if d.Profile != "" {
		return d.Profile
	}
	if len(d.Principal) > 4 && d.Principal[:4] == "key:" {
		return "apikey"
	}
	return "url"
}

type pending struct {
	it *item
	f  jetstream.PubAckFuture
}

func (d *Dispatcher) publishJSON(it *item, subject, schema string, v any, msgID string) pending {
	data, err := json.Marshal(v)
	if err != nil {
		it.failed = true
		return pending{it: it}
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(bus.HeaderSchema, schema)
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	f, err := d.js.PublishMsgAsync(m, opts...)
	if err != nil {
		d.log.Warn("publish failed", "subject", subject, "err", err)
		it.failed = true
		return pending{it: it}
	}
	return pending{it: it, f: f}
}

// wait collects acks; an item with a failed or unacknowledged publish is
// marked for NAK (it comes back and continues under its own claim).
func (d *Dispatcher) wait(ctx context.Context, ps []pending) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range ps {
		if p.f == nil {
			continue
		}
		select {
		case <-p.f.Ok():
		case err := <-p.f.Err():
			d.log.Warn("publish not acknowledged", "delivery", p.it.d.ID, "err", err)
			p.it.failed = true
		case <-ctx.Done():
			p.it.failed = true
		}
	}
}

package dispatcher

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/filter"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// item is one delivery of a batch on its way to an outcome.
type item struct {
	msg         jetstream.Msg
	d           message.Delivery
	redelivered bool   // JetStream delivered this message before
	delivered   uint64 // how many times JetStream has delivered it, this time included
	w           *resource.Webhook
	// gone is why the delivery's webhook cannot take it (it.w is nil):
	// deleted, or deleted and made again under its name (a new uid).
	gone    error
	job     *resource.Job
	claim   dedup.Result
	outcome string
	err     error // why the outcome is filtered/failed/rejected
	args    map[string]string
	// queuedStored: an earlier attempt stored the run's queued status, so
	// it is not stored again (it could overwrite an executor's newer one).
	queuedStored bool
	// queuedAt is the time of the run's queued status (stored now, or by
	// the earlier attempt): its request carries the same, so that every
	// record of the run has one queue time, the run list's order.
	queuedAt time.Time
	// statusSeq is the sequence of the run's last status when resume read
	// one (an earlier delivery's, final; or this delivery's queued) or
	// this batch stored it, else 0: the run's status is stored only if it
	// is still the last (0: if the run has none), so a status never
	// overwrites another delivery's run in flight, nor an executor's newer
	// one.
	statusSeq uint64
	// storedCallback: resume took the run's callback from its stored
	// record (the webhook may have changed or gone since).
	storedCallback *message.Callback
	hasStoredCB    bool
	skip           bool // an earlier attempt took it further than queued: only the ack is left
	// ownRecord: the outcome goes to a delivery record of its own, not to
	// the run's status (which is another delivery's run, see resume).
	ownRecord bool
	failed    bool          // a publish failed or the state is unknown: NAK, it comes back
	retryIn   time.Duration // when failed, the NAK's delay if not the usual second
	// tooLarge: NATS refused the run request as over its max_payload; it
	// would refuse it again (failTooLarge).
	tooLarge bool
}

// Points of handleBatch where a test can make the dispatcher "crash": the
// batch is abandoned there, neither acked nor NAKed, as if the process died.
const (
	stageClaimed   = "claimed"
	stageQueued    = "queued"
	stagePublished = "published"
)

// handleBatch takes a batch to its outcomes. The order is the invariant:
//  1. claim every event id (one pipelined round trip); the claim's owner is
//     the delivery id, so a redelivery of the same delivery continues;
//  2. store the "queued" status of runs, then their run requests (RUNS,
//     Nats-Msg-Id derived from the run and the delivery, so a re-publish
//     after a crash is dropped);
//  3. store a duplicate's outcome record (every other delivery's outcome
//     is its run's record, stored in 2); only then ack.
//
// A crash anywhere before 3 redelivers the delivery; its claim lets it
// continue, and resume reads the run's status to do only what is left. A
// dedup store that does not answer NAKs the batch and pauses.
//
// Steps 1 and 2 must end while the batch is surely still this
// dispatcher's: once AckWait lapses JetStream redelivers it, and two
// dispatchers working on one delivery at once could store "queued" over an
// executor's "running". So they run under a deadline of a quarter of
// AckWait — a delivery waits in the pull buffer behind at most two batches,
// so it is handled within three quarters of its AckWait — and a batch that
// misses it (NATS or Redis stalling) is handed back whole. Deciding (filters,
// templates: the work that grows with the deliveries) stops halfway there,
// and only the deliveries not decided by then are handed back (decideAll).
func (d *Dispatcher) handleBatch(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, d.cfg.AckWait/4)
	defer cancel()
	items := make([]*item, 0, len(msgs))
	for _, m := range msgs {
		it := &item{msg: m}
		if err := message.Decode(m.Data(), message.SchemaDelivery, &it.d); err != nil {
			if schema, wait, ok := bus.HandBackOtherVersion(m, message.SchemaDelivery); ok {
				d.log.Error("delivery of a schema this dispatcher cannot read handed back: upgrade the dispatchers", "subject", m.Subject(), "schema", schema, "in", wait)
				mHandedBack.Inc()
				continue
			}
			d.log.Error("undecodable delivery terminated", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		if md, err := m.Metadata(); err == nil {
			it.redelivered, it.delivered = md.NumDelivered > 1, md.NumDelivered
		}
		items = append(items, it)
	}
	leader := newLeaderRecords(d.js.Conn())
	if !d.claim(wctx, items, leader) || d.crash(stageClaimed) {
		return
	}
	d.resumeAll(wctx, items)
	d.decideAll(wctx, items, start, leader)
	d.storeRunStatus(wctx, items)
	if d.crash(stageQueued) {
		return
	}
	d.publishRuns(wctx, items)
	if d.crash(stagePublished) {
		return
	}
	d.finish(ctx, items)
}

// late hands the whole batch back when its deadline has passed.
func late(ctx context.Context, items []*item) bool {
	if ctx.Err() == nil {
		return false
	}
	for _, it := range items {
		it.failed = true
	}
	return true
}

func (d *Dispatcher) crash(stage string) bool {
	return d.crashAt != nil && d.crashAt(stage)
}

// claim resolves webhooks and claims event ids. It returns false when the
// dedup store failed: every message is NAKed with a delay and the
// dispatcher pauses until the store answers. A webhook the catalog does
// not give is asked of the bucket's leader (leader.go).
func (d *Dispatcher) claim(ctx context.Context, items []*item, leader *leaderRecords) bool {
	var reqs []dedup.Request
	var claimed []*item
	for _, it := range items {
		w, ok := d.cat.Webhook(it.d.Namespace, it.d.Webhook)
		if ok && it.d.RunID == "" {
			it.d.RunID = runIDOf(w, &it.d) // none from the ingress: derive it as it would have
		}
		if !ok || runIDOf(w, &it.d) != it.d.RunID {
			// Gone: deleted, or deleted and made again under its name
			// (a new uid, so not the run id the ingress derived). The
			// webhook now under that name is another one: its job, its
			// dedup claims and its run ids are not this delivery's.
			if d.catalogMayLag(it) {
				continue
			}
			if v, _, err := leader.webhook(ctx, it); v != leaderGone {
				d.waitForConfig(it, v, "", err)
				continue
			}
			// Rejected in decide, unless resume finds that an earlier
			// attempt took it further: its run may be queued, running or
			// done, and a "rejected" stored now would overwrite it.
			it.gone = fmt.Errorf("webhook %s/%s no longer exists", it.d.Namespace, it.d.Webhook)
			it.claim = dedup.Claimed
			// A delivery without a run id (a replay an older keys
			// stored) has none to derive without its webhook: its
			// rejection is a record of its own, under its delivery id.
			it.ownRecord = it.d.RunID == ""
			continue
		}
		it.w = w
		if it.d.ReplayOf != "" {
			it.claim = dedup.Claimed // replays bypass dedup on purpose
			continue
		}
		reqs = append(reqs, dedup.Request{Key: dedup.Key(w.Metadata.UID, it.d.EventID), Owner: it.d.ID, TTL: dedup.Window(w, d.cfg.DefaultWindow)})
		claimed = append(claimed, it)
	}
	if len(reqs) == 0 {
		return true
	}
	if ctx.Err() != nil {
		// The batch's time went on leader reads (claim's own): not the
		// dedup store's fault, so no pause. Handed back, to come again.
		d.log.Warn("no time left to claim the batch's events: handing the batch back", "batch", len(items))
		for _, it := range items {
			_ = it.msg.NakWithDelay(time.Second)
		}
		return false
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	res, err := d.store.ClaimBatch(cctx, reqs)
	cancel()
	mDedupSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		mDedupErrors.Inc()
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

// resumeAll resumes the deliveries of a batch that may have been worked on
// before — their claim was already their own, or JetStream redelivered
// them — reading their runs' statuses in parallel: after an outage a whole
// backlog comes back redelivered.
func (d *Dispatcher) resumeAll(ctx context.Context, items []*item) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, it := range items {
		// A redelivered duplicate too: its claim may have expired and been
		// taken by a later delivery of the event after it stored its own
		// "queued", and that run must still be published, not left queued
		// (the later delivery waits for it to end).
		// And a delivery whose webhook is gone: it made no claim, so it
		// may repeat the delivery whose run the run id holds.
		if it.outcome != "" || it.failed || (it.claim != dedup.Continued && !it.redelivered && it.w != nil) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d.resume(ctx, it)
		}()
	}
	wg.Wait()
}

// resume finds out how far an earlier attempt at this delivery got. The
// run's status says: nothing stored (start afresh), queued by this
// delivery (the run request may or may not be in RUNS: publish it again,
// its message id drops a copy), or further along (only the ack is left).
func (d *Dispatcher) resume(ctx context.Context, it *item) {
	r, seq, err := runstatus.GetSeq(ctx, d.js, it.d.RunID)
	if it.claim == dedup.Duplicate && (errors.Is(err, runstatus.ErrNotFound) || err == nil && r.DeliveryID != it.d.ID) {
		return // a duplicate that never got further than its claim
	}
	if err == nil && r.DeliveryID != it.d.ID && d.decidedBefore(ctx, it) {
		return
	}
	switch {
	case errors.Is(err, runstatus.ErrNotFound):
		return
	case errors.Is(err, runstatus.ErrUndecodable):
		// It reads the same until a release that can read it runs (a
		// rolling upgrade) or the record is fixed: come back later and
		// later, not every second.
		it.retryIn = bus.RedeliveryBackoff(it.msg)
		d.log.Error("cannot decode the run's status to resume a delivery", "delivery", it.d.ID, "run", it.d.RunID, "in", it.retryIn, "err", err)
		it.failed = true
		return
	case err != nil:
		// Without the status the safe moves are unknown: come back later.
		d.log.Warn("cannot read the run's status to resume a delivery", "delivery", it.d.ID, "run", it.d.RunID, "err", err)
		it.failed = true
		return
	case r.DeliveryID != it.d.ID && it.w == nil:
		// The webhook is gone, so no dedup claim says whether this
		// delivery repeats the one whose run this is: its rejection is a
		// record of its own, and the run's status stays that run's.
		it.ownRecord = true
		return
	case r.DeliveryID != it.d.ID && it.d.ReplayOf == "" && d.queuedWithinWindow(it, r):
		// Another delivery of the event was queued within the dedup
		// window, yet this one's claim went through: the dedup store lost
		// the claim (a Redis flushed, failed over without its data). The
		// run's record still says the event ran: this is its duplicate.
		it.outcome = message.DeliveryDuplicate
		return
	case r.DeliveryID != it.d.ID && it.d.ReplayOf == "" && ranLater(r, it.d.ReceivedAt):
		// A later delivery of the event holds the run, and ran (or runs)
		// it: this one, come to a dispatcher only now (handed back, or
		// handled again after its ack), is its duplicate; running it
		// would run the event again.
		it.outcome = message.DeliveryDuplicate
		return
	case r.DeliveryID != it.d.ID && r.Kind == message.KindRun && !message.Final(r.Status):
		// The run id is the event's: an earlier delivery of it (sent
		// again after its dedup window) has a run in flight. This one
		// waits for it to end rather than overwrite its status.
		it.retryIn = bus.RedeliveryBackoff(it.msg)
		d.log.Info("an earlier delivery of the event is still running under the run's id: waiting for it to end", "delivery", it.d.ID, "run", it.d.RunID, "status", r.Status, "of", r.DeliveryID, "in", it.retryIn)
		it.failed = true
		return
	case r.DeliveryID != it.d.ID:
		it.statusSeq = seq // an earlier run of the event, ended
		return
	}
	switch o := runstatus.OutcomeOf(r); o {
	case runstatus.OutcomeQueued:
		// An earlier attempt dispatched it: finish that, with the
		// arguments it stored, whatever the filter, the job or its
		// templates say now. Deciding again could leave the run queued
		// for ever (a filter changed meanwhile: no run request, yet the
		// queued status stays). A job deleted since is left to the
		// executor, which fails the run with why.
		it.queuedStored, it.statusSeq = true, seq
		if r.QueuedAt != nil {
			it.queuedAt = *r.QueuedAt
		}
		it.outcome, it.args = message.DeliveryDispatched, r.Args
		it.storedCallback, it.hasStoredCB = r.Callback, true
		job, ok := d.cat.Job(it.d.Namespace, r.Job)
		if !ok {
			job = &resource.Job{Metadata: resource.Meta{Name: r.Job, Namespace: it.d.Namespace}}
		}
		it.job = job
		return
	case runstatus.OutcomeFailed:
		it.outcome = outcomeFailed // failed here, before it could run
	default:
		it.outcome = o
	}
	if r.Error != "" && it.outcome != message.DeliveryDispatched {
		it.err = errors.New(r.Error)
	}
	it.skip = true
}

// receivedSkew is how far apart the clocks of two ingress replicas may be:
// a delivery received by one is later than one received by another only
// when its receipt time is later by more.
const receivedSkew = time.Minute

// ranLater tells whether run r, of another delivery of an event, was
// dispatched (not filtered or rejected: the event did not run under it) for
// a delivery received later than at (by more than receivedSkew).
func ranLater(r *message.Run, at time.Time) bool {
	if r.Kind != message.KindRun || !r.WebhookReceivedAt.After(at.Add(receivedSkew)) {
		return false
	}
	switch runstatus.OutcomeOf(r) {
	case runstatus.OutcomeQueued, message.DeliveryDispatched:
		return true
	}
	return false
}

// decidedBefore tells whether delivery it, whose run id holds another
// delivery's run, was decided by an earlier attempt: it has a record of its
// own (a duplicate, or rejected apart from the run). Only the ack is left
// then. It is for a delivery handled again long after its ack, when its
// dedup claim has expired: a consumer made again (after the ack floor,
// above which deliveries acked out of order come back, or from the
// stream's start) or a lost ack past a short dedupWindow. Without it such a
// duplicate found the run ended and ran the event again. A record that
// cannot be read hands it back (it.failed).
func (d *Dispatcher) decidedBefore(ctx context.Context, it *item) bool {
	own, err := runstatus.Get(ctx, d.js, it.d.ID)
	switch {
	case errors.Is(err, runstatus.ErrNotFound):
		return false
	case err != nil:
		d.log.Warn("cannot read the delivery's own record to resume it", "delivery", it.d.ID, "run", it.d.RunID, "err", err)
		it.failed, it.retryIn = true, bus.RedeliveryBackoff(it.msg)
		return true
	case own.Kind != message.KindDelivery:
		return false
	}
	it.outcome, it.skip = own.Status, true
	return true
}

// decide picks the outcome of one claimed delivery: duplicate, filtered,
// failed (arguments cannot be resolved), rejected (no job, webhook gone or
// disabled) or dispatched. It returns false when ctx ended while its
// filter was being evaluated: the delivery is not decided.
func (d *Dispatcher) decide(ctx context.Context, it *item, leader *leaderRecords) bool {
	if it.outcome != "" || it.failed {
		return true
	}
	if it.claim == dedup.Duplicate {
		it.outcome = message.DeliveryDuplicate
		return true
	}
	if it.w == nil {
		it.outcome, it.err = message.DeliveryRejected, it.gone
		return true
	}
	w := it.w
	if w.Spec.Disabled {
		// The ingress answers 404 for it: a delivery it accepted before
		// the webhook was disabled does not run either. (Enabled again a
		// moment ago, this dispatcher's configuration may lag.)
		if d.catalogMayLag(it) {
			return true
		}
		// Past the grace, the bucket's leader says whether it still is.
		switch v, lw, err := leader.webhook(ctx, it); {
		case v == leaderHas && !lw.Spec.Disabled, v == leaderUnreadable, v == leaderUnknown:
			d.waitForConfig(it, v, "", err)
			return true
		}
		it.outcome, it.err = message.DeliveryRejected, fmt.Errorf("webhook %s/%s is disabled (spec.disabled): its deliveries do not run; replay this one once it is enabled again", w.Metadata.Namespace, w.Metadata.Name)
		return true
	}
	if p, err := d.cache.filter(w); err != nil {
		it.outcome, it.err = message.DeliveryRejected, fmt.Errorf("filter does not compile: %w", err)
		return true
	} else if p != nil {
		ok, err := p.Match(ctx, filter.Input{Body: it.d.Body, ContentType: it.d.ContentType, Header: it.d.Header, Query: it.d.Query, Method: it.d.Method})
		if err != nil && ctx.Err() != nil {
			return false // cut off: not the filter's answer
		}
		if err != nil {
			it.outcome, it.err = message.DeliveryFiltered, err
			return true
		}
		if !ok {
			// Said in the record's error too (API.md: filtered "with
			// error"), so a filtered run tells why, as one whose filter
			// could not be evaluated does.
			it.outcome, it.err = message.DeliveryFiltered, errFilterFalse
			return true
		}
	}
	// The job the ingress accepted the delivery for (and checked an API
	// key's scopes against), not whatever job the webhook names now: a
	// webhook pointed at another job meanwhile runs it for the deliveries
	// accepted after the change. A delivery of an older ingress names none.
	name := cmp.Or(it.d.Job, w.Spec.Job)
	job, ok := d.cat.Job(w.Metadata.Namespace, name)
	if !ok {
		if d.catalogMayLag(it) {
			return true
		}
		if v, err := leader.job(ctx, w.Metadata.Namespace, name); v != leaderGone {
			d.waitForConfig(it, v, w.Metadata.Namespace+"/"+name, err)
			return true
		}
		it.outcome, it.err = message.DeliveryRejected, fmt.Errorf("job %s not found in namespace %s", name, w.Metadata.Namespace)
		return true
	}
	it.job = job
	set, err := d.cache.templates(job)
	if err == nil {
		// Defaults only: no need to parse the body. A GET delivery always
		// runs with its defaults (API.md; Janus), whatever its query.
		var data argtemplate.Data
		if set.Templated() && it.d.Method != http.MethodGet {
			data = argtemplate.NewData(it.d.Body, it.d.ContentType, it.d.Header, it.d.Query, it.d.Method, w.Metadata.Name, it.d.EventID)
		}
		it.args, err = set.Resolve(data)
		if err == nil && it.d.Method == http.MethodGet {
			// Rendered without data, a template that reads none (the
			// event id, the method) still gives a value: not the default.
			for _, a := range job.Spec.Args {
				if a.Default != nil {
					it.args[a.Name] = *a.Default
				}
			}
		}
	}
	if err != nil {
		it.outcome, it.err = outcomeFailed, fmt.Errorf("cannot resolve the arguments of job %s: %w", job.Metadata.Name, err)
		return true
	}
	if size, limit := runRequestSize(it, d.now(), d.js.Conn().MaxPayload()); limit > 0 && size > limit {
		// It could never be stored: handing the delivery back would
		// bring it back for ever.
		it.outcome, it.err = outcomeFailed, errRunRequestTooLarge(job.Metadata.Name, size, limit)
		return true
	}
	it.outcome = message.DeliveryDispatched
	return true
}

// errRunRequestTooLarge is the error of a run whose request NATS would
// refuse (size 0: NATS refused it).
func errRunRequestTooLarge(job string, size, limit int64) error {
	about := "is"
	if size > 0 {
		about = fmt.Sprintf("would take about %d bytes,", size)
	}
	return fmt.Errorf("the run request of job %s %s over NATS' max_payload of %d: lower the webhook's maxBodyBytes or the size of the job's arguments", job, about, limit)
}

// runIDOf is the run id of delivery d of webhook w, as the ingress derives
// it (keys, for a replay: from the replay's own delivery id).
func runIDOf(w *resource.Webhook, d *message.Delivery) string {
	if d.ReplayOf != "" {
		return ident.RunID(w.Metadata.UID, d.EventID, d.ID)
	}
	return ident.RunID(w.Metadata.UID, d.EventID, "")
}

// queuedWithinWindow reports whether run record r (another delivery's run
// of it's event) was queued within it's webhook's dedup window of now: its
// claim would still be held.
func (d *Dispatcher) queuedWithinWindow(it *item, r *message.Run) bool {
	return dedup.QueuedWithinWindow(r, d.now(), dedup.Window(it.w, d.cfg.DefaultWindow))
}

// runRequestSize returns NATS' limit and the encoded size of it's run
// request, or a bound of that size from above when the bound is within the
// limit: the body in base64, every argument and header at JSON's worst
// escaping (6 bytes, \u00XX, per byte), and the fixed fields. Only a
// request whose bound is over the limit is encoded to be measured.
func runRequestSize(it *item, now time.Time, limit int64) (size, max int64) {
	n := int64(base64.StdEncoding.EncodedLen(len(it.d.Body))) + 8<<10
	for k, v := range it.args {
		n += 6*int64(len(k)+len(v)) + 8
	}
	for _, m := range []map[string][]string{it.d.Header, it.d.Query} {
		for k, vs := range m {
			for _, v := range vs {
				n += 6*int64(len(k)+len(v)) + 8
			}
		}
	}
	if limit <= 0 || n <= limit {
		return n, limit
	}
	b, err := message.Marshal(runRequest(it, now))
	if err != nil {
		return n, limit
	}
	return int64(len(b)) + 1<<10, limit // and its headers
}

// errFilterFalse is the error of a delivery its webhook's filter let
// through as false.
var errFilterFalse = errors.New("the webhook's filter is false for this delivery")

// catalogGrace is how long after its arrival a delivery whose webhook or
// job is unknown here is handed back without a question rather than
// rejected: the ingress knew them, and this dispatcher's configuration
// watch may be a moment behind (a webhook created just before its first
// delivery). Past it, the bucket's leader is asked before the delivery is
// rejected (leader.go): the clocks of the ingress and this dispatcher may
// differ by more, and a watch may be down for longer.
const catalogGrace = 5 * time.Second

// catalogMayLag marks it for another attempt when its configuration may
// not have reached this dispatcher yet, by the time it was received.
func (d *Dispatcher) catalogMayLag(it *item) bool {
	if d.now().Sub(it.d.ReceivedAt) >= catalogGrace {
		return false
	}
	it.failed = true
	return true
}

// outcomeFailed is a delivery whose run was recorded failed before running.
const outcomeFailed = "failed"

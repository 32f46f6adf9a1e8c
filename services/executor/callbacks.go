package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// deliverCallbacks POSTs final run statuses to webhooks' callback URLs from
// a durable consumer on STATUS (shared by every executor), so callbacks
// survive restarts, are retried with backoff, and never hold up a run. Up
// to CallbackConcurrency are sent at once, at most half of them to one
// receiver host, so a slow receiver does not hold up the others.
func (x *Executor) deliverCallbacks(ctx context.Context) error {
	initCallbackSeries()
	cfg := jetstream.ConsumerConfig{
		Durable:       bus.ConsumerCallbacks,
		Description:   "Signed callbacks of final run statuses",
		FilterSubject: bus.StatusAll,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       x.cfg.CallbackTimeout + 15*time.Second,
		// One delivery per attempt, and callbackHandBacks more: a
		// delivery handed back at shutdown (a NAK) counts too (though
		// not as an attempt, see callbackAttempt), and past this bound
		// NATS would drop the callback, neither sent nor given up. A
		// failure past the last attempt is given up (a Term) whatever
		// this bound.
		MaxDeliver:    len(x.cfg.CallbackBackoff) + 1 + callbackHandBacks,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		// A callback waiting out its backoff (a delayed NAK) stays
		// pending: the bound must be high enough that one dead
		// receiver's retries cannot stall every other callback.
		MaxAckPending: 100_000,
	}
	// Callbacks read their secrets and their webhook (disabled ones send
	// none) from the catalog: before it is loaded each would fail an
	// attempt for a secret not found, or go out for a disabled webhook.
	select {
	case <-x.cat.Ready():
	case <-ctx.Done():
		return nil
	}
	x.attemptsBucket(ctx)
	// A callback waits for a slot of its receiver's host, then for a
	// sender, in a goroutine of its own that keeps the message alive: the
	// consumer's handler never blocks, so a callback to a healthy receiver
	// is not queued behind those of a dead one, and a waiting message is
	// not redelivered (which would count as an attempt). Waiting callbacks
	// are bounded; past the bound the handler waits (back-pressure). So
	// that one receiver that hangs cannot fill that bound alone (it drains
	// at half the senders per CallbackTimeout), a host may have at most a
	// quarter of it waiting: beyond that its callbacks are failed
	// attempts, retried after their backoff, as if it had refused them.
	senders := make(chan struct{}, x.cfg.CallbackConcurrency)
	waitCap := 64 * x.cfg.CallbackConcurrency
	hosts := &hostLimiter{per: max(1, x.cfg.CallbackConcurrency/2), waitMax: waitCap / 4, hosts: map[string]*hostSlots{}}
	waiting := make(chan struct{}, waitCap)
	// Failing a callback counts its attempt in a bucket (two NATS round
	// trips): done beside the handler, a few at a time.
	failing := make(chan struct{}, x.cfg.CallbackConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait() // after consumeDurable: no handler adds to wg any more
	// beside runs f for callback m in a goroutine of its own once one of
	// sem's slots is free, or hands m back when the executor stops first.
	beside := func(sem chan struct{}, m jetstream.Msg, f func()) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			_ = m.Nak() // shutting down: another executor sends it
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f()
		}()
	}
	// send takes callback m of run r (its callback current) to a sender.
	send := func(m jetstream.Msg, r *message.Run) {
		host := x.callbackHostOf(r)
		h, ok := hosts.join(host)
		if !ok {
			if ctx.Err() != nil {
				_ = m.Nak() // shutting down: another executor sends it
				return
			}
			beside(failing, m, func() {
				x.callbackFailed(m, r, fmt.Errorf("%d callbacks to its host are waiting already", hosts.waitMax))
			})
			return
		}
		select {
		case waiting <- struct{}{}:
		case <-ctx.Done():
			hosts.leave(host, h)
			_ = m.Nak() // shutting down: another executor sends it
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-waiting }()
			_ = m.InProgress() // it may have sat in the client's buffer
			stop := holdMsg(m, (x.cfg.CallbackTimeout+15*time.Second)/3)
			if !hosts.acquire(ctx, host, h) {
				stop()
				_ = m.Nak()
				return
			}
			defer hosts.release(host, h)
			select {
			case senders <- struct{}{}:
			case <-ctx.Done():
				stop()
				_ = m.Nak()
				return
			}
			defer func() { <-senders }()
			stop()
			_ = m.InProgress() // a whole AckWait for the request from here
			x.callback(ctx, m, r)
		}()
	}
	// Whether to send a callback the catalog cannot tell alone is asked of
	// the webhooks bucket's leader beside the handler, a few at a time.
	confirming := make(chan struct{}, x.cfg.CallbackConcurrency)
	return x.consumeDurable(ctx, bus.StreamStatus, cfg, true, func(m jetstream.Msg) {
		// Most events need no callback (every status of every run and
		// delivery passes here): they are acked at once, without a sender.
		r, ok := callbackOf(m)
		if !ok {
			_ = m.Ack()
			return
		}
		if cb, ok := x.catalogCallback(r); ok {
			r.Callback = cb
			send(m, r)
			return
		}
		// The catalog lacks the webhook, or says to send nothing: a drop
		// cannot be undone, and the catalog may lag behind the bucket (a
		// webhook made, enabled or given a callback a moment ago).
		beside(confirming, m, func() {
			_ = m.InProgress()
			cb, dropped := x.confirmedCallback(ctx, r)
			if cb == nil {
				// A webhook disabled, deleted, or whose callback was
				// removed, stops its callbacks too, those waiting for a
				// retry among them, as disabling or deleting an endpoint
				// does at Svix; before any wait for its host (often why it
				// was disabled: a receiver that hangs).
				mCallbacks.WithLabelValues(callbackDropped).Inc()
				x.log.Info("callback dropped: "+dropped, "run", r.ID, "webhook", r.Namespace+"/"+r.Webhook)
				_ = m.Term()
				return
			}
			r.Callback = cb
			send(m, r)
		})
	}, jetstream.PullMaxMessages(2*x.cfg.CallbackConcurrency))
}

// consumeDurable consumes cfg, a durable consumer on stream, with handler
// until ctx ends. It creates the consumer (durable), and creates it again
// whenever it is found deleted (by an operator, or with its stream, which
// keys then lays out again): a consumer that is gone delivers nothing, and
// the executor would go on waiting on it, ready, with nothing logged.
// Readiness reports the consumer (check "consumer") while it is missing.
//
// resume is for a stream that keeps what was consumed (STATUS, a limits
// stream): a consumer made again there starts after the ack floor last
// read of the one deleted (read every durableEvery), as the dispatcher's
// does. Starting where cfg says (new messages only) would lose what was
// stored meanwhile and what was still unacked; starting at the stream's
// first message would do again everything it holds. What was acked above
// the floor comes again (a callback is sent at least once).
//
// It returns once the subscription has closed: Stop does not wait for a
// handler running, which could still use what the caller tears down once
// this returns; Closed does, as long as the connection lets the
// subscription end.
func (x *Executor) consumeDurable(ctx context.Context, stream string, cfg jetstream.ConsumerConfig, resume bool, handler jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) error {
	missing := &missingConsumers{}
	missing.set(cfg.Durable, "not created yet")
	x.health.Add("consumer", missing.check)
	var floor, after *ackFloor // as last read; the deleted consumer's
	var keep **ackFloor        // where watchDurable keeps the floor (resume)
	if resume {
		keep = &floor
	}
	for {
		cons, ok := x.durable(ctx, stream, cfg, resume, after)
		if !ok {
			return nil
		}
		missing.set(cfg.Durable, "")
		floor = floorOf(cons.CachedInfo())
		suspect := make(chan error, 1)
		onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			select {
			case suspect <- err:
			default:
			}
		})
		cc, err := cons.Consume(handler, append(slices.Clone(opts), onErr)...)
		if err != nil {
			return err
		}
		end := x.watchDurable(ctx, cons, cc, suspect, keep)
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
		}
		switch end {
		case durableCtxDone:
			return nil
		case durableDeleted:
			x.log.Warn("a durable consumer was deleted: creating it again", "stream", stream, "consumer", cfg.Durable)
			missing.set(cfg.Durable, "was deleted: being created again")
			after = nil
			if resume {
				after = floor
			}
			select { // see bus.RecreateDelay
			case <-ctx.Done():
				return nil
			case <-time.After(bus.RecreateDelay):
			}
		case durableStopped:
			x.log.Warn("consuming a durable consumer stopped: consuming it again", "stream", stream, "consumer", cfg.Durable)
			after = nil
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

// durableEvery is how often consumeDurable checks that its consumer is
// still there, and reads its ack floor.
const durableEvery = 5 * time.Second

// How watchDurable ends.
const (
	durableCtxDone = iota // ctx ended
	durableDeleted        // the consumer was found deleted
	durableStopped        // the subscription ended on its own, the consumer still there
)

// watchDurable waits until ctx ends or the consumer cons, consumed by cc,
// is found deleted: at once when the server says so (an error of the
// subscription, in suspect), else at the next look at its info, every
// durableEvery (a consumer deleted while the connection was down is
// pulled in vain, heartbeats missed). Each look keeps the consumer's ack
// floor in *floor, when floor is not nil.
func (x *Executor) watchDurable(ctx context.Context, cons jetstream.Consumer, cc jetstream.ConsumeContext, suspect <-chan error, floor **ackFloor) int {
	t := time.NewTicker(durableEvery)
	defer t.Stop()
	closed := cc.Closed()
	for {
		select {
		case <-ctx.Done():
			return durableCtxDone
		case err := <-suspect:
			if consumerGone(ctx, cons, err) {
				return durableDeleted
			}
		case <-closed:
			if ctx.Err() != nil {
				return durableCtxDone
			}
			if consumerGone(ctx, cons, nil) {
				return durableDeleted
			}
			return durableStopped
		case <-t.C:
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			info, err := cons.Info(ictx)
			cancel()
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
				return durableDeleted
			case err == nil && floor != nil:
				*floor = floorOf(info)
			}
		}
	}
}

// ackFloor is a consumer's ack floor (every message of the stream up to it
// is done), and when that consumer was created.
type ackFloor struct {
	seq     uint64
	created time.Time
}

func floorOf(info *jetstream.ConsumerInfo) *ackFloor {
	if info == nil {
		return nil
	}
	return &ackFloor{seq: info.AckFloor.Stream, created: info.Created}
}

// durable creates (or updates) a durable consumer, retrying every second
// while NATS cannot; false once ctx ends first. after, when not nil, is the
// ack floor of the consumer of that name that was deleted: the one made
// again starts after it. resume is consumeDurable's: false for a
// work-queue stream, whose consumers start at its first message.
func (x *Executor) durable(ctx context.Context, stream string, cfg jetstream.ConsumerConfig, resume bool, after *ackFloor) (jetstream.Consumer, bool) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := x.createDurable(cctx, stream, cfg, after)
		cancel()
		if err == nil {
			return cons, true
		}
		if ctx.Err() != nil {
			return nil, false // stopping: nothing to retry
		}
		x.log.Warn("cannot create a durable consumer, retrying", "stream", stream, "consumer", cfg.Durable, "err", err)
		if f, ok := bus.DropBrokenConsumer(ctx, x.js, stream, cfg.Durable, err); ok {
			x.log.Warn("a durable consumer's files were lost on the server: deleted it, creating it again", "stream", stream, "consumer", cfg.Durable, "ack_floor", f.Seq)
			if resume {
				// After the ack floor the broken one had reached: it
				// is the last consumer of that name, of the stream as
				// it is now.
				after = &ackFloor{seq: f.Seq, created: f.Created}
			}
			continue // the delete is answered once its files are gone
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(time.Second):
		}
	}
}

// createDurable is one try of durable. A consumer that exists keeps where
// it starts, which JetStream refuses to change in an update: another
// executor may have made it again after a deletion, starting after its
// ack floor.
func (x *Executor) createDurable(ctx context.Context, stream string, cfg jetstream.ConsumerConfig, after *ackFloor) (jetstream.Consumer, error) {
	if after != nil {
		s, err := x.js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		if s.CachedInfo().Created.After(after.created) {
			// The stream was deleted and laid out again since: its
			// sequences start over, and nothing in it was consumed.
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverAllPolicy, 0
		} else {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after.seq+1
		}
		x.log.Info("creating a durable consumer again", "stream", stream, "consumer", cfg.Durable, "start_seq", cfg.OptStartSeq)
	}
	cons, err := x.js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err == nil {
		return cons, nil
	}
	had, herr := x.js.Consumer(ctx, stream, cfg.Durable)
	if herr != nil {
		return nil, err
	}
	h := had.CachedInfo().Config
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = h.DeliverPolicy, h.OptStartSeq, h.OptStartTime
	return x.js.CreateOrUpdateConsumer(ctx, stream, cfg)
}

// holdMsg sends in-progress acks for m every period until stop is called.
func holdMsg(m jetstream.Msg, period time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// callbackHost is the receiver a callback URL names (host and port).
// callbackURL is where cb is sent: its URL, or the value of the secret it
// names (read now, so a rotated one applies to the next callback). The
// error names the secret, never its value.
func (x *Executor) callbackURL(ns string, cb *message.Callback) (string, error) {
	if cb.URLSecretRef == "" {
		return cb.URL, nil
	}
	v, err := x.secretValue(ns, cb.URLSecretRef)
	if err != nil {
		return "", fmt.Errorf("callback URL: %w", err)
	}
	v = strings.TrimSpace(v)
	if _, ok := resource.HTTPURL(v); !ok {
		return "", fmt.Errorf("callback URL: secret %s does not hold an absolute http or https URL", cb.URLSecretRef)
	}
	return v, nil
}

// callbackHostOf is the receiver host of r's callback, for hostLimiter: a
// URL from a secret that cannot be read is its own "host".
func (x *Executor) callbackHostOf(r *message.Run) string {
	u, err := x.callbackURL(r.Namespace, r.Callback)
	if err != nil {
		return "secret:" + r.Callback.URLSecretRef
	}
	return callbackHost(u)
}

func callbackHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return strings.ToLower(u.Host)
	}
	return raw
}

// hostLimiter bounds the callbacks sent at once to one receiver host, so
// that a receiver that hangs takes at most that many senders, and those
// waiting for one of its slots.
type hostLimiter struct {
	mu      sync.Mutex
	per     int // sent at once
	waitMax int // holding or waiting for a slot
	hosts   map[string]*hostSlots
}

type hostSlots struct {
	slots chan struct{}
	users int // holding or waiting for a slot
}

// join counts a callback to host among those holding or waiting for a
// slot; false (nothing counted) when waitMax are already.
func (l *hostLimiter) join(host string) (*hostSlots, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hosts[host]
	if h == nil {
		h = &hostSlots{slots: make(chan struct{}, l.per)}
		l.hosts[host] = h
	}
	if l.waitMax > 0 && h.users >= l.waitMax {
		return nil, false
	}
	h.users++
	return h, true
}

// acquire waits for a slot of a host joined; false (and left) if ctx
// ends first.
func (l *hostLimiter) acquire(ctx context.Context, host string, h *hostSlots) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		l.leave(host, h)
		return false
	}
}

func (l *hostLimiter) release(host string, h *hostSlots) {
	<-h.slots
	l.leave(host, h)
}

func (l *hostLimiter) leave(host string, h *hostSlots) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.users--; h.users == 0 {
		delete(l.hosts, host)
	}
}

// callbackOf returns the run of a status event that is to be sent: only a
// run's final status with a callback is.
func callbackOf(m jetstream.Msg) (*message.Run, bool) {
	if st := m.Headers().Get(bus.HeaderStatus); st != "" && !message.Final(st) {
		return nil, false
	}
	var r message.Run
	if err := message.Decode(m.Data(), message.SchemaRun, &r); err != nil || r.Kind != message.KindRun || r.Callback == nil || !message.Final(r.Status) {
		return nil, false
	}
	return &r, true
}

// callback sends run r's final status (event m) to its callback URL, and
// acks m, or NAKs it for a retry after the backoff.
func (x *Executor) callback(ctx context.Context, m jetstream.Msg, r *message.Run) {
	err := x.postCallback(ctx, r)
	switch {
	case err == nil:
		mCallbacks.WithLabelValues(callbackSuccess).Inc()
		_ = m.Ack()
	case ctx.Err() != nil:
		_ = m.Nak() // interrupted by shutdown: not the receiver's fault
	default:
		x.callbackFailed(m, r, err)
	}
}

// callbackHandBacks is how many times a callback may be handed back at an
// executor's shutdown, beyond its attempts, before NATS drops it.
const callbackHandBacks = 50

// callbackFailed ends a failed attempt of callback m: a retry after its
// backoff, or, past the last, given up.
func (x *Executor) callbackFailed(m jetstream.Msg, r *message.Run, err error) {
	var refused *callbackRefused
	errors.As(err, &refused)
	if refused != nil && refused.status == http.StatusGone && !x.callbackMoved(r, refused.target) {
		// The receiver says the endpoint is gone for good (Standard
		// Webhooks, Svix): retrying for a day would only knock on it.
		mCallbacks.WithLabelValues(callbackFailed).Inc()
		x.log.Warn("callback given up: the receiver answered 410 Gone", "run", r.ID)
		_ = m.Term()
		return
	}
	attempt := x.callbackAttempt(m)
	if attempt > len(x.cfg.CallbackBackoff) {
		mCallbacks.WithLabelValues(callbackFailed).Inc()
		x.log.Warn("callback given up", "run", r.ID, "attempts", attempt, "err", err)
		_ = m.Term()
		return
	}
	mCallbacks.WithLabelValues(callbackRetry).Inc()
	delay := x.cfg.CallbackBackoff[attempt-1]
	if refused != nil && refused.retryAfter > delay {
		// A receiver throttling (429, 503) says when to come back.
		delay = refused.retryAfter
	}
	x.log.Info("callback failed; retrying", "run", r.ID, "attempt", attempt, "in", delay, "err", err)
	_ = m.NakWithDelay(delay)
}

// callbackAttempt numbers the attempt of callback m that just failed, and
// records it: one more than the failed attempts recorded for its status
// event in BucketCallbackAttempts. NATS' count of deliveries would also
// count each hand-back at an executor's shutdown, so that a rolling deploy
// during a receiver's outage used up the callback's retries. Without the
// bucket (NATS trouble) the attempt is NATS' count of deliveries, as
// before: a retry fewer rather than one too many. A record not stored
// (NATS trouble) gives the next failure the same number: the bound on
// deliveries still ends the callback.
func (x *Executor) callbackAttempt(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv := x.attemptsBucket(ctx)
	if kv == nil {
		return int(md.NumDelivered)
	}
	key := strconv.FormatUint(md.Sequence.Stream, 10)
	failed := 0
	e, err := kv.Get(ctx, key)
	switch {
	case err == nil:
		failed, _ = strconv.Atoi(string(e.Value()))
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return int(md.NumDelivered)
	}
	attempt := failed + 1
	if _, err := kv.Put(ctx, key, []byte(strconv.Itoa(attempt))); err != nil {
		x.log.Warn("could not record a callback's failed attempt", "attempt", attempt, "err", err)
	}
	return attempt
}

// attemptsBucket is BucketCallbackAttempts, opened once it can be (nil
// while it cannot: NATS' count of deliveries stands in).
func (x *Executor) attemptsBucket(ctx context.Context) jetstream.KeyValue {
	x.attemptsMu.Lock()
	defer x.attemptsMu.Unlock()
	if x.callbackAttempts != nil {
		return x.callbackAttempts
	}
	kv, err := x.js.KeyValue(ctx, bus.BucketCallbackAttempts)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil // stopping: nothing to say
		}
		x.log.Warn("callback attempts are counted by NATS deliveries for now (hand-backs at shutdown included)", "bucket", bus.BucketCallbackAttempts, "err", err)
		return nil
	}
	x.callbackAttempts = kv
	return kv
}

// CallbackBody is what a callback receiver gets: the run's final status.
type CallbackBody struct {
	Type string      `json:"type"`
	Run  message.Run `json:"run"`
}

// postCallback sends r to its callback URL, signed with the callback's
// secret; the id header (run id and status) lets the receiver drop a
// repeated delivery.
func (x *Executor) postCallback(ctx context.Context, r *message.Run) error {
	cb := r.Callback
	r.Callback = nil
	// Not HTML-escaped: the record was fitted to its bounds so, and each
	// of <, > and & escaped would take six bytes (a run printing HTML
	// sent a body up to six times its output).
	body, err := message.MarshalNoHTMLEscape(CallbackBody{Type: "run." + r.Status, Run: *r})
	if err != nil {
		return err
	}
	target, err := x.callbackURL(r.Namespace, cb)
	if err != nil {
		return err
	}
	var secrets []string // the current value first, then those in their grace
	if cb.SecretRef != "" {
		vals, err := x.cat.SecretValues(r.Namespace, cb.SecretRef, time.Now())
		if err != nil {
			return fmt.Errorf("callback secret: %w", err)
		}
		secrets = vals
	}
	// The errors of the request name the receiver without the URL's
	// credentials (a userinfo password, a token in the path or query):
	// they are logged at every attempt. What Go's reason quotes of the
	// receiver's answer (the request line, echoed) is masked as the URL's
	// parts are in an HTTP job's output.
	urlParts := urlSecretParts(target)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New(maskedRequestError(err, "the callback URL", urlParts))
	}
	req.Header.Set("Content-Type", "application/json")
	SignAll(req.Header, body, secrets, callbackID(r), time.Now())
	resp, err := x.callbackClient.Do(req)
	if err != nil {
		return errors.New(maskedRequestError(err, "the callback URL", urlParts))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &callbackRefused{status: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()), target: target}
	}
	return nil
}

// Where run r's final status goes is its webhook's spec.callback as it is
// at this attempt, so that a URL or secret changed since the run was
// queued applies to its callback and to the retries of one failing (as an
// endpoint's change does at Svix and GitHub). None is sent when the
// webhook is disabled, deleted (or deleted and made again since r's
// delivery: another webhook), or its callback was removed. A run of no
// webhook keeps the callback it was queued with.

// catalogCallback is r's callback when the catalog says to send one (ok);
// otherwise only confirmedCallback can tell.
func (x *Executor) catalogCallback(r *message.Run) (cb *message.Callback, ok bool) {
	if r.Webhook == "" || r.Namespace == "" {
		return r.Callback, true
	}
	w, found := x.cat.Webhook(r.Namespace, r.Webhook)
	if !found || x.catalogMisses {
		return nil, false
	}
	cb, _ = webhookCallback(w, r)
	return cb, cb != nil
}

// confirmedCallback is r's callback as the webhooks bucket's leader has
// its webhook, or nil with the reason none is to be sent. When the leader
// cannot be read (NATS trouble, a record of a newer release), the catalog
// decides, and without the webhook there the callback bound when the run
// was queued is sent: sent where it was bound rather than lost.
func (x *Executor) confirmedCallback(ctx context.Context, r *message.Run) (*message.Callback, string) {
	var lw resource.Webhook
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	found, readable, err := catalog.ReadLeader(rctx, x.js.Conn(), bus.BucketWebhooks, bus.ConfigKey(r.Namespace, r.Webhook), &lw)
	cancel()
	switch {
	case err != nil || (found && !readable):
		if w, ok := x.cat.Webhook(r.Namespace, r.Webhook); ok {
			return webhookCallback(w, r)
		}
		return r.Callback, ""
	case !found:
		return nil, "its webhook is deleted"
	}
	return webhookCallback(&lw, r)
}

// webhookCallback is r's callback as webhook w has it, or nil with the
// reason none is to be sent.
func webhookCallback(w *resource.Webhook, r *message.Run) (*message.Callback, string) {
	switch {
	case !runOfWebhook(w, r):
		return nil, "its webhook is deleted (one of its name was made since)"
	case w.Spec.Disabled:
		return nil, "its webhook is disabled"
	case w.Spec.Callback == nil:
		return nil, "its webhook has no callback any more"
	}
	c := w.Spec.Callback
	return &message.Callback{URL: c.URL, URLSecretRef: c.URLSecretRef, SecretRef: c.SecretRef}, ""
}

// runOfWebhook tells whether run r is one of webhook w's, not of an
// earlier webhook of its name: the ingress (keys, for a replay) derives
// the run id from the webhook's uid. A record without its event id (none
// written so is known) cannot be judged: it is taken as the webhook's.
func runOfWebhook(w *resource.Webhook, r *message.Run) bool {
	return r.WebhookEventID == "" || isRunOf(w, r.ID, r.WebhookEventID, r.Replay, r.DeliveryID)
}

// callbackRefused is a receiver's answer other than 2xx.
type callbackRefused struct {
	status     int
	retryAfter time.Duration // its Retry-After, 0 without one
	target     string        // the URL that answered
}

// callbackMoved reports whether run r's callback now goes elsewhere than
// target, the URL that just answered: its webhook's spec.callback or the
// secret holding its URL changed during the attempt (a rotation moving the
// receiver, whose old address says 410 Gone). Such a callback is retried at
// the new URL, not given up.
func (x *Executor) callbackMoved(r *message.Run, target string) bool {
	cb, ok := x.catalogCallback(r)
	if !ok {
		return false
	}
	u, err := x.callbackURL(r.Namespace, cb)
	return err == nil && u != target
}

func (e *callbackRefused) Error() string { return fmt.Sprintf("callback answered %d", e.status) }

// maxRetryAfter bounds the wait a receiver's Retry-After asks for.
const maxRetryAfter = 6 * time.Hour

// retryAfter reads a Retry-After value, seconds or an HTTP date, bounded
// by maxRetryAfter; 0 when there is none or it cannot be read.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(strings.TrimSpace(v)); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// callbackID is the id a receiver dedups a callback by: one per run, status
// and delivery. A run id is the event's, and an event sent again after its
// dedup window runs again under it: without the delivery, both runs'
// "succeeded" would carry the same id, and a receiver dropping repeated ids
// would drop the second run's result.
func callbackID(r *message.Run) string {
	if r.DeliveryID == "" {
		return r.ID + "." + r.Status
	}
	return r.ID + "." + r.DeliveryID + "." + r.Status
}

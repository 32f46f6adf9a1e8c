// Package dispatcher turns stored deliveries into run requests. It promises
// that each event id of a webhook triggers at most one run inside the
// webhook's dedup window, and that no accepted delivery is dropped: a
// delivery is acked only once its outcome (a run request in RUNS, or a
// recorded duplicate/filtered/failed status) is stored.
package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// Config is the dispatcher configuration.
type Config struct {
	service.Common
	// BatchSize is how many deliveries one fetch takes.
	BatchSize int
	// Concurrency is how many batches are handled at once: while one waits
	// for Redis or for JetStream's acks, another is worked on.
	Concurrency int
	// AckWait is how long a fetched delivery stays ours before JetStream
	// redelivers it (to this or another dispatcher).
	AckWait time.Duration
	// PauseDelay is how long deliveries are held back while the dedup store
	// does not answer.
	PauseDelay time.Duration
	// DefaultWindow is the dedup window of webhooks without a profile or an
	// explicit dedupWindow.
	DefaultWindow time.Duration
}

// ConfigFromEnv reads the dispatcher configuration.
func ConfigFromEnv() (Config, error) {
	c, err := service.CommonFromEnv("127.0.0.1:8082")
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Common: c}
	if cfg.BatchSize, err = service.EnvPositiveInt("DISPATCH_BATCH", 100); err != nil {
		return cfg, err
	}
	if cfg.Concurrency, err = service.EnvPositiveInt("DISPATCH_CONCURRENCY", 2); err != nil {
		return cfg, err
	}
	if cfg.AckWait, err = service.EnvPositiveDuration("DISPATCH_ACK_WAIT", 30*time.Second); err != nil {
		return cfg, err
	}
	if cfg.PauseDelay, err = service.EnvPositiveDuration("DISPATCH_PAUSE", 2*time.Second); err != nil {
		return cfg, err
	}
	if cfg.DefaultWindow, err = service.EnvPositiveDuration("DEDUP_WINDOW", 24*time.Hour); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Claims is what the dispatcher needs of a dedup store; pkg/dedup's Redis
// and NATS KV stores both provide it.
type Claims interface {
	// ClaimBatch claims each request's key for its owner for its TTL, in
	// one round trip where the store allows, and says for each whether it
	// was claimed, continued (already this owner's) or a duplicate.
	ClaimBatch(ctx context.Context, reqs []dedup.Request) ([]dedup.Result, error)
	// Ping reports whether the store answers; a paused dispatcher resumes
	// when it does.
	Ping(ctx context.Context) error
}

// Dispatcher is the service.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	js     jetstream.JetStream
	cat    *catalog.Catalog
	store  Claims
	status *webhookstatus.Writer
	// notes holds webhook status updates for writeStatuses.
	notes  *statusNotes
	health *service.Health
	cache  *compiled
	now    func() time.Time

	// redis, when the dedup store is Redis, is reported on (its memory).
	redis redis.UniversalClient

	paused atomic.Bool
	misses misses // see decideAll
	// consumerUp is true while this dispatcher has the shared consumer to
	// pull from: false until it is created, and again while one found
	// deleted is made again.
	consumerUp atomic.Bool
	// ackFloor is the consumer's ack floor when last read (every
	// consumerEvery): every delivery up to it is done. A consumer made
	// again after a deletion starts after it.
	ackFloor      atomic.Pointer[ackFloor]
	consumerEvery time.Duration

	// Test seams, nil in production: crashAt abandons a batch at a stage of
	// handleBatch as a crash would; publishFault fails a publish before it
	// is sent; consumerFault fails the creation of the consumer.
	crashAt       func(stage string) bool
	publishFault  func(subject string) error
	consumerFault func() error
}

// New builds a dispatcher.
func New(cfg Config, js jetstream.JetStream, cat *catalog.Catalog, store Claims, health *service.Health, log *slog.Logger) *Dispatcher {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.PauseDelay <= 0 {
		cfg.PauseDelay = 2 * time.Second
	}
	if cfg.DefaultWindow <= 0 {
		cfg.DefaultWindow = 24 * time.Hour
	}
	d := &Dispatcher{cfg: cfg, log: log, js: js, cat: cat, store: store, status: webhookstatus.NewWriter(js), notes: newStatusNotes(), health: health, cache: newCompiled(cat), now: time.Now,
		consumerEvery: 5 * time.Second}
	health.Add("consumer", func(context.Context) error {
		if !d.consumerUp.Load() {
			return errors.New("the dispatcher consumer is not there yet (being created): no delivery is dispatched")
		}
		return nil
	})
	health.Add("dedup", func(ctx context.Context) error {
		if d.paused.Load() {
			return errors.New("dedup store unavailable: dispatching paused")
		}
		return nil
	})
	health.Add("config", func(context.Context) error {
		select {
		case <-cat.Ready():
			return nil
		default:
			return errors.New("configuration not loaded yet")
		}
	})
	return d
}

// FromDeps builds the dispatcher on opened connections.
func FromDeps(ctx context.Context, cfg Config, d *service.Deps) (*Dispatcher, error) {
	store, err := d.DedupStore(ctx)
	if err != nil {
		return nil, err
	}
	if d.Redis == nil {
		d.Log.Warn("HOOKRUN_REDIS_URL is not set: dedup claims are kept in NATS KV")
	}
	disp := New(cfg, d.JS, catalog.New(d.JS, d.Box, d.Log), store, d.Health, d.Log)
	disp.redis = d.Redis
	return disp, nil
}

// ConsumerConfig is the durable pull consumer every dispatcher shares.
func ConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       bus.ConsumerDispatcher,
		Description:   "Shared by all dispatchers: deliveries to run requests",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 20000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Run consumes deliveries until ctx ends; a batch in hand is finished first.
// ready, if not nil, gets the ops server's address.
func (d *Dispatcher) Run(ctx context.Context, ready func(net.Addr)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.cat.Run(gctx) })
	g.Go(func() error {
		e := service.NewEcho()
		e.Use(middleware.Recover())
		ops := d.health.MountOn(e, d.cfg.OpsAddr)
		g.Go(func() error { return service.ServeOps(gctx, d.cfg.OpsAddr, ops, d.log) })
		return service.Serve(gctx, service.HTTPServer(d.cfg.HTTPAddr, e), 5*time.Second, ready)
	})
	g.Go(func() error { return d.watchConsumer(gctx) })
	g.Go(func() error { return d.consume(gctx) })
	g.Go(func() error { return d.writeStatuses(gctx) })
	if d.redis != nil {
		// Redis' memory against its maxmemory, for the alert before
		// claims are refused (noeviction) and dispatching pauses.
		g.Go(func() error { return service.ReportRedisMemory(gctx, d.redis, 15*time.Second, d.log) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// consume pulls from the shared consumer, creating it first, and again
// whenever it is found deleted (by an operator, or with its stream): a
// consumer that is gone delivers nothing, and pulling from it again would
// wait for ever.
func (d *Dispatcher) consume(ctx context.Context) error {
	select {
	case <-d.cat.Ready():
	case <-ctx.Done():
		return nil
	}
	for again := false; ctx.Err() == nil; again = true {
		if again && !sleep(ctx, bus.RecreateDelay) {
			return nil
		}
		cons := d.createConsumer(ctx, again)
		if cons == nil {
			return nil
		}
		d.consumerUp.Store(true)
		d.pullFrom(ctx, cons)
		d.consumerUp.Store(false)
	}
	return nil
}

// createConsumer creates the consumer or updates it to this dispatcher's
// configuration, trying every second until it succeeds or ctx ends (nil);
// again: the one this dispatcher pulled from was deleted.
func (d *Dispatcher) createConsumer(ctx context.Context, again bool) jetstream.Consumer {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := d.ensureConsumer(cctx, again)
		cancel()
		if err == nil {
			return cons
		}
		if ctx.Err() != nil {
			return nil // stopping: nothing to retry
		}
		d.log.Warn("cannot create dispatcher consumer, retrying", "err", err)
		if f, ok := bus.DropBrokenConsumer(ctx, d.js, bus.StreamDeliveries, bus.ConsumerDispatcher, err); ok {
			// Made afresh after the ack floor the broken one had
			// reached: it is the last consumer of that name, of the
			// stream as it is now.
			d.log.Warn("the dispatcher consumer's files were lost on the server: deleted it, creating it again", "ack_floor", f.Seq)
			d.ackFloor.Store(&ackFloor{seq: f.Seq, created: f.Created})
			again = true
			continue // the delete is answered once its files are gone
		}
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

// ensureConsumer creates or updates the consumer. One made again after a
// deletion starts after the ack floor this dispatcher last read of the one
// before: starting at the stream's first delivery would dispatch every
// delivery retained again, and one past its dedup window would run again.
// An existing consumer keeps where it starts, which JetStream refuses to
// change in an update (another dispatcher may have made it again so).
func (d *Dispatcher) ensureConsumer(ctx context.Context, again bool) (jetstream.Consumer, error) {
	if d.consumerFault != nil {
		if err := d.consumerFault(); err != nil {
			return nil, err
		}
	}
	cfg := ConsumerConfig(d.cfg.AckWait)
	if again {
		seq, err := d.startAfterFloor(ctx)
		if err != nil {
			return nil, err
		}
		if seq > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
		}
		d.log.Warn("creating the dispatcher consumer again", "start_seq", seq)
	}
	cons, err := d.js.CreateOrUpdateConsumer(ctx, bus.StreamDeliveries, cfg)
	if err == nil {
		return cons, nil
	}
	had, herr := d.js.Consumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher)
	if herr != nil {
		return nil, err
	}
	h := had.CachedInfo().Config
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = h.DeliverPolicy, h.OptStartSeq, h.OptStartTime
	return d.js.CreateOrUpdateConsumer(ctx, bus.StreamDeliveries, cfg)
}

// ackFloor is a consumer's ack floor, and when that consumer was created.
type ackFloor struct {
	seq     uint64
	created time.Time
}

// startAfterFloor is where a consumer made again starts: after the ack
// floor last read, or, when none was read or the stream is newer than the
// consumer it was read of (the stream was deleted and made again, its
// sequences start over), 0: the stream's start.
func (d *Dispatcher) startAfterFloor(ctx context.Context) (uint64, error) {
	f := d.ackFloor.Load()
	if f == nil || f.seq == 0 {
		return 0, nil
	}
	s, err := d.js.Stream(ctx, bus.StreamDeliveries)
	if err != nil {
		return 0, err
	}
	if s.CachedInfo().Created.After(f.created) {
		return 0, nil
	}
	return f.seq + 1, nil
}

// pullFrom pulls from cons until ctx ends or cons is found deleted.
func (d *Dispatcher) pullFrom(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		if d.paused.Load() && !d.probe(ctx) {
			continue
		}
		err := d.pull(ctx, cons)
		if ctx.Err() != nil {
			return
		}
		// pull returns on an error, when idle a while, or on a pause, not
		// while deliveries flow: this look costs nothing on the hot path.
		if d.consumerGone(ctx, cons, err) {
			d.log.Warn("the dispatcher consumer was deleted: creating it again", "err", err)
			return
		}
		if err != nil {
			d.log.Warn("pulling deliveries failed, retrying", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// consumerGone reports whether cons no longer exists: its iterator said
// so (err), or JetStream does not know it (the iterator hears nothing of
// a consumer deleted while it was reconnecting).
func (d *Dispatcher) consumerGone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) {
		return true
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = cons.Info(ictx)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// watchConsumer exports the consumer's backlog every consumerEvery (as
// service.ReportConsumerLag does) and keeps its ack floor from the same
// read.
func (d *Dispatcher) watchConsumer(ctx context.Context) error {
	t := time.NewTicker(d.consumerEvery)
	defer t.Stop()
	for {
		if info := service.ReportConsumerOnce(ctx, d.js, bus.StreamDeliveries, bus.ConsumerDispatcher); info != nil {
			d.ackFloor.Store(&ackFloor{seq: info.AckFloor.Stream, created: info.Created})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pull takes batches until ctx ends or the dedup store fails. A continuous
// pull keeps deliveries flowing in; the loop takes whatever has arrived (up
// to BatchSize) as one batch, so a lone delivery goes at once and a burst
// shares one dedup round trip. Up to Concurrency batches are handled at
// once; the same event in two of them is still claimed once (the claim is
// atomic in the store), and a delivery waits in the buffer behind at most
// one round of batches.
func (d *Dispatcher) pull(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages((d.cfg.Concurrency + 1) * d.cfg.BatchSize))
	if err != nil {
		return err
	}
	defer d.handBack(it)
	sem := make(chan struct{}, d.cfg.Concurrency)
	var handling sync.WaitGroup
	defer handling.Wait() // before handBack: batches in hand are finished
	last := time.Now()
	for ctx.Err() == nil && !d.paused.Load() {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return err
			}
			if time.Since(last) >= repullAfterIdle {
				return nil // a fresh iterator, a fresh pull request
			}
			continue // a timeout, or a passing fault the iterator recovers from
		}
		last = time.Now()
		msgs := []jetstream.Msg{m}
		for len(msgs) < d.cfg.BatchSize {
			m, err := it.Next(jetstream.NextMaxWait(time.Millisecond))
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		mBatchSize.Observe(float64(len(msgs)))
		// A batch in hand is finished even when ctx ends: its work is
		// bounded, and finishing beats a redelivery after AckWait.
		sem <- struct{}{}
		handling.Go(func() {
			defer func() { <-sem }()
			d.handleBatch(context.WithoutCancel(ctx), msgs)
		})
	}
	return nil
}

// repullAfterIdle is how long a dispatcher waits without a message before
// it replaces its pull iterator. Around a consumer leader change (a NATS
// node lost or cut off) the client can be left with no pull request the
// new leader knows of (nats.go#2063): deliveries pending redelivery then
// wait for a pull that never comes. Seen in the node-loss container test as
// two deliveries acked by no one for minutes. An idle replacement costs one
// pull request.
const repullAfterIdle = 5 * time.Second

// handBack stops pulling and NAKs the deliveries already buffered, so that
// they come back at once on shutdown (to another dispatcher) or after
// PauseDelay on a pause, instead of waiting out AckWait.
func (d *Dispatcher) handBack(it jetstream.MessagesContext) {
	it.Drain()
	var delay time.Duration
	if d.paused.Load() {
		delay = d.cfg.PauseDelay
	}
	for {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		_ = m.NakWithDelay(delay)
	}
}

// probe waits PauseDelay, then checks the dedup store; it clears the pause
// when the store answers.
func (d *Dispatcher) probe(ctx context.Context) bool {
	if !sleep(ctx, d.cfg.PauseDelay) {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := d.store.Ping(pctx); err != nil {
		return false
	}
	d.log.Info("dedup store answers again: resuming")
	d.paused.Store(false)
	mPaused.Set(0)
	return true
}

func sleep(ctx context.Context, dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

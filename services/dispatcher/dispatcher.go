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
	if cfg.BatchSize, err = service.EnvInt("DISPATCH_BATCH", 100); err != nil {
		return cfg, err
	}
	if cfg.Concurrency, err = service.EnvInt("DISPATCH_CONCURRENCY", 2); err != nil {
		return cfg, err
	}
	if cfg.AckWait, err = service.EnvDuration("DISPATCH_ACK_WAIT", 30*time.Second); err != nil {
		return cfg, err
	}
	if cfg.PauseDelay, err = service.EnvDuration("DISPATCH_PAUSE", 2*time.Second); err != nil {
		return cfg, err
	}
	if cfg.DefaultWindow, err = service.EnvDuration("DEDUP_WINDOW", 24*time.Hour); err != nil {
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
	// statusNotes queues webhook status updates for writeStatuses.
	statusNotes chan statusNote
	health      *service.Health
	cache       *compiled
	now         func() time.Time

	paused atomic.Bool

	// Test seams, nil in production: crashAt abandons a batch at a stage of
	// handleBatch as a crash would; publishFault fails a publish before it
	// is sent.
	crashAt      func(stage string) bool
	publishFault func(subject string) error
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
	d := &Dispatcher{cfg: cfg, log: log, js: js, cat: cat, store: store, status: webhookstatus.NewWriter(js), statusNotes: make(chan statusNote, statusQueue), health: health, cache: newCompiled(cat), now: time.Now}
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
	return New(cfg, d.JS, catalog.New(d.JS, d.Box, d.Log), store, d.Health, d.Log), nil
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
	g.Go(func() error {
		return service.ReportConsumerLag(gctx, d.js, bus.StreamDeliveries, bus.ConsumerDispatcher, 5*time.Second)
	})
	g.Go(func() error { return d.consume(gctx) })
	g.Go(func() error { return d.writeStatuses(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (d *Dispatcher) consume(ctx context.Context) error {
	select {
	case <-d.cat.Ready():
	case <-ctx.Done():
		return nil
	}
	var cons jetstream.Consumer
	for {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err = d.js.CreateOrUpdateConsumer(cctx, bus.StreamDeliveries, ConsumerConfig(d.cfg.AckWait))
		cancel()
		if err == nil {
			break
		}
		d.log.Warn("cannot create dispatcher consumer, retrying", "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	for ctx.Err() == nil {
		if d.paused.Load() && !d.probe(ctx) {
			continue
		}
		if err := d.pull(ctx, cons); err != nil {
			d.log.Warn("pulling deliveries failed, retrying", "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
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
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
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

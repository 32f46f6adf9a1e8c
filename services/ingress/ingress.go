// Package ingress is Hookrun's HTTP front door: it matches an endpoint,
// checks method, size and content type, verifies the sender's credential
// (secret URL, API key or signature profile), and publishes the delivery to
// the DELIVERIES stream. It answers 202 only after JetStream acknowledged the
// write, and 503 with Retry-After when it could not: nothing is half-accepted.
package ingress

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// Ingress is the service. Build it with New and start it with Run.
type Ingress struct {
	cfg Config
	log *slog.Logger
	// refusals logs refused deliveries, a few a minute per webhook and code.
	refusals *refusalLog
	js       jetstream.JetStream
	cat      *catalog.Catalog
	dedup    dedup.Store
	// lookups batches the read-only dedup look-ups of concurrent requests.
	lookups *lookupBatcher
	status  *webhookstatus.Writer
	runs    *statusReader // the status of a duplicate's first run
	health  *service.Health
	echo    *echo.Echo
	ops     *echo.Echo // the OpsAddr listener's routes, nil without one

	pending    pendingBodies // bodies being stored
	draining   atomic.Bool   // stopping: /readyz answers 503, connections are let go
	publishLog *refusalLog   // publish failures, logged a few at a time
	limiters   sync.Map      // config key -> *limiter
	lastErrors sync.Map      // config key -> recordedError
}

// New builds the ingress. dd may be nil (no read-only duplicate look-up).
func New(cfg Config, js jetstream.JetStream, cat *catalog.Catalog, dd dedup.Store, health *service.Health, log *slog.Logger) *Ingress {
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if cfg.DefaultWindow <= 0 {
		cfg.DefaultWindow = 24 * time.Hour
	}
	if cfg.publishWithin == nil {
		cfg.publishWithin = bus.PublishWithin
	}
	in := &Ingress{cfg: cfg, log: log, js: js, cat: cat, dedup: dd, status: webhookstatus.NewWriter(js), runs: &statusReader{js: js}, health: health, refusals: newRefusalLog(log)}
	in.pending.max = cfg.MaxPendingBytes
	in.publishLog = newRefusalLog(log)
	if dd != nil {
		in.lookups = newLookupBatcher(dd)
	}
	e := service.NewEcho()
	if cfg.TrustProxy {
		e.IPExtractor = forwardedFor(cfg.TrustedProxies)
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("handler panicked", "err", err, "method", c.Request().Method, "route", c.Path(), "stack", string(stack))
			return err
		},
	}))
	// No answer is to be cached: a 200 to a GET trigger, a 404 of an
	// endpoint that comes back, a 503 (a CDN in front, link unfurlers).
	// While draining, answers say Connection: close: a sender (or proxy)
	// that keeps its connection opens a new one, to a ready instance,
	// after its answer, rather than having it cut when the delay ends,
	// maybe under a POST it would not send again. Idle connections are
	// left alone until then (SetKeepAlivesEnabled(false) would close
	// them at once, under requests already on their way).
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Cache-Control", "no-store")
			if in.draining.Load() {
				h.Set("Connection", "close")
			}
			return next(c)
		}
	})
	in.ops = health.MountOn(e, cfg.OpsAddr)
	health.Add("config", func(context.Context) error {
		if !in.configLoaded() {
			return errConfigLoading
		}
		return nil
	})
	e.Any(hookRoute, in.deliver)
	// Any covers the methods Echo knows; its not-found handler on the same
	// route takes every other one ("post", "FOO"), so that a known endpoint
	// answers 405 with Allow whatever the method, as deliver decides.
	e.RouteNotFound(hookRoute, in.deliver)
	e.RouteNotFound("/*", func(c echo.Context) error {
		mRequests.WithLabelValues(unknownWebhook, "404").Inc()
		return writeError(c, errEndpointNotFound)
	})
	e.HTTPErrorHandler = in.httpError
	in.echo = e
	return in
}

type constError string

func (e constError) Error() string { return string(e) }

const (
	errConfigLoading = constError("configuration not loaded yet")
	errShuttingDown  = constError("shutting down")
)

// configLoaded reports whether the catalog holds the initial configuration.
// Until then an unknown endpoint may only be not loaded yet, so deliveries
// are answered 503 (retry) rather than 404 (give up).
func (in *Ingress) configLoaded() bool {
	select {
	case <-in.cat.Ready():
		return true
	default:
		return false
	}
}

// Handler returns the HTTP handler (for tests and embedding).
func (in *Ingress) Handler() http.Handler { return in.echo }

// Run serves until ctx ends, then stops taking requests and lets in-flight
// ones finish (each within handleWithin: its publishes and reads).
//
// With a ShutdownDelay, it first goes on serving that long with /readyz
// answering 503 "shutting down", for a load balancer to take it out.
func (in *Ingress) Run(ctx context.Context, ready func(net.Addr)) error {
	runCtx := ctx
	srv := in.cfg.server(in.echo)
	if in.cfg.ShutdownDelay > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithCancel(context.WithoutCancel(ctx))
		defer stop()
		in.health.Add("shutdown", func(context.Context) error {
			if in.draining.Load() {
				return errShuttingDown
			}
			return nil
		})
		go func() {
			select {
			case <-ctx.Done():
			case <-runCtx.Done():
				return // a part failed: no delay
			}
			in.draining.Store(true)
			in.log.Info("stopping: answering not ready, still taking deliveries", "for", in.cfg.ShutdownDelay.String())
			select {
			case <-time.After(in.cfg.ShutdownDelay):
			case <-runCtx.Done():
			}
			stop()
		}()
	}
	// The group's context is gctx: a part failing (the port is taken)
	// cancels it, and only the caller's ctx ending is a clean stop.
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return in.cat.Run(gctx) })
	if in.lookups != nil {
		g.Go(func() error { return in.lookups.run(gctx) })
	}
	g.Go(func() error { return service.Serve(gctx, srv, in.cfg.requestWithin(srv), ready) })
	g.Go(func() error { return service.ServeOps(gctx, in.cfg.OpsAddr, in.ops, in.log) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// httpError maps Echo's own errors (e.g. a panic recovered) to the table.
func (in *Ingress) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			_ = writeError(c, errEndpointNotFound)
			return
		case http.StatusMethodNotAllowed:
			_ = writeError(c, errMethodNotAllowed)
			return
		case http.StatusRequestEntityTooLarge:
			_ = writeError(c, errPayloadTooLarge)
			return
		}
	}
	in.log.Error("unhandled error", "err", err, "route", c.Path())
	_ = writeError(c, errInternal)
}

// FromDeps builds the ingress on opened connections.
func FromDeps(ctx context.Context, cfg Config, d *service.Deps) (*Ingress, error) {
	var dd dedup.Store
	if d.Redis != nil {
		dd = dedup.NewRedis(d.Redis)
	} else {
		var err error
		if dd, err = d.DedupStore(ctx); err != nil {
			return nil, err
		}
	}
	// Redis only gives the duplicate flag of retries past JetStream's
	// 2-minute window: without it deliveries are still stored and run once
	// (the dispatcher's claims wait for Redis). So an ingress stays ready
	// through a Redis outage, and /readyz reports it as degraded.
	d.Health.NotRequired("redis")
	if d.Box == nil {
		d.Log.Warn("HOOKRUN_SECRET_KEY is not set: webhooks with signature profiles will answer job_not_runnable")
	}
	return New(cfg, d.JS, catalog.New(d.JS, d.Box, d.Log), dd, d.Health, d.Log), nil
}

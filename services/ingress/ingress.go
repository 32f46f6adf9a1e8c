// Package ingress is Hookrun's HTTP front door: it matches an endpoint,
// checks method, size and content type, verifies the sender's credential
// (secret URL, API key or signature profile), and publishes the delivery to
// the DELIVERIES stream. It answers 202 only after JetStream acknowledged the
// write, and 503 with Retry-After when it could not: nothing is half-accepted.
package ingress

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// Config is the ingress configuration.
type Config struct {
	service.Common
	// PublishTimeout bounds the wait for JetStream's ack before answering 503.
	PublishTimeout time.Duration
	// TrustProxy takes the source IP from X-Forwarded-For / X-Real-IP.
	TrustProxy bool
}

// ConfigFromEnv reads the ingress configuration.
func ConfigFromEnv() (Config, error) {
	c, err := service.CommonFromEnv("127.0.0.1:8080")
	if err != nil {
		return Config{}, err
	}
	pt, err := service.EnvDuration("PUBLISH_TIMEOUT", 5*time.Second)
	if err != nil {
		return Config{}, err
	}
	return Config{Common: c, PublishTimeout: pt, TrustProxy: service.Env("TRUST_PROXY", "") == "true"}, nil
}

// Ingress is the service. Build it with New and start it with Run.
type Ingress struct {
	cfg    Config
	log    *slog.Logger
	js     jetstream.JetStream
	cat    *catalog.Catalog
	dedup  dedup.Store
	status *webhookstatus.Writer
	health *service.Health
	echo   *echo.Echo

	limiters sync.Map // webhook key -> *limiter
}

type limiter struct {
	perSecond float64
	burst     int
	l         *rate.Limiter
}

// New builds the ingress. dd may be nil (no read-only duplicate look-up).
func New(cfg Config, js jetstream.JetStream, cat *catalog.Catalog, dd dedup.Store, health *service.Health, log *slog.Logger) *Ingress {
	in := &Ingress{cfg: cfg, log: log, js: js, cat: cat, dedup: dd, status: webhookstatus.NewWriter(js), health: health}
	e := service.NewEcho()
	if cfg.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(middleware.Recover())
	health.Mount(e)
	health.Add("config", func(context.Context) error {
		select {
		case <-cat.Ready():
			return nil
		default:
			return errConfigLoading
		}
	})
	e.Any("/v1/hooks/:endpoint", in.deliver)
	e.Any("/v1/hooks/:endpoint/:key", in.deliver)
	e.RouteNotFound("/*", func(c echo.Context) error { return writeError(c, errEndpointNotFound) })
	e.HTTPErrorHandler = in.httpError
	in.echo = e
	return in
}

type constError string

func (e constError) Error() string { return string(e) }

const errConfigLoading = constError("configuration not loaded yet")

// Handler returns the HTTP handler (for tests and embedding).
func (in *Ingress) Handler() http.Handler { return in.echo }

// Run serves until ctx ends, then stops taking requests and lets in-flight
// ones finish (each waits at most PublishTimeout for its ack).
func (in *Ingress) Run(ctx context.Context, ready func(net.Addr)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return in.cat.Run(ctx) })
	g.Go(func() error {
		srv := service.HTTPServer(in.cfg.HTTPAddr, in.echo)
		return service.Serve(ctx, srv, in.cfg.PublishTimeout+5*time.Second, ready)
	})
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
	if he, ok := err.(*echo.HTTPError); ok {
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
	in.log.Error("unhandled error", "err", err, "path", c.Path())
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
	if d.Box == nil {
		d.Log.Warn("HOOKRUN_SECRET_KEY is not set: webhooks with signature profiles will answer job_not_runnable")
	}
	return New(cfg, d.JS, catalog.New(d.JS, d.Box, d.Log), dd, d.Health, d.Log), nil
}

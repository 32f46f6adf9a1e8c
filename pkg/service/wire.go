package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/redact"
	"github.com/hookrun/hookrun/pkg/secretbox"
)

// Deps are the connections a service runs on.
type Deps struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Redis  redis.UniversalClient // nil when HOOKRUN_REDIS_URL is unset
	Box    *secretbox.Box        // nil when HOOKRUN_SECRET_KEY is unset
	Health *Health
	Log    *slog.Logger
}

// LayoutOwner is the service that creates and updates the streams and
// buckets (their replicas and retention); the others wait for them.
const LayoutOwner = "keys"

// Open connects to NATS (retrying in the background), ensures the streams
// and buckets, opens Redis when configured, and registers readiness checks.
func Open(ctx context.Context, name string, c Common, log *slog.Logger) (*Deps, error) {
	d := &Deps{Log: log, Health: NewHealth(name)}
	d.Health.ownMetrics = c.OneProcess
	if c.SecretKey != "" {
		k, err := secretbox.ParseKey(c.SecretKey)
		if err != nil {
			return nil, err
		}
		if d.Box, err = secretbox.New(k); err != nil {
			return nil, err
		}
	}
	if err := checkNATSURLs(c.NATSURL); err != nil {
		return nil, err
	}
	nc, err := bus.Connect(bus.ConnectOptions{URL: c.NATSURL, User: c.NATSUser, Password: c.NATSPassword, Name: "hookrun-" + name, OnState: NATSState(name), Log: log})
	if err != nil {
		return nil, err
	}
	d.NC = nc
	if d.JS, err = jetstream.New(nc, jsOptions()...); err != nil {
		nc.Close()
		return nil, err
	}
	d.Health.Add("nats", func(context.Context) error {
		if !nc.IsConnected() {
			// Why, when NATS said (a refused password: "authorization
			// violation"), which "not connected" alone would hide.
			if e := nc.LastError(); e != nil {
				return fmt.Errorf("not connected: %s", redact.URLs(e.Error()))
			}
			return errors.New("not connected")
		}
		return nil
	})
	if c.RedisURL != "" && usesRedis(name) {
		if d.Redis, err = OpenRedis(c.RedisURL, c.RedisSentinelPassword); err != nil {
			nc.Close()
			return nil, err
		}
		d.Health.Add("redis", func(ctx context.Context) error {
			err := d.Redis.Ping(ctx).Err()
			RedisState(name, err == nil)
			return err
		})
	}
	retention := c.Retention
	if retention == 0 {
		retention = bus.DefaultRetention
	}
	ensured := make(chan error, 1)
	if name == LayoutOwner {
		log.Info("ensuring streams and buckets", "nats", redact.URLs(c.NATSURL), "replicas", c.Replicas, "retention", retention.String())
		go func() {
			ensured <- bus.EnsureRetry(ctx, d.JS, bus.Options{Replicas: c.Replicas, Retention: retention})
		}()
	} else {
		log.Info("checking streams and buckets (the keys service creates them)", "nats", redact.URLs(c.NATSURL))
		go func() { ensured <- bus.WaitLayout(ctx, d.JS) }()
	}
	select {
	case err = <-ensured:
	case <-time.After(startingAfter):
		// NATS or the streams are not there yet: answer probes meanwhile
		// (alive, not ready) rather than refuse connections, which a
		// liveness probe would take for a dead process.
		starting := startingCheck(name, nc, d.JS)
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		why := starting(cctx)
		cancel()
		level := slog.LevelWarn
		if errors.Is(why, errLayoutThere) {
			level = slog.LevelInfo // a moment before Open sees it
		}
		log.Log(ctx, level, "not ready yet; serving health probes meanwhile", "addr", c.HTTPAddr, "reason", why.Error())
		stop := serveWhileStarting(c.HTTPAddr, c.OpsAddr, d.Health, starting, log)
		err = <-ensured
		stop()
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("create streams and buckets: %w", err)
	}
	return d, nil
}

// PublishAsyncTimeout bounds an asynchronous publish: its future fails
// after it and leaves the client's pending table. Without it, a publish
// whose ack never comes (a permission violation, a write lost in a leader
// change) stays pending until a reconnect, and once 4096 have piled up
// every publish of the service stalls.
const PublishAsyncTimeout = 10 * time.Second

func jsOptions() []jetstream.JetStreamOpt {
	return []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(PublishAsyncTimeout),
	}
}

// startingAfter is how long Open waits for NATS before it serves health
// probes on the service's address.
const startingAfter = time.Second

// startingCheck is the readiness check "streams" of a service that Open
// still holds: it says what the service waits for. NATS first; once
// connected, the keys service (LayoutOwner) to create the streams and
// buckets (or, for keys itself, their creation), with the first one still
// missing: a keys service of an older release lacks a newer bucket.
func startingCheck(name string, nc *nats.Conn, js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("starting: waiting for NATS")
		}
		what := "waiting for the keys service to create the streams and buckets"
		if name == LayoutOwner {
			what = "creating the streams and buckets"
		}
		if err := bus.CheckLayout(ctx, js); err != nil {
			return fmt.Errorf("starting: %s: %w", what, err)
		}
		return errLayoutThere
	}
}

// errLayoutThere is startingCheck's reason once the streams and buckets
// are there, until Open, which checks every second, sees them too.
var errLayoutThere = errors.New("starting: the streams and buckets are there")

// serveWhileStarting serves, on addr, until stop is called: /healthz (200),
// /readyz (503, with health's failing check or starting's reason),
// /metrics (on opsAddr instead when set, with the probes), and for any
// other path 503 unavailable with Retry-After, so that a sender retries.
// stop closes the listeners, so the service's own servers can take the
// addresses.
func serveWhileStarting(addr, opsAddr string, health *Health, starting func(context.Context) error, log *slog.Logger) (stop func()) {
	if addr == "" {
		return func() {}
	}
	h := NewHealth(health.name)
	h.ownMetrics = health.ownMetrics
	h.checks = append(h.checks, health.snapshot()...)
	h.Add("streams", starting)
	e := NewEcho()
	ops := h.MountOn(e, opsAddr)
	e.RouteNotFound("/*", func(c echo.Context) error {
		c.Response().Header().Set("Retry-After", "5")
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"error": map[string]string{
			"code": "unavailable", "message": "the service is starting; retry later",
		}})
	})
	stopMain := serveUntilStopped(addr, e, log)
	stopOps := func() {}
	if ops != nil {
		stopOps = serveUntilStopped(opsAddr, ops, log)
	}
	return func() { stopMain(); stopOps() }
}

func serveUntilStopped(addr string, h http.Handler, log *slog.Logger) (stop func()) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("cannot serve health probes while starting", "addr", addr, "err", err)
		return func() {}
	}
	srv := HTTPServer(addr, h)
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}
}

// usesRedis reports whether service name keeps dedup claims (the
// dispatcher) or looks them up (the ingress). The others ignore
// HOOKRUN_REDIS_URL: set for all services at once (hookrun dev, a shared
// environment), it would otherwise make them not ready while Redis is
// down, though they never use it.
func usesRedis(name string) bool { return name == "ingress" || name == "dispatcher" }

// DedupStore returns the Redis store when Redis is configured, else the
// NATS KV store with per-key TTL.
func (d *Deps) DedupStore(ctx context.Context) (dedup.Store, error) {
	if d.Redis != nil {
		return dedup.NewRedis(d.Redis), nil
	}
	kv, err := d.JS.KeyValue(ctx, bus.BucketDedup)
	if err != nil {
		return nil, err
	}
	return dedup.NewKV(kv), nil
}

// Close drains NATS (flushing pending publishes and acks) and closes Redis.
func (d *Deps) Close() {
	if d.NC != nil {
		done := make(chan struct{})
		d.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := d.NC.Drain(); err != nil {
			d.NC.Close()
		} else {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				d.NC.Close()
			}
		}
	}
	if d.Redis != nil {
		_ = d.Redis.Close()
	}
}

// Main runs a service binary: `NAME healthcheck` probes the service's own
// /readyz (for container healthchecks), on its ops address if it has one; otherwise run is called with a
// context cancelled on SIGINT/SIGTERM, and an error exits 1.
func Main(name, defaultAddr string, run func(ctx context.Context) error) {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		// The ops address, when there is one, says why it is not ready.
		addr := Env("OPS_ADDR", "")
		if addr == "" {
			addr = Env("HTTP_ADDR", defaultAddr)
		}
		os.Exit(Healthcheck(addr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "hookrun-%s: %v\n", name, err)
		os.Exit(1)
	}
}

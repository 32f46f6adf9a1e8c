// Package keys is Hookrun's control plane: the REST API for jobs, webhooks,
// signing secrets and API keys, and the queries of runs and deliveries. It
// is the only writer of configuration, which it keeps in NATS KV buckets
// that the other services watch.
package keys

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/secretbox"
	"github.com/hookrun/hookrun/pkg/service"
)

// Config is the keys service configuration.
type Config struct {
	service.Common
	// AdminTokens are the bearer tokens that may use the API.
	AdminTokens []string
}

// ConfigFromEnv reads HOOKRUN_ADMIN_TOKENS (comma-separated) and
// HOOKRUN_ADMIN_TOKENS_FILE (one per line; blank lines and lines starting
// with # are skipped), so tokens can come from a mounted secret file.
func ConfigFromEnv() (Config, error) {
	c, err := service.CommonFromEnv("127.0.0.1:8081")
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Common: c, AdminTokens: ParseTokens(service.Env("ADMIN_TOKENS", ""))}
	if f := service.Env("ADMIN_TOKENS_FILE", ""); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, fmt.Errorf("HOOKRUN_ADMIN_TOKENS_FILE: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				cfg.AdminTokens = append(cfg.AdminTokens, ParseTokens(line)...)
			}
		}
	}
	if len(cfg.AdminTokens) == 0 {
		return cfg, errors.New("set HOOKRUN_ADMIN_TOKENS (comma-separated bearer tokens) or HOOKRUN_ADMIN_TOKENS_FILE")
	}
	if cfg.SecretKey == "" {
		return cfg, errors.New("set HOOKRUN_SECRET_KEY (32 bytes, base64: openssl rand -base64 32), or HOOKRUN_SECRET_KEY_FILE naming a file that holds it: secrets are encrypted at rest with it")
	}
	return cfg, nil
}

// ParseTokens splits a comma-separated token list, dropping blanks.
func ParseTokens(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Service is the keys service.
type Service struct {
	cfg Config
	log *slog.Logger
	// pendingScans bounds the run look-ups reading DELIVERIES at once
	// (pendingRun).
	pendingScans chan struct{}
	// wholeScans bounds the run lists reading the whole STATUS stream at
	// once (wholeScan).
	wholeScans chan struct{}
	nc         *nats.Conn
	js         jetstream.JetStream
	box        *secretbox.Box
	health     *service.Health
	echo       *echo.Echo
	ops        *echo.Echo // the OpsAddr listener's routes, nil without one
	now        func() time.Time
	// beforeCancelStatus, when set (tests), runs between a cancel's read
	// of a queued run and its store of the "cancelled" status.
	beforeCancelStatus func()
	// afterCancelMark, when set (tests), runs once a cancel's mark is
	// stored and its message sent.
	afterCancelMark func()
	// afterPendingScan, when set (tests), runs between the look-up of a
	// run's deliveries not dispatched yet and the second read of its
	// status (orPending).
	afterPendingScan func()
	// beforeRotateStore, when set (tests), runs between a secret
	// rotation's read of the secret and its store of the new value.
	beforeRotateStore func()
	// beforeWebhookDelete, when set (tests), runs between a webhook
	// delete's read of the webhook and its delete.
	beforeWebhookDelete func()
	// beforeWebhookKey, when set (tests), runs between the choice of the
	// name of the key a webhook generates and the key's creation.
	beforeWebhookKey func()

	jobs     kvStore[resource.Job]
	webhooks kvStore[resource.Webhook]
	secrets  kvStore[resource.StoredSecret]
	apiKeys  kvStore[resource.APIKey]
	tokens   [][32]byte
	// keyNames makes an API key's name check and its creation one step
	// in this process, for POST /v1/keys and a webhook's generated key
	// alike: a client retrying a create that timed out made two keys of
	// one name.
	keyNames sync.Mutex
}

// New builds the service.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, box *secretbox.Box, health *service.Health, log *slog.Logger) *Service {
	s := &Service{
		cfg: cfg, log: log, nc: nc, js: js, box: box, health: health, now: time.Now, pendingScans: make(chan struct{}, 4), wholeScans: make(chan struct{}, 2),
		jobs:     kvStore[resource.Job]{js, bus.BucketJobs, log},
		webhooks: kvStore[resource.Webhook]{js, bus.BucketWebhooks, log},
		secrets:  kvStore[resource.StoredSecret]{js, bus.BucketSecrets, log},
		apiKeys:  kvStore[resource.APIKey]{js, bus.BucketKeys, log},
	}
	for _, t := range cfg.AdminTokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	e := service.NewEcho()
	e.JSONSerializer = plainJSON{}
	e.Use(recordRequests) // outermost: counts the status finally written
	e.Use(middleware.Recover())
	e.HTTPErrorHandler = s.httpError
	s.ops = health.MountOn(e, cfg.OpsAddr)
	s.routes(e.Group("/v1"))
	s.echo = e
	return s
}

// FromDeps builds the service on opened connections.
func FromDeps(cfg Config, d *service.Deps) *Service {
	return New(cfg, d.NC, d.JS, d.Box, d.Health, d.Log)
}

// routes mounts the API. The admin check is attached per route rather than
// to the group, so a known path with another method answers 405, not 404.
func (s *Service) routes(v1 *echo.Group) {
	g := adminRoutes{v1, s.requireAdmin}
	g.PUT("/jobs/:name", s.putJob)
	g.GET("/jobs", s.listJobs)
	g.GET("/jobs/:name", s.getJob)
	g.DELETE("/jobs/:name", s.deleteJob)

	g.PUT("/secrets/:name", s.putSecret)
	g.GET("/secrets", s.listSecrets)
	g.GET("/secrets/:name", s.getSecret)
	g.DELETE("/secrets/:name", s.deleteSecret)
	g.POST("/secrets/:name/rotate", s.rotateSecret)

	g.PUT("/webhooks/:name", s.putWebhook)
	g.GET("/webhooks", s.listWebhooks)
	g.GET("/webhooks/:name", s.getWebhook)
	g.DELETE("/webhooks/:name", s.deleteWebhook)
	g.POST("/webhooks/:name/rotate-endpoint", s.rotateEndpoint)

	g.POST("/keys", s.createKey)
	g.GET("/keys", s.listKeys)
	g.PATCH("/keys/:id/extend", s.extendKey)
	g.DELETE("/keys", s.deleteKeys)
	g.DELETE("/keys/:id", s.deleteKey)

	g.GET("/runs", s.listRuns)
	g.GET("/runs/:id", s.getRun)
	g.GET("/runs/:id/events", s.runEvents)
	g.POST("/runs/:id/cancel", s.cancelRun)
	g.GET("/deliveries/:id", s.getDelivery)
	g.POST("/deliveries/:id/replay", s.replayDelivery)
}

// Handler returns the HTTP handler of the API (for tests and embedding).
func (s *Service) Handler() http.Handler { return s.echo }

// adminRoutes registers routes behind the admin check.
type adminRoutes struct {
	g     *echo.Group
	admin echo.MiddlewareFunc
}

func (r adminRoutes) GET(p string, h echo.HandlerFunc) { r.g.GET(p, h, r.admin, bodyLimit, wholeQuery) }
func (r adminRoutes) PUT(p string, h echo.HandlerFunc) { r.g.PUT(p, h, r.admin, bodyLimit, wholeQuery) }
func (r adminRoutes) POST(p string, h echo.HandlerFunc) {
	r.g.POST(p, h, r.admin, bodyLimit, wholeQuery)
}
func (r adminRoutes) PATCH(p string, h echo.HandlerFunc) {
	r.g.PATCH(p, h, r.admin, bodyLimit, wholeQuery)
}
func (r adminRoutes) DELETE(p string, h echo.HandlerFunc) {
	r.g.DELETE(p, h, r.admin, bodyLimit, wholeQuery)
}

// bodyLimit answers 413 to a body over 4 MiB, after the admin check: a
// caller without a token gets 401 whatever it sends.
var bodyLimit = middleware.BodyLimit("4M")

// wholeQuery refuses a query string Go cannot read whole: it drops the
// pairs it cannot parse (`namespace=ns2;x`, `%zz`), and a dropped
// ?namespace= would read as "default" (a DELETE in another namespace than
// the one asked) or as every namespace. It refuses as well a parameter the
// route does not read, as Stripe's API does: a misspelt one would be
// ignored, and ?namespce=prod on a DELETE delete in "default", a
// ?stauts=failed list every run.
func wholeQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		q, err := url.ParseQuery(c.Request().URL.RawQuery)
		if err != nil {
			return badRequest("the query string is malformed (a \";\" or a bad %-escape): " + err.Error())
		}
		takes := append([]string{"namespace"}, routeQuery[c.Path()]...)
		read := c.Request().Method == http.MethodGet || c.Request().Method == http.MethodHead
		for _, k := range slices.Sorted(maps.Keys(q)) {
			// "_" on a read is a cache buster (jQuery's cache: false, EventSource
			// polyfills, dashboards' HTTP panels): it names no setting to lose.
			if !slices.Contains(takes, k) && !(read && k == "_") {
				if len(k) > 64 {
					k = k[:64] + "…"
				}
				return badRequest(fmt.Sprintf("unknown query parameter %s: %s %s takes %s", strconv.Quote(apikey.Hide(k)), c.Request().Method, c.Path(), strings.Join(takes, ", ")))
			}
		}
		return next(c)
	}
}

// routeQuery are the query parameters a route reads beside ?namespace=,
// which every route takes.
var routeQuery = map[string][]string{
	"/v1/runs":            {"webhook", "job", "status", "limit", "cursor"},
	"/v1/runs/:id/events": {"delivery", "lastEventId"},
}

// requireAdmin checks the bearer token against every admin token in
// constant time (hashing first so token lengths do not leak either), and
// compares against all of them so the position of a match does not leak.
func (s *Service) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, tok, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return errUnauthorized
		}
		h := sha256.Sum256([]byte(tok))
		match := 0
		for _, t := range s.tokens {
			match |= subtle.ConstantTimeCompare(h[:], t[:])
		}
		if match != 1 {
			return errUnauthorized
		}
		return next(c)
	}
}

// storageEvery is how often keys reports what the streams hold.
var storageEvery = 15 * time.Second

// Run serves until ctx ends.
func (s *Service) Run(ctx context.Context, ready func(net.Addr)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return service.ServeOps(gctx, s.cfg.OpsAddr, s.ops, s.log) })
	g.Go(func() error {
		return service.Serve(gctx, service.HTTPServer(s.cfg.HTTPAddr, s.echo), 10*time.Second, ready)
	})
	// What the streams hold, for sizing NATS and its alerts: keys, which
	// lays the streams out, reports it (every replica: dashboards take the
	// max).
	g.Go(func() error { return service.ReportStreams(gctx, s.js, storageEvery, s.log) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// namespace reads ?namespace=, default "default".
func namespace(c echo.Context) (string, error) {
	ns := c.QueryParam("namespace")
	if ns == "" {
		return resource.DefaultNamespace, nil
	}
	if err := resource.CheckName("namespace", ns); err != nil {
		return "", err
	}
	return ns, nil
}

// namespaceFilter reads ?namespace= where it only narrows (lists and
// look-ups by id across namespaces): "" when absent.
func namespaceFilter(c echo.Context) (string, error) {
	if c.QueryParam("namespace") == "" {
		return "", nil
	}
	return namespace(c)
}

// pathName reads and validates the :name path parameter.
func pathName(c echo.Context) (string, error) {
	n := c.Param("name")
	if err := resource.CheckName("metadata.name", n); err != nil {
		return "", err
	}
	return n, nil
}

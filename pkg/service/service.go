// Package service holds what every Hookrun service does the same way:
// configuration from HOOKRUN_* environment variables, JSON logs, the
// /healthz, /readyz and /metrics endpoints, HTTP server timeouts, and the
// connection-state metrics.
package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with HOOKRUN_PPROF=true
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/ident"
)

// Common is the configuration every service reads.
type Common struct {
	HTTPAddr string
	// OpsAddr, when set (HOOKRUN_OPS_ADDR), is a second listener for
	// /metrics (and /debug/pprof/), which HTTPAddr then does not serve:
	// the ingress' HTTPAddr is public, and its metrics name every webhook.
	// Both answer /healthz and /readyz.
	OpsAddr      string
	NATSURL      string
	NATSUser     string
	NATSPassword string
	RedisURL     string
	// RedisSentinelPassword is the Sentinels' own password
	// (HOOKRUN_REDIS_SENTINEL_PASSWORD), when HOOKRUN_REDIS_URL names
	// Sentinels that have one; the master's is in the URL.
	RedisSentinelPassword string
	LogLevel              string
	Replicas              int
	SecretKey             string
	// Retention is how long DELIVERIES and STATUS keep messages
	// (HOOKRUN_RETENTION; 0: bus' default of 7 days).
	Retention time.Duration
	// OneProcess is set by `hookrun dev`, which runs the four services in
	// one process (never from the environment): each service's /metrics
	// then serves its own metrics only (see ownMetrics).
	OneProcess bool
}

// MinRetention is the shortest HOOKRUN_RETENTION: a day, so that a
// delivery waits that long at least for a dispatcher (one older expires
// unrun), and a run's final status outlives the callbacks' default retry
// schedule (about 22.4 h). Runs and retries that outlive their statuses
// are still bounded (the executor stores the final status anew, a retry
// copy keeps its attempt).
const MinRetention = 24 * time.Hour

// Env returns $HOOKRUN_<name> or def.
func Env(name, def string) string {
	if v, ok := os.LookupEnv("HOOKRUN_" + name); ok && v != "" {
		return v
	}
	return def
}

// SecretFileVars are the credentials a service also takes from a file,
// named by $HOOKRUN_<name>_FILE (a Docker or Kubernetes secret mounted as
// a file), so that they need not sit in its environment, where `docker
// inspect` and the orchestrator's API show them.
var SecretFileVars = []string{"NATS_PASSWORD", "REDIS_URL", "REDIS_SENTINEL_PASSWORD", "SECRET_KEY", "NATS_URL"}

// EnvSecret returns $HOOKRUN_<name>, or the content of the file named by
// $HOOKRUN_<name>_FILE without its trailing line ends (as `echo` and
// editors leave one). Both set, an unreadable file or an empty one is an
// error: a credential silently missing would surface later as a refused
// connection or a sealed secret that cannot be opened.
func EnvSecret(name string) (string, error) {
	v := Env(name, "")
	f := Env(name+"_FILE", "")
	if f == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("HOOKRUN_%s and HOOKRUN_%s_FILE are both set: set one", name, name)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return "", fmt.Errorf("HOOKRUN_%s_FILE: %w", name, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("HOOKRUN_%s_FILE=%s: the file is empty", name, f)
	}
	return s, nil
}

// EnvInt returns $HOOKRUN_<name> as an int, or def; a malformed value is an error.
func EnvInt(name string, def int) (int, error) {
	v := Env(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("HOOKRUN_%s=%q: must be a whole number", name, v)
	}
	return n, nil
}

// EnvDuration returns $HOOKRUN_<name> as a duration, or def.
func EnvDuration(name string, def time.Duration) (time.Duration, error) {
	v := Env(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("HOOKRUN_%s=%q: must be a duration like 30s", name, v)
	}
	return d, nil
}

// EnvPositiveInt is EnvInt for a setting whose zero or negative value
// means nothing: set so, it is an error, not silently the default.
func EnvPositiveInt(name string, def int) (int, error) {
	n, err := EnvInt(name, def)
	if err == nil && n <= 0 {
		err = fmt.Errorf("HOOKRUN_%s=%d: must be positive (unset it for the default, %d)", name, n, def)
	}
	return n, err
}

// EnvPositiveDuration is EnvDuration for a setting whose zero or negative
// value means nothing: set so, it is an error, not silently the default.
func EnvPositiveDuration(name string, def time.Duration) (time.Duration, error) {
	d, err := EnvDuration(name, def)
	if err == nil && d <= 0 {
		err = fmt.Errorf("HOOKRUN_%s=%s: must be positive (unset it for the default, %s)", name, Env(name, ""), def)
	}
	return d, err
}

// EnvBool returns $HOOKRUN_<name> as a boolean (true/false, 1/0, as
// strconv.ParseBool reads them), or def.
func EnvBool(name string, def bool) (bool, error) {
	v := Env(name, "")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("HOOKRUN_%s=%q: must be true or false", name, v)
	}
	return b, nil
}

// CommonFromEnv reads the common configuration with httpAddr as the default listen address.
func CommonFromEnv(httpAddr string) (Common, error) {
	r, err := EnvInt("STREAM_REPLICAS", 1)
	if err != nil {
		return Common{}, err
	}
	if r != 1 && r != 3 && r != 5 {
		return Common{}, fmt.Errorf("HOOKRUN_STREAM_REPLICAS=%d: must be 1, 3 or 5", r)
	}
	level := Env("LOG_LEVEL", "info")
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return Common{}, fmt.Errorf("HOOKRUN_LOG_LEVEL=%q: must be debug, info, warn or error", level)
	}
	if _, err := EnvBool("PPROF", false); err != nil {
		return Common{}, err
	}
	retention, err := EnvDuration("RETENTION", 0)
	if err != nil {
		return Common{}, err
	}
	if Env("RETENTION", "") != "" && retention < MinRetention {
		return Common{}, fmt.Errorf("HOOKRUN_RETENTION=%s: must be at least %s (deliveries wait that long at least for a dispatcher; callbacks retry for about 22 h)", retention, MinRetention)
	}
	secrets := make(map[string]string, len(SecretFileVars))
	for _, name := range SecretFileVars {
		v, err := EnvSecret(name)
		if err != nil {
			return Common{}, err
		}
		secrets[name] = v
	}
	natsURL := secrets["NATS_URL"]
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	return Common{
		Retention:             retention,
		HTTPAddr:              Env("HTTP_ADDR", httpAddr),
		OpsAddr:               Env("OPS_ADDR", ""),
		NATSURL:               natsURL,
		NATSUser:              Env("NATS_USER", ""),
		NATSPassword:          secrets["NATS_PASSWORD"],
		RedisURL:              secrets["REDIS_URL"],
		RedisSentinelPassword: secrets["REDIS_SENTINEL_PASSWORD"],
		LogLevel:              level,
		Replicas:              r,
		SecretKey:             secrets["SECRET_KEY"],
	}, nil
}

// Logger returns a JSON slog logger, on stderr, tagged with the service
// name (none when empty). go-redis's own log lines go through it too (see
// redisLog): go-redis has one logger for the process, the last one a call
// of Logger made.
func Logger(name, level string) *slog.Logger {
	return newLogger(os.Stderr, name, level)
}

func newLogger(w io.Writer, name, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: durationText}))
	if name != "" {
		log = log.With("service", name)
	}
	redis.SetLogger(redisLog{log})
	return log
}

// durationText writes a duration as Go's text ("1.5s"), not slog's JSON
// default of nanoseconds ("in":1500000000), which an operator reading a
// log line has to count the digits of.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

var (
	connOnce   sync.Once
	natsGauge  *prometheus.GaugeVec
	redisGauge *prometheus.GaugeVec
	readyGauge *prometheus.GaugeVec
)

func connMetrics() {
	connOnce.Do(func() {
		natsGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "hookrun_nats_connected", Help: "1 when the service is connected to NATS."}, []string{"service"})
		redisGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "hookrun_redis_connected", Help: "1 when the service's last readiness ping of Redis answered."}, []string{"service"})
		readyGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "hookrun_ready", Help: "1 when the service's /readyz answers ready."}, []string{"service"})
	})
}

// NATSState returns a callback for bus.ConnectOptions.OnState that keeps
// hookrun_nats_connected{service} current.
func NATSState(service string) func(bool) {
	connMetrics()
	return func(up bool) { natsGauge.WithLabelValues(service).Set(b2f(up)) }
}

// RedisState sets hookrun_redis_connected{service}.
func RedisState(service string, up bool) {
	connMetrics()
	redisGauge.WithLabelValues(service).Set(b2f(up))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Health gathers readiness checks.
type Health struct {
	name   string
	mu     sync.Mutex
	checks []check
	// ownMetrics: /metrics serves only this service's metrics, the
	// process being shared with the others (Common.OneProcess).
	ownMetrics bool
}

type check struct {
	name string
	f    func(context.Context) error
	// notRequired: the check runs (its gauges stay current) but its
	// failure does not make the service not ready.
	notRequired bool
}

// NewHealth returns an empty Health for service name.
func NewHealth(name string) *Health {
	connMetrics()
	return &Health{name: name}
}

// Add registers a readiness check.
func (h *Health) Add(name string, f func(context.Context) error) {
	h.mu.Lock()
	h.checks = append(h.checks, check{name: name, f: f})
	h.mu.Unlock()
}

// snapshot returns the checks registered so far.
func (h *Health) snapshot() []check {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]check(nil), h.checks...)
}

// NotRequired makes the named checks report-only: they still run, but a
// failure no longer makes the service not ready (Degraded names it).
func (h *Health) NotRequired(names ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.checks {
		for _, n := range names {
			if h.checks[i].name == n {
				h.checks[i].notRequired = true
			}
		}
	}
}

// Ready runs every check; the error names the first failing one.
func (h *Health) Ready(ctx context.Context) error {
	_, err := h.status(ctx)
	return err
}

// status runs every check: err names the first failing required one,
// degraded the first failing one that is not required. Every check runs
// whatever failed before it, so the gauges checks set (hookrun_redis_
// connected) are current when another dependency is down.
func (h *Health) status(ctx context.Context) (degraded, err error) {
	for _, c := range h.snapshot() {
		cerr := c.f(ctx)
		if cerr == nil {
			continue
		}
		cerr = fmt.Errorf("%s: %w", c.name, cerr)
		switch {
		case c.notRequired && degraded == nil:
			degraded = cerr
		case !c.notRequired && err == nil:
			err = cerr
		}
	}
	if err != nil {
		readyGauge.WithLabelValues(h.name).Set(0)
		return degraded, err
	}
	readyGauge.WithLabelValues(h.name).Set(1)
	return degraded, nil
}

// Mount adds /healthz, /readyz and /metrics (and /debug/pprof/ when
// HOOKRUN_PPROF is on) to e.
func (h *Health) Mount(e *echo.Echo) {
	h.MountProbes(e)
	h.MountMetrics(e)
}

// MountProbes adds /healthz and /readyz to e.
func (h *Health) MountProbes(e *echo.Echo) { h.mountProbes(e, true) }

// mountProbes adds /healthz and /readyz to e; /readyz gives the failing
// check's error when detailed, else only its name: the address senders
// reach (with an ops address beside it) tells them no internal address
// ("redis: dial tcp 10.0.3.7:6379: …").
func (h *Health) mountProbes(e *echo.Echo, detailed bool) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	why := func(err error) string {
		if detailed {
			return err.Error()
		}
		name, _, _ := strings.Cut(err.Error(), ":")
		return name + " (details on the ops address)"
	}
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		degraded, err := h.status(ctx)
		if err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why(err)})
		}
		if degraded != nil {
			return c.JSON(http.StatusOK, map[string]string{"status": "ready", "degraded": why(degraded)})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
}

// MountMetrics adds /metrics (and /debug/pprof/ when HOOKRUN_PPROF is on)
// to e.
func (h *Health) MountMetrics(e *echo.Echo) {
	if pprof, _ := EnvBool("PPROF", false); pprof { // checked by CommonFromEnv
		// Opt-in profiling (HOOKRUN_PPROF=true), e.g. for `hookrun bench --pprof`.
		e.GET("/debug/pprof/*", echo.WrapHandler(http.DefaultServeMux))
	}
	// Readiness is evaluated at scrape time too, so hookrun_ready and the
	// connection gauges are current whether or not anything polls /readyz.
	metrics := promhttp.Handler()
	if h.ownMetrics {
		metrics = promhttp.InstrumentMetricHandler(prometheus.DefaultRegisterer,
			promhttp.HandlerFor(ownMetrics(prometheus.DefaultGatherer, h.name), promhttp.HandlerOpts{}))
	}
	e.GET("/metrics", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
		_ = h.Ready(ctx)
		cancel()
		metrics.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}

// MountOn adds the probes to e, and the metrics too when opsAddr is empty;
// otherwise it returns the routes of the ops listener (probes and metrics)
// for ServeOps, and e's /readyz names a failing check without its error.
func (h *Health) MountOn(e *echo.Echo, opsAddr string) (ops *echo.Echo) {
	if opsAddr == "" {
		h.Mount(e)
		return nil
	}
	h.mountProbes(e, false)
	ops = NewEcho()
	h.Mount(ops)
	return ops
}

// ServeOps serves ops (from MountOn) on addr until ctx ends; with no ops it
// returns at once.
func ServeOps(ctx context.Context, addr string, ops *echo.Echo, log *slog.Logger) error {
	if ops == nil {
		return nil
	}
	return Serve(ctx, HTTPServer(addr, ops), time.Second, func(a net.Addr) {
		log.Info("serving metrics and probes", "addr", a.String())
	})
}

// NewEcho returns an Echo with Hookrun's defaults: no banner, and errors
// answered in API.md's shape ({"error": {"code", "message"}}); the ingress
// and keys set their own handler over it.
func NewEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = httpError
	return e
}

// httpError answers Echo's own errors (an unknown path, a method a route
// lacks) on the services without an API of their own: the dispatcher's
// and executor's probe and metrics addresses, and every ops address.
func httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status, msg = he.Code, HTTPErrorMessage(he, c.Request())
	}
	code := map[int]string{http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed",
		http.StatusRequestEntityTooLarge: "payload_too_large", http.StatusServiceUnavailable: "unavailable"}[status]
	if code == "" {
		code = "internal"
		if status < 500 {
			code = "invalid_request"
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// NothingServedAt starts the message of a 404 for a path no route serves
// (the CLI tells it from a resource not found: --api-url is wrong).
const NothingServedAt = "nothing is served at "

// HTTPErrorMessage is the message of an Echo error: Echo's own for a path
// no route serves (404) and a method its route does not take (405) carry
// bare reason phrases ("Not Found"), said here as sentences naming the
// request's method and path.
func HTTPErrorMessage(he *echo.HTTPError, r *http.Request) string {
	switch he {
	case echo.ErrNotFound:
		return NothingServedAt + PathShown(r.URL.Path)
	case echo.ErrMethodNotAllowed:
		return "method " + r.Method + " is not allowed on " + PathShown(r.URL.Path)
	}
	if m, ok := he.Message.(string); ok {
		return m
	}
	return http.StatusText(he.Code)
}

// PathShown is a request's path as an error message may say it: an API key
// in it (an ingress URL's /v1/hooks/<endpoint>/<key>, or a key pasted where
// an id goes) shortened to its public part, and an endpoint id (for a
// secret-URL webhook, the credential itself) to its prefix. The answer
// goes to whoever sent the path, but also to the proxies and logs between.
func PathShown(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ident.EndpointPrefix) {
			segs[i] = ident.EndpointPrefix + "…"
			continue
		}
		segs[i] = apikey.Hide(s)
	}
	return strings.Join(segs, "/")
}

// HTTPServer returns an http.Server with the timeouts every service uses.
func HTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      0, // SSE streams live long; handlers bound their own work
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve listens on srv.Addr and serves until ctx ends, then shuts down
// gracefully within grace. ready, if not nil, gets the bound address.
//
// Headers over srv.MaxHeaderBytes are answered 431 with the JSON error body
// every other error has (net/http's own 431 is plain text): the server reads
// up to twice the limit, and LimitHeaders answers between the two. Past
// twice the limit net/http answers, as before, in plain text.
func Serve(ctx context.Context, srv *http.Server, grace time.Duration, ready func(net.Addr)) error {
	if limit := srv.MaxHeaderBytes; limit > 0 && srv.Handler != nil {
		srv.Handler = LimitHeaders(srv.Handler, limit)
		srv.MaxHeaderBytes = 2 * limit
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", srv.Addr, err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// LimitHeaders answers 431 headers_too_large, as JSON, to a request whose
// request line and headers take more than limit bytes as sent.
func LimitHeaders(h http.Handler, limit int) http.Handler {
	msg := []byte(fmt.Sprintf(`{"error":{"code":"headers_too_large","message":"the request's headers are over %d bytes"}}`+"\n", limit))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerBytes(r) > limit {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
			_, _ = w.Write(msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's request line and headers as sent
// ("Name: value\r\n" each; Host is kept apart from r.Header).
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	if r.Host != "" {
		n += len("Host: \r\n") + len(r.Host)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Healthcheck GETs http://<addr>/readyz and returns the exit code for a
// container healthcheck: 0 ready, 1 not.
func Healthcheck(addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return healthcheck("http://"+net.JoinHostPort(host, port)+"/readyz", os.Stderr)
}

// healthcheck GETs url, a /readyz, and returns 0 when it answers 200 (and
// writes the degraded check, if any); otherwise it writes why to out
// ("not ready: 503 Service Unavailable: nats: not connected") and returns
// 1. The reason is all an operator has of a container with no shell and
// no published port (compose's dispatcher), in docker inspect's health
// log.
func healthcheck(url string, out io.Writer) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var r struct{ Reason, Degraded string }
	if resp.StatusCode == http.StatusOK {
		if json.Unmarshal(body, &r) == nil && r.Degraded != "" {
			fmt.Fprintln(out, "ready, degraded:", r.Degraded)
		}
		return 0
	}
	switch {
	case json.Unmarshal(body, &r) == nil && r.Reason != "":
		fmt.Fprintf(out, "not ready: %s: %s\n", resp.Status, r.Reason)
	case len(bytes.TrimSpace(body)) > 0:
		fmt.Fprintf(out, "not ready: %s: %s\n", resp.Status, bytes.TrimSpace(body))
	default:
		fmt.Fprintln(out, "not ready:", resp.Status)
	}
	return 1
}

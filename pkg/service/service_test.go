package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCommonFromEnv_Retention(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    time.Duration
		wantErr string
	}{
		{"", 0, ""},
		{"72h", 72 * time.Hour, ""},
		{"24h", 24 * time.Hour, ""},
		{"23h59m", 0, "at least 24h0m0s"},
		{"1h", 0, "at least"},
		{"0", 0, "at least"},
		{"7d", 0, "must be a duration"},
		{"-1h", 0, "at least"},
	} {
		t.Setenv("HOOKRUN_RETENTION", tc.env)
		c, err := CommonFromEnv("")
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "HOOKRUN_RETENTION") {
				t.Errorf("HOOKRUN_RETENTION=%q: err %v, want one naming the variable and %q", tc.env, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("HOOKRUN_RETENTION=%q: %v", tc.env, err)
		case c.Retention != tc.want:
			t.Errorf("HOOKRUN_RETENTION=%q: Retention %s, want %s", tc.env, c.Retention, tc.want)
		}
	}
}

// Every readiness check runs, whatever failed before it: a check that sets a
// gauge (hookrun_redis_connected) keeps it current while NATS is down.
func TestHealth_RunsEveryCheckWhenAnEarlierOneFails(t *testing.T) {
	h := NewHealth("test-every-check")
	var redisChecked, optionalChecked bool
	h.Add("nats", func(context.Context) error { return errors.New("not connected") })
	h.Add("redis", func(context.Context) error { redisChecked = true; return errors.New("refused") })
	h.Add("optional", func(context.Context) error { optionalChecked = true; return errors.New("slow") })
	h.NotRequired("optional")
	degraded, err := h.status(context.Background())
	if !redisChecked || !optionalChecked {
		t.Fatalf("checks after the failing one ran: redis %v, optional %v; want both", redisChecked, optionalChecked)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "nats:") {
		t.Errorf("err %v: want the first failing required check, nats", err)
	}
	if degraded == nil || !strings.HasPrefix(degraded.Error(), "optional:") {
		t.Errorf("degraded %v: want the failing check that is not required", degraded)
	}
	if v := testutil.ToFloat64(readyGauge.WithLabelValues("test-every-check")); v != 0 {
		t.Errorf("hookrun_ready %v, want 0", v)
	}
}

// With the services in one process, each one's /metrics serves its own
// families and its own series of the shared ones, and the process' families.
func TestOwnMetrics_ServesOnlyTheServicesOwn(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, n := range []string{"hookrun_ingress_requests_total", "hookrun_dispatcher_deliveries_total", "hookrun_consumer_pending_messages", "go_goroutines"} {
		reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: n, Help: n}))
	}
	ready := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookrun_ready", Help: "r"}, []string{"service"})
	reg.MustRegister(ready)
	ready.WithLabelValues("ingress").Set(1)
	ready.WithLabelValues("dispatcher").Set(1)
	mfs, err := ownMetrics(reg, "ingress").Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = append(got[mf.GetName()], serviceLabel(m))
		}
	}
	want := map[string][]string{
		"hookrun_ingress_requests_total": {""}, "hookrun_consumer_pending_messages": {""},
		"go_goroutines": {""}, "hookrun_ready": {"ingress"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the ingress serves %v, want %v", got, want)
	}
}

// `hookrun-<service> healthcheck` says why the service is not ready: the
// operator of a container with no shell and no published port (compose's
// dispatcher) has only its output, in docker inspect's health log.
func TestHealthcheck_SaysWhyNotReady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code       int
		body, want string
		exit       int
	}{
		{http.StatusServiceUnavailable, `{"status":"not ready","reason":"redis: dial tcp 10.0.0.5:6379: i/o timeout"}`, "not ready: 503 Service Unavailable: redis: dial tcp 10.0.0.5:6379: i/o timeout\n", 1},
		{http.StatusNotFound, "no such page", "not ready: 404 Not Found: no such page\n", 1},
		{http.StatusOK, `{"status":"ready","degraded":"nats-output: slow"}`, "ready, degraded: nats-output: slow\n", 0},
		{http.StatusOK, `{"status":"ready"}`, "", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.code)
			_, _ = w.Write([]byte(tc.body))
		}))
		var out bytes.Buffer
		exit := healthcheck(srv.URL+"/readyz", &out)
		srv.Close()
		if exit != tc.exit || out.String() != tc.want {
			t.Errorf("/readyz %d %s: exit %d, wrote %q; want %d, %q", tc.code, tc.body, exit, out.String(), tc.exit, tc.want)
		}
	}
}

// The services without an API of their own (dispatcher, executor, every
// ops address) answer Echo's own errors in API.md's shape, not Echo's
// {"message": …}, with a sentence naming the method and path, not a bare
// "Not Found".
func TestNewEcho_ErrorsHaveTheAPIShape(t *testing.T) {
	e := NewEcho()
	NewHealth("probe").Mount(e)
	for _, tc := range []struct {
		method, path string
		status       int
		code, msg    string
	}{
		{http.MethodGet, "/nope", 404, "not_found", "nothing is served at /nope"},
		{http.MethodPost, "/healthz", 405, "method_not_allowed", "method POST is not allowed on /healthz"},
		// A credential in the path is not said back whole: an API key
		// (an ingress URL sent to the wrong port, a key pasted where an
		// id goes) nor an endpoint id, a secret-URL webhook's credential.
		{http.MethodPost, "/v1/hooks/ep_0123456789abcdefghij/hk_k1d_s3cr3tv4lu3", 404, "not_found", "nothing is served at /v1/hooks/ep_…/hk_k1d_…"},
		{http.MethodPost, "/healthz/%09hk_k1d_s3cr3tv4lu3", 404, "not_found", "nothing is served at /healthz/\thk_k1d_…"},
		{http.MethodGet, "/nope/hk_notakey", 404, "not_found", "nothing is served at /nope/hk_notakey"},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var b struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &b) != nil || b.Error.Code != tc.code || b.Error.Message != tc.msg {
			t.Errorf("%s %s: %d %s; want %d with error code %s and the message %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.code, tc.msg)
		}
	}
}

// With an ops address, the address senders reach answers /readyz with the
// failing check's name only: its error may name internal addresses. The
// ops address, where operators look, gives the whole reason.
func TestMountOn_PublicReadyzNamesTheCheckOnly(t *testing.T) {
	h := NewHealth("probe")
	h.Add("redis", func(context.Context) error { return errors.New("dial tcp 10.0.3.7:6379: connection refused") })
	public := NewEcho()
	ops := h.MountOn(public, "127.0.0.1:0")
	get := func(e *echo.Echo) (int, string) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(public); code != http.StatusServiceUnavailable || strings.Contains(body, "10.0.3.7") || !strings.Contains(body, "redis") {
		t.Errorf("public /readyz: %d %s; want 503 naming redis without its address", code, body)
	}
	if code, body := get(ops); code != http.StatusServiceUnavailable || !strings.Contains(body, "10.0.3.7") {
		t.Errorf("ops /readyz: %d %s; want 503 with the whole reason", code, body)
	}
}

// Durations in log lines read as Go's text, not nanoseconds.
func TestLogger_WritesDurationsAsText(t *testing.T) {
	var out bytes.Buffer
	newLogger(&out, "executor", "info").Info("handing the run back", "in", 1500*time.Millisecond)
	if !strings.Contains(out.String(), `"in":"1.5s"`) {
		t.Fatalf("log line %s: want \"in\":\"1.5s\"", out.String())
	}
}

// A credential can come from a file (a mounted Docker or Kubernetes
// secret) instead of the environment; both, or a file that holds nothing
// or cannot be read, stop start-up naming the variable.
func TestCommonFromEnv_CredentialsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("HOOKRUN_SECRET_KEY_FILE", write("key", "c2VjcmV0LWtleQ==\n"))
	t.Setenv("HOOKRUN_NATS_PASSWORD_FILE", write("nats", "pa ss\r\n"))
	t.Setenv("HOOKRUN_REDIS_URL_FILE", write("redis", "redis://:pw@redis:6379/0"))
	t.Setenv("HOOKRUN_NATS_URL_FILE", write("natsurl", "nats://u:p@nats:4222\n"))
	c, err := CommonFromEnv("")
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretKey != "c2VjcmV0LWtleQ==" || c.NATSPassword != "pa ss" || c.RedisURL != "redis://:pw@redis:6379/0" || c.NATSURL != "nats://u:p@nats:4222" {
		t.Fatalf("from files: secret key %q, NATS password %q, Redis URL %q, NATS URL %q", c.SecretKey, c.NATSPassword, c.RedisURL, c.NATSURL)
	}

	for _, tc := range []struct {
		name, env, file, want string
	}{
		{"both", "c2VjcmV0LWtleQ==", write("key2", "x\n"), "HOOKRUN_SECRET_KEY and HOOKRUN_SECRET_KEY_FILE are both set"},
		{"empty", "", write("empty", "\n"), "HOOKRUN_SECRET_KEY_FILE=" + dir + "/empty: the file is empty"},
		{"missing", "", dir + "/none", "HOOKRUN_SECRET_KEY_FILE: open " + dir + "/none"},
	} {
		t.Setenv("HOOKRUN_SECRET_KEY", tc.env)
		t.Setenv("HOOKRUN_SECRET_KEY_FILE", tc.file)
		if _, err := CommonFromEnv(""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

package ingress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// dial opens a raw connection to the ingress.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// dribble writes s one byte every step until it is written or the
// connection refuses; it reports how many bytes went out.
func dribble(c net.Conn, s string, step time.Duration) <-chan int {
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < len(s); n++ {
			if _, err := c.Write([]byte{s[n]}); err != nil {
				break
			}
			time.Sleep(step)
		}
		sent <- n
	}()
	return sent
}

// waitClosed reads c until the server closes it (or answers and closes),
// and returns what it sent and how long that took.
func waitClosed(t *testing.T, c net.Conn, limit time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", limit)
	}
	return string(b), time.Since(start)
}

// TestServer_CutsOffSlowHeaders (slowloris): a client dribbling its
// headers a byte at a time is disconnected at ReadHeaderTimeout, and the
// service stays healthy.
func TestServer_CutsOffSlowHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ReadHeaderTimeout = 300 * time.Millisecond })
	c := e.dial()
	headers := "POST /v1/hooks/ep_x HTTP/1.1\r\nHost: ingress\r\nX-Slow: " + strings.Repeat("a", 200) + "\r\n\r\n"
	sent := dribble(c, headers, 20*time.Millisecond) // 4 s for all of it
	got, took := waitClosed(t, c, 3*time.Second)
	if took > 1500*time.Millisecond {
		t.Fatalf("slow headers cut off after %s, want about 300ms", took)
	}
	if strings.Contains(got, "202") {
		t.Fatalf("slow request was served: %q", got)
	}
	c.Close()
	if n := <-sent; n >= len(headers) {
		t.Fatal("all headers went out: the server never cut the client off")
	}
	e.requireReady()
}

// TestServer_CutsOffSlowBodies: a body dribbled slower than ReadTimeout
// allows is cut off (400 invalid_body, then close); nothing is stored.
func TestServer_CutsOffSlowBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ReadTimeout = 700 * time.Millisecond })
	e.job("report")
	w := e.webhook("slow-body", resource.WebhookSpec{})
	c := e.dial()
	body := strings.Repeat("x", 100)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: ingress\r\nContent-Length: %d\r\n\r\n", hookPath(w), len(body))
	dribble(c, body, 50*time.Millisecond) // 5 s for all of it
	got, took := waitClosed(t, c, 4*time.Second)
	if took > 2*time.Second {
		t.Fatalf("slow body cut off after %s, want about 700ms", took)
	}
	if got != "" && !strings.Contains(got, " 400 ") {
		t.Fatalf("answer to a cut-off body: %q", got)
	}
	if n := len(e.storedFor(w)); n != 0 {
		t.Fatalf("%d deliveries stored from a cut-off body", n)
	}
	e.requireReady()
}

// TestServer_ClosesIdleConnections: a keep-alive connection left idle is
// closed after IdleTimeout.
func TestServer_ClosesIdleConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := e.dial()
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: ingress\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(3 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want closed by the server", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("idle connection closed after %s, want about 300ms", took)
	}
}

// TestServer_RefusesHugeHeaders: headers beyond MaxHeaderBytes get 431
// (the default limit and a configured one), and the service stays healthy.
func TestServer_RefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		max      int
		header   int
		jsonBody bool // the API's error shape; past twice the limit net/http answers alone, in text
	}{
		{"default 64 KiB", 0, 200 << 10, false}, {"just over the default", 0, 70 << 10, true},
		{"configured 4 KiB", 4 << 10, 16 << 10, false}, {"just over the configured", 4 << 10, 5 << 10, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.MaxHeaderBytes = tt.max })
			resp, err := e.client.Do(e.request("POST", "/v1/hooks/ep_x", "{}", "X-Huge", strings.Repeat("h", tt.header)))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status %d, want 431", resp.StatusCode)
			}
			if tt.jsonBody && !strings.Contains(string(b), `"code":"headers_too_large"`) {
				t.Fatalf("431 body %q, want the JSON error", b)
			}
			e.requireReady()
		})
	}
}

// TestServer_RecoversFromPanics: a handler that panics answers the JSON
// 500 of the API's error shape, is logged with its stack, and the server
// goes on serving.
func TestServer_RecoversFromPanics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := &testenv.Buffer{}
	in := New(Config{PublishTimeout: time.Second}, e.js, e.cat, nil, service.NewHealth("ingress"), slog.New(slog.NewJSONHandler(logs, nil)))
	in.echo.GET("/test/panic", func(echo.Context) error { panic("boom") })
	srv := httptest.NewServer(in.Handler())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/test/panic")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		!strings.Contains(string(b), `"code":"internal"`) {
		t.Fatalf("panic answered %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
	resp, err = http.Get(srv.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the panic /readyz: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestServer_AnswersUnavailableUntilConfigLoads: before the catalog holds
// the configuration, a delivery to a real endpoint might be refused as
// unknown; the ingress answers 503 with Retry-After instead, and /readyz
// says not ready.
func TestServer_AnswersUnavailableUntilConfigLoads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cold := catalog.New(e.js, e.cfg.Box, slog.New(slog.DiscardHandler)) // never run: never ready
	in := New(Config{PublishTimeout: time.Second}, e.js, cold, nil, service.NewHealth("ingress"), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(in.Handler())
	t.Cleanup(srv.Close)

	resp, err := http.Post(srv.URL+"/v1/hooks/"+ident.NewEndpointID(), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"unavailable"`) {
		t.Fatalf("before config: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	resp, err = http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz before config = %d, want 503", resp.StatusCode)
	}
}

// metricValue returns the value of the sample of name whose labels include
// every k="v" pair given, or -1 when there is none.
func metricValue(text, name string, labels ...string) float64 {
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
			}
		}
		if match {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestMetrics_CountRequestsWithBoundedLabels: requests are counted by
// webhook and status code, with latency histograms, an in-flight gauge and
// auth-failure and duplicate counters; requests to unknown endpoints all
// count under webhook="_unknown", never under the id they tried.
func TestMetrics_CountRequestsWithBoundedLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("metrics-hook", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}, IdempotencyHeader: "Idempotency-Key"})
	key := e.apiKey(nil, nil, nil)
	_, before := e.get("/metrics")

	wantAccepted(t, e.post(hookPath(w), "{}", "X-API-KEY", key, "Idempotency-Key", "m-1"), 202)
	wantAccepted(t, e.post(hookPath(w), "{}", "X-API-KEY", key, "Idempotency-Key", "m-1"), 202)
	wantError(t, e.post(hookPath(w), "{}"), 401, "missing_credentials")
	var probes []string
	for range 25 {
		id := ident.NewEndpointID()
		probes = append(probes, id)
		wantError(t, e.post("/v1/hooks/"+id, "{}"), 404, "endpoint_not_found")
	}
	code, after := e.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	const label = "default/metrics-hook"
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"hookrun_ingress_requests_total", []string{"webhook", label, "code", "202"}, 2},
		{"hookrun_ingress_requests_total", []string{"webhook", label, "code", "401"}, 1},
		{"hookrun_ingress_auth_failures_total", []string{"webhook", label, "reason", "missing_credentials"}, 1},
		{"hookrun_ingress_duplicates_total", []string{"webhook", label}, 1},
		{"hookrun_ingress_request_duration_seconds_count", []string{"webhook", label}, 3},
	} {
		// Counters are process-wide (go test -count=N runs this again): compare deltas.
		was := max(metricValue(before, tt.name, tt.labels...), 0)
		if got := metricValue(after, tt.name, tt.labels...) - was; got != tt.want {
			t.Errorf("%s%v grew by %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	unknownBefore := max(metricValue(before, "hookrun_ingress_requests_total", "webhook", "_unknown", "code", "404"), 0)
	if got := metricValue(after, "hookrun_ingress_requests_total", "webhook", "_unknown", "code", "404"); got < unknownBefore+25 {
		t.Errorf("_unknown 404s = %v, want at least %v", got, unknownBefore+25)
	}
	for _, name := range []string{"hookrun_ingress_publish_duration_seconds_count", "hookrun_ingress_body_bytes_count", "hookrun_ingress_inflight_requests"} {
		if metricValue(after, name) < 0 {
			t.Errorf("%s not exported", name)
		}
	}
	for _, id := range probes {
		if strings.Contains(after, id) {
			t.Fatalf("an unknown endpoint id became a label: %s", id)
		}
	}
	// Every webhook label is "_unknown" or namespace/name: bounded by the configuration.
	re := regexp.MustCompile(`^hookrun_ingress_\w+\{[^}]*webhook="([^"]*)"`)
	for line := range strings.SplitSeq(after, "\n") {
		if m := re.FindStringSubmatch(line); m != nil && m[1] != "_unknown" && !strings.Contains(m[1], "/") {
			t.Fatalf("unexpected webhook label in %q", line)
		}
	}
}

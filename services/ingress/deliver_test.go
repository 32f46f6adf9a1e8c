package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// chunked wraps b in a reader of unknown length, so the client sends it
// with Transfer-Encoding: chunked and no Content-Length.
func chunked(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }

// TestDeliver_GETTriggersWithDefaultsOnly: Janus' GET runs the job with
// its defaults: nothing of a body is read or stored, whatever is attached.
func TestDeliver_GETTriggersWithDefaultsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("get-hook", resource.WebhookSpec{Methods: []string{"GET", "POST"}})

	r := e.do(e.request("GET", hookPath(w)+"?topic=ai", `{"ignored":true}`, "Content-Type", "application/json"))
	wantAccepted(t, r, 202)
	d := e.stored(r.Acc.DeliveryID)
	if d.Method != "GET" || len(d.Body) != 0 || d.ContentType != "" {
		t.Fatalf("stored %s body %q content type %q, want GET without body", d.Method, d.Body, d.ContentType)
	}
	if got := d.Query["topic"]; len(got) != 1 || got[0] != "ai" {
		t.Fatalf("query %v, want topic=ai kept", d.Query)
	}
	// Even a GET that claims a multipart body is just a GET.
	wantAccepted(t, e.do(e.request("GET", hookPath(w), nil, "Content-Type", "multipart/form-data; boundary=x")), 202)
}

// TestDeliver_POSTStoresTheRawBody: any content type but multipart; the
// bytes are stored exactly, with the content type, headers and query.
func TestDeliver_POSTStoresTheRawBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("raw", resource.WebhookSpec{})
	for _, tt := range []struct {
		ct   string
		body []byte
	}{
		{"application/json", []byte(`{"b": 2, "a": [1, 2.50, "<&>"]}`)},
		{"text/plain; charset=utf-8", []byte("line one\nline two\n")},
		{"application/x-www-form-urlencoded", []byte("a=1&b=%20x")},
		{"application/octet-stream", []byte{0, 1, 2, 0xff, 0xfe, '\n'}},
		{"", []byte("no content type")},
	} {
		r := e.post(hookPath(w)+"?source=ci&source=cd", tt.body, "Content-Type", tt.ct, "X-Custom", "kept")
		wantAccepted(t, r, 202)
		d := e.stored(r.Acc.DeliveryID)
		if !bytes.Equal(d.Body, tt.body) || d.ContentType != tt.ct || d.Method != "POST" {
			t.Fatalf("%q: stored %q as %q", tt.ct, d.Body, d.ContentType)
		}
		if d.Header["X-Custom"][0] != "kept" || strings.Join(d.Query["source"], ",") != "ci,cd" {
			t.Fatalf("headers %v query %v", d.Header, d.Query)
		}
		if d.SourceIP != "127.0.0.1" || d.ReceivedAt.IsZero() || d.Job != "report" || d.Webhook != "raw" || d.Namespace != "default" {
			t.Fatalf("stored %+v", d)
		}
	}
}

// TestDeliver_RefusesMethodsNotEnabled: 405 with the webhook's methods in
// Allow, for every other method.
func TestDeliver_RefusesMethodsNotEnabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	postOnly := e.webhook("post-only", resource.WebhookSpec{})
	getPut := e.webhook("get-put", resource.WebhookSpec{Methods: []string{"GET", "PUT"}})
	for _, tt := range []struct {
		w       *resource.Webhook
		methods []string
		allow   string
	}{
		{postOnly, []string{"GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE"}, "POST"},
		{getPut, []string{"POST", "PATCH", "DELETE"}, "GET, PUT"},
	} {
		for _, m := range tt.methods {
			req := e.request(m, hookPath(tt.w), nil)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != tt.allow {
				t.Fatalf("%s %s: %d Allow %q, want 405 Allow %q", m, tt.w.Metadata.Name, resp.StatusCode, resp.Header.Get("Allow"), tt.allow)
			}
			if m != "HEAD" {
				wantError(t, e.do(e.request(m, hookPath(tt.w), nil)), 405, "method_not_allowed")
			}
		}
	}
	wantAccepted(t, e.do(e.request("PUT", hookPath(getPut), "{}")), 202)
	if n := len(e.storedFor(postOnly)); n != 0 {
		t.Fatalf("%d deliveries stored from refused methods", n)
	}
}

// TestDeliver_AnyOtherMethodIs405OnAKnownEndpoint: whatever the method —
// lower-case, unknown to Echo, TRACE or CONNECT — a known endpoint answers
// 405 with its Allow, as it does for GET or PUT; a URL that names no
// endpoint (an unknown id, a key segment where the webhook takes none, an
// extra segment) stays 404 under every method, so a scanner learns nothing
// that a GET on a known endpoint would not already tell it.
func TestDeliver_AnyOtherMethodIs405OnAKnownEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	open := e.webhook("open", resource.WebhookSpec{})
	pk := e.webhook("path-keyed", resource.WebhookSpec{Methods: []string{"POST", "PUT"}, Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}})
	unknown := "/v1/hooks/" + ident.NewEndpointID()
	for _, m := range []string{"post", "Post", "put", "FOO", "M-SEARCH", "TRACE", "CONNECT", "PROPFIND"} {
		for _, tt := range []struct {
			target string
			allow  string // "" for 404
		}{
			{hookPath(open), "POST"},
			{hookPath(open) + "/", "POST"},
			{hookPath(pk), "POST, PUT"},
			{hookPath(pk, key), "POST, PUT"},
			{unknown, ""},
			{unknown + "/", ""},
			{hookPath(open, "x"), ""},
			{hookPath(pk, key, "x"), ""},
		} {
			r := e.raw(m, tt.target, []byte("{}"))
			if tt.allow == "" {
				if r.Status != 404 || r.Err.Code != "endpoint_not_found" || r.Header.Get("Allow") != "" {
					t.Errorf("%s %s: %d Allow %q %s, want 404 endpoint_not_found", m, tt.target, r.Status, r.Header.Get("Allow"), r.Body)
				}
				continue
			}
			if r.Status != 405 || r.Err.Code != "method_not_allowed" || r.Header.Get("Allow") != tt.allow {
				t.Errorf("%s %s: %d Allow %q %s, want 405 method_not_allowed Allow %q", m, tt.target, r.Status, r.Header.Get("Allow"), r.Body, tt.allow)
			}
		}
	}
	if n := len(e.storedFor(open)) + len(e.storedFor(pk)); n != 0 {
		t.Fatalf("%d deliveries stored from refused methods", n)
	}
}

// TestDeliver_EnforcesTheBodyLimit: exactly the limit is accepted, one byte
// more is 413, whether the length is declared or the body is chunked, and
// the default limit is 1 MiB.
func TestDeliver_EnforcesTheBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	small := e.webhook("small", resource.WebhookSpec{MaxBodyBytes: 1000})
	def := e.webhook("default-limit", resource.WebhookSpec{})
	for _, tt := range []struct {
		w     *resource.Webhook
		limit int
	}{{small, 1000}, {def, 1 << 20}} {
		at, over := bytes.Repeat([]byte("a"), tt.limit), bytes.Repeat([]byte("a"), tt.limit+1)
		wantAccepted(t, e.post(hookPath(tt.w), at), 202)
		wantAccepted(t, e.post(hookPath(tt.w), chunked(at)), 202)
		wantError(t, e.post(hookPath(tt.w), over), 413, "payload_too_large")
		wantError(t, e.post(hookPath(tt.w), chunked(over)), 413, "payload_too_large")
	}
	// A chunked body far over the limit is refused without reading it all.
	huge := io.LimitReader(zeros{}, 64<<20)
	start := time.Now()
	wantError(t, e.post(hookPath(small), huge), 413, "payload_too_large")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusing a 64 MiB chunked body took %s", d)
	}
	if n := len(e.storedFor(small)); n != 2 {
		t.Fatalf("%d deliveries stored, want only the 2 at the limit", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestDeliver_RefusesMultipart: file uploads (any multipart type, any
// casing) are 415; every other content type is accepted.
func TestDeliver_RefusesMultipart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("upload", resource.WebhookSpec{})
	for _, ct := range []string{"multipart/form-data; boundary=x", "Multipart/Mixed; boundary=x", " multipart/related", "MULTIPART/FORM-DATA", "multipart"} {
		wantError(t, e.post(hookPath(w), "--x\r\n\r\ndata\r\n--x--\r\n", "Content-Type", ct), 415, "unsupported_media_type")
	}
	for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", "text/csv", "image/png", "x/y; multipart=1", "not a media type"} {
		wantAccepted(t, e.post(hookPath(w), "data", "Content-Type", ct), 202)
	}
}

// TestDeliver_RefusesCompressedBodies: a body with a Content-Encoding
// (gzip, …) is 415, not stored as compressed bytes a job and the run's
// webhook_payload would get mangled; "identity" is no encoding.
func TestDeliver_RefusesCompressedBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("compressed", resource.WebhookSpec{})
	gz := []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xab, 0x56, 0x4a, 0x54, 0xb2, 0x32, 0xac, 0xe5, 0x02, 0}
	for _, ce := range []string{"gzip", "deflate", "br", "GZIP", "gzip, identity"} {
		r := e.post(hookPath(w), gz, "Content-Type", "application/json", "Content-Encoding", ce)
		wantError(t, r, 415, "unsupported_media_type")
		if !strings.Contains(r.Err.Message, "Content-Encoding") {
			t.Fatalf("Content-Encoding %s: message %q does not say what to change", ce, r.Err.Message)
		}
	}
	// A second Content-Encoding line counts as much as the first.
	wantError(t, e.post(hookPath(w), gz, "Content-Type", "application/json", "Content-Encoding", "identity", "Content-Encoding", "gzip"), 415, "unsupported_media_type")
	for _, ce := range []string{"identity", " Identity ", "identity, identity"} {
		wantAccepted(t, e.post(hookPath(w), `{"a":1}`, "Content-Type", "application/json", "Content-Encoding", ce), 202)
	}
	if got := e.storedFor(w); len(got) != 3 {
		t.Fatalf("%d deliveries stored, want the three uncompressed ones", len(got))
	}
}

// TestDeliver_AnswersAreNotCached: every answer says Cache-Control:
// no-store (a GET trigger's 200, a 404 of an endpoint that may come back),
// for a CDN or proxy in front.
func TestDeliver_AnswersAreNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("uncached", resource.WebhookSpec{Methods: []string{"GET", "POST"}})
	for _, r := range []reply{
		e.post(hookPath(w), `{}`),
		e.do(e.request("GET", hookPath(w), nil)),
		e.post("/v1/hooks/ep_"+strings.Repeat("b", 32), `{}`),
		e.do(e.request("PUT", hookPath(w), nil)),
		e.post("/elsewhere", `{}`),
	} {
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("answer %d: Cache-Control %q, want no-store", r.Status, got)
		}
	}
}

// TestDeliver_RateLimitsWithRetryAfter: over the webhook's token bucket →
// 429 with a Retry-After that says when a token is back; nothing stored.
func TestDeliver_RateLimitsWithRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	// Refills slow enough that no pause of a loaded machine between two
	// requests brings a token back; Retry-After counts down from 1/rate.
	fast := e.webhook("fast", resource.WebhookSpec{RateLimit: &resource.RateLimit{PerSecond: 0.01, Burst: 2}})
	slow := e.webhook("slow", resource.WebhookSpec{RateLimit: &resource.RateLimit{PerSecond: 0.1, Burst: 1}})

	wantAccepted(t, e.post(hookPath(fast), "{}"), 202)
	wantAccepted(t, e.post(hookPath(fast), "{}"), 202)
	r := e.post(hookPath(fast), "{}")
	wantError(t, r, 429, "rate_limited")
	if n, _ := strconv.Atoi(r.Header.Get("Retry-After")); n < 90 || n > 100 {
		t.Fatalf("Retry-After %q at 0.01/s, want about 100", r.Header.Get("Retry-After"))
	}
	wantAccepted(t, e.post(hookPath(slow), "{}"), 202)
	r = e.post(hookPath(slow), "{}")
	wantError(t, r, 429, "rate_limited")
	if n, _ := strconv.Atoi(r.Header.Get("Retry-After")); n < 5 || n > 10 {
		t.Fatalf("Retry-After %q at 0.1/s, want about 10", r.Header.Get("Retry-After"))
	}
	if n := len(e.storedFor(fast)); n != 2 {
		t.Fatalf("%d deliveries stored, want 2", n)
	}
	// A new rate in the configuration replaces the bucket.
	fast.Spec.RateLimit = &resource.RateLimit{PerSecond: 1000, Burst: 1000}
	e.putWebhook(*fast)
	wantAccepted(t, e.post(hookPath(fast), "{}"), 202)
}

// TestDeliver_FailedAuthenticationSpendsNoRateToken: requests that fail
// authentication are refused without spending the webhook's tokens, so
// someone who only knows the URL cannot starve the real sender (429).
func TestDeliver_FailedAuthenticationSpendsNoRateToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	e.secret("rl-secret", "rate-limit-secret", "", 0)
	key := e.apiKey(nil, nil, nil)
	rl := &resource.RateLimit{PerSecond: 0.01, Burst: 2} // no token comes back during the test
	sig := e.webhook("rl-signed", resource.WebhookSpec{RateLimit: rl,
		Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "rl-secret"}}})
	keyed := e.webhook("rl-keyed", resource.WebhookSpec{RateLimit: rl, Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})

	body := []byte(`{"n":1}`)
	for i := 0; i < 5; i++ {
		wantError(t, e.do(signed(e.request("POST", hookPath(sig), body), "generic", body, "wrong-secret", fmt.Sprint("bad-", i), time.Now())), 401, "signature_invalid")
		wantError(t, e.post(hookPath(keyed), body, "X-API-KEY", "hk_nosuchid_"+strings.Repeat("b", 52)), 401, "invalid_credentials")
	}
	for i := 0; i < 2; i++ {
		wantAccepted(t, e.do(signed(e.request("POST", hookPath(sig), body), "generic", body, "rate-limit-secret", fmt.Sprint("good-", i), time.Now())), 202)
		wantAccepted(t, e.post(hookPath(keyed), body, "X-API-KEY", key), 202)
	}
	// Authenticated deliveries do spend: the bucket is empty now.
	wantError(t, e.post(hookPath(keyed), body, "X-API-KEY", key), 429, "rate_limited")
}

// TestDeliver_JobMissingIsRecordedOnTheWebhook: 500 job_not_runnable with
// the detail in the webhook status bucket; once the job exists, the same
// webhook delivers without a restart.
func TestDeliver_JobMissingIsRecordedOnTheWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.webhook("needs-job", resource.WebhookSpec{Job: "late-job"})
	wantError(t, e.post(hookPath(w), "{}"), 500, "job_not_runnable")
	st, err := webhookstatus.Get(context.Background(), e.js, "default", "needs-job")
	if err != nil || !strings.Contains(st.LastError, "late-job") || st.LastErrorAt == nil {
		t.Fatalf("status %+v (%v), want lastError naming late-job", st, err)
	}
	if n := len(e.storedFor(w)); n != 0 {
		t.Fatalf("%d deliveries stored for a webhook without its job", n)
	}
	e.job("late-job")
	testenv.Eventually(t, time.Second, func() error {
		if r := e.post(hookPath(w), "{}"); r.Status != 202 {
			return errNotYet
		}
		return nil
	})
}

// TestDeliver_AnswersWithTheWebhooksSuccessStatus: 202 by default, 200
// when the webhook chooses it (Janus senders).
func TestDeliver_AnswersWithTheWebhooksSuccessStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	wantAccepted(t, e.post(hookPath(e.webhook("default-status", resource.WebhookSpec{})), "{}"), http.StatusAccepted)
	wantAccepted(t, e.post(hookPath(e.webhook("ok-status", resource.WebhookSpec{Response: &resource.Response{Status: 200}})), "{}"), http.StatusOK)
}

// A webhook stored with a body limit past what one NATS message holds (an
// older release allowed 64 MiB; today's cap is resource.MaxBodyBytes): a
// body within it but too large for NATS is 413, which a sender does not
// retry, not 503, which it retries for ever.
func TestDeliver_BodyOverNATSMaxPayloadIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.cfg.Webhook(resource.Webhook{Metadata: resource.Meta{Name: "big"}, Spec: resource.WebhookSpec{Job: "report"}})
	w.Spec.MaxBodyBytes = 16 << 20 // as stored before the cap, not validated again
	b, _ := json.Marshal(w)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name), b); err != nil {
		t.Fatal(err)
	}
	e.waitWebhook(w)
	wantError(t, e.post(hookPath(w), bytes.Repeat([]byte("a"), 7<<20)), 413, "payload_too_large")
	wantAccepted(t, e.post(hookPath(w), bytes.Repeat([]byte("a"), 1<<20)), 202)
}

// A body declared large but not (yet) sent pins only what has arrived: the
// ingress reads it before authenticating the sender.
func TestReadBody_DeclaredLengthIsNotAllocatedUpFront(t *testing.T) {
	req := httptest.NewRequest("POST", "/v1/hooks/x", strings.NewReader("only a few bytes"))
	req.ContentLength = 1 << 30
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := readBody(req, 4<<30); err != errUnreadableBody {
		t.Fatalf("a body shorter than declared: %v, want errUnreadableBody", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("reading 16 bytes of a declared 1 GiB allocated %d MiB", grew>>20)
	}
	// A declared length is still read whole.
	body := strings.Repeat("x", 200<<10)
	req = httptest.NewRequest("POST", "/v1/hooks/x", strings.NewReader(body))
	if b, err := readBody(req, 1<<20); err != nil || string(b) != body {
		t.Fatalf("a 200 KiB body: %d bytes, %v", len(b), err)
	}
}

// A tiny rate asks the sender to wait a day at most: the seconds left to
// the next token would overflow Retry-After's int (it came out as 1).
func TestLimiter_RetryAfterOfATinyRateIsADayAtMost(t *testing.T) {
	for _, perSecond := range []float64{1e-30, 1e-6} {
		l := &limiter{perSecond: perSecond, burst: 1, l: rate.NewLimiter(rate.Limit(perSecond), 1)}
		if ok, _ := l.check(l.l.Allow()); !ok {
			t.Fatalf("%g/s: the first request refused", perSecond)
		}
		if ok, secs := l.check(l.l.Allow()); ok || secs != maxRetryAfter {
			t.Fatalf("%g/s: allowed %v, Retry-After %d, want refused with %d", perSecond, ok, secs, maxRetryAfter)
		}
	}
}

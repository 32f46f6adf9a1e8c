package ingress

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// signed returns req with the headers profile would add for body.
func signed(req *http.Request, profile string, body []byte, secret, eventID string, at time.Time) *http.Request {
	p, _ := signature.Lookup(profile)
	for k, vs := range p.Sign(body, secret, eventID, at) {
		req.Header[k] = vs
	}
	return req
}

// TestIngress_AnswersEveryRowOfTheErrorTable sends, for every row of the
// ingress error table in API.md, a request that must get that row: its
// status, its code, a message, and Retry-After where the table says so.
func TestIngress_AnswersEveryRowOfTheErrorTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.PublishTimeout = 500 * time.Millisecond })
	e.job("report")
	e.secret("gen-secret", "replace-me", "", 0)
	generic := e.webhook("sig-generic", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "gen-secret"}}})
	bodyKey := e.webhook("body-key", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "api_key"}}})
	headerKey := e.webhook("header-key", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	plain := e.webhook("plain", resource.WebhookSpec{})
	small := e.webhook("small", resource.WebhookSpec{MaxBodyBytes: 16})
	limited := e.webhook("limited", resource.WebhookSpec{RateLimit: &resource.RateLimit{PerSecond: 0.5, Burst: 1}})
	orphan := e.webhook("orphan", resource.WebhookSpec{Job: "no-such-job"})
	disabled := e.webhook("disabled", resource.WebhookSpec{Disabled: true})
	rotated := e.webhook("rotated", resource.WebhookSpec{})
	oldEndpoint := *rotated
	rotated.Status.EndpointID = ""
	e.putWebhook(*rotated)
	deleted := e.webhook("deleted", resource.WebhookSpec{})
	kv, err := e.js.KeyValue(context.Background(), bus.BucketWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey("default", "deleted")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, ok := e.cat.WebhookByEndpoint(deleted.Status.EndpointID); ok {
			return errNotYet
		}
		return nil
	})

	good := e.apiKey(nil, nil, nil)
	past := time.Now().Add(-time.Minute)
	expired := e.apiKey(nil, nil, &past)
	otherHook := e.apiKey([]string{"some-other-webhook"}, nil, nil)
	otherJob := e.apiKey(nil, []string{"some-other-job"}, nil)
	body := []byte(`{"event":"report.trigger","topic":"AI startups"}`)
	now := time.Now()

	tests := []struct {
		name       string
		req        func() *http.Request
		before     func()
		status     int
		code       string
		retryAfter bool
	}{
		{name: "400 missing_event_id: generic signature without X-Event-Id",
			req: func() *http.Request {
				return signed(e.request("POST", hookPath(generic), body), "generic", body, "replace-me", "", now)
			},
			status: 400, code: "missing_event_id"},
		{name: "400 invalid_body: key in the body but the body is not a JSON object",
			req:    func() *http.Request { return e.request("POST", hookPath(bodyKey), `api_key=`+good) },
			status: 400, code: "invalid_body"},
		{name: "400 invalid_body: key in the body but the body is a JSON array",
			req:    func() *http.Request { return e.request("POST", hookPath(bodyKey), `[{"api_key":"`+good+`"}]`) },
			status: 400, code: "invalid_body"},
		{name: "401 missing_credentials: no API key",
			req:    func() *http.Request { return e.request("POST", hookPath(headerKey), "{}") },
			status: 401, code: "missing_credentials"},
		{name: "401 invalid_credentials: wrong API key",
			req: func() *http.Request {
				return e.request("POST", hookPath(headerKey), "{}", "X-API-KEY", good[:len(good)-4]+"AAAA")
			},
			status: 401, code: "invalid_credentials"},
		{name: "401 invalid_credentials: not a key at all",
			req:    func() *http.Request { return e.request("POST", hookPath(headerKey), "{}", "X-API-KEY", "your-api-key") },
			status: 401, code: "invalid_credentials"},
		{name: "401 expired_key: expired API key",
			req:    func() *http.Request { return e.request("POST", hookPath(headerKey), "{}", "X-API-KEY", expired) },
			status: 401, code: "expired_key"},
		{name: "401 signature_invalid: no signature",
			req: func() *http.Request {
				return e.request("POST", hookPath(generic), body, "X-Event-Id", "evt-1", "X-Timestamp", strconv.FormatInt(now.Unix(), 10))
			},
			status: 401, code: "signature_invalid"},
		{name: "401 signature_invalid: wrong signature",
			req: func() *http.Request {
				return signed(e.request("POST", hookPath(generic), body), "generic", body, "not-the-secret", "evt-1", now)
			},
			status: 401, code: "signature_invalid"},
		{name: "401 timestamp_out_of_tolerance: signed ten minutes ago",
			req: func() *http.Request {
				return signed(e.request("POST", hookPath(generic), body), "generic", body, "replace-me", "evt-1", now.Add(-10*time.Minute))
			},
			status: 401, code: "timestamp_out_of_tolerance"},
		{name: "403 key_not_allowed: key scoped to another webhook",
			req:    func() *http.Request { return e.request("POST", hookPath(headerKey), "{}", "X-API-KEY", otherHook) },
			status: 403, code: "key_not_allowed"},
		{name: "403 key_not_allowed: key scoped to another job",
			req:    func() *http.Request { return e.request("POST", hookPath(headerKey), "{}", "X-API-KEY", otherJob) },
			status: 403, code: "key_not_allowed"},
		{name: "404 endpoint_not_found: unknown endpoint",
			req:    func() *http.Request { return e.request("POST", "/v1/hooks/ep_doesnotexist", "{}") },
			status: 404, code: "endpoint_not_found"},
		{name: "404 endpoint_not_found: deleted webhook",
			req:    func() *http.Request { return e.request("POST", hookPath(deleted), "{}") },
			status: 404, code: "endpoint_not_found"},
		{name: "404 endpoint_not_found: disabled webhook",
			req:    func() *http.Request { return e.request("POST", hookPath(disabled), "{}") },
			status: 404, code: "endpoint_not_found"},
		{name: "404 endpoint_not_found: rotated-out endpoint",
			req:    func() *http.Request { return e.request("POST", hookPath(&oldEndpoint), "{}") },
			status: 404, code: "endpoint_not_found"},
		{name: "404 endpoint_not_found: a key path on a webhook without path keys",
			req:    func() *http.Request { return e.request("POST", hookPath(plain, "extra"), "{}") },
			status: 404, code: "endpoint_not_found"},
		{name: "405 method_not_allowed: GET on a POST-only webhook",
			req:    func() *http.Request { return e.request("GET", hookPath(plain), nil) },
			status: 405, code: "method_not_allowed"},
		{name: "413 payload_too_large: body over the webhook's limit",
			req:    func() *http.Request { return e.request("POST", hookPath(small), strings.Repeat("x", 17)) },
			status: 413, code: "payload_too_large"},
		{name: "415 unsupported_media_type: multipart upload",
			req: func() *http.Request {
				return e.request("POST", hookPath(plain), "--b\r\n\r\nx\r\n--b--\r\n", "Content-Type", "multipart/form-data; boundary=b")
			},
			status: 415, code: "unsupported_media_type"},
		{name: "429 rate_limited: over the webhook's rate",
			before: func() { wantAccepted(t, e.post(hookPath(limited), "{}"), 202) },
			req:    func() *http.Request { return e.request("POST", hookPath(limited), "{}") },
			status: 429, code: "rate_limited", retryAfter: true},
		{name: "500 job_not_runnable: the webhook's job is missing",
			req:    func() *http.Request { return e.request("POST", hookPath(orphan), "{}") },
			status: 500, code: "job_not_runnable"},
		// Last: it takes NATS away.
		{name: "503 unavailable: the delivery cannot be stored",
			before: e.stopNATS,
			req:    func() *http.Request { return e.request("POST", hookPath(plain), "{}") },
			status: 503, code: "unavailable", retryAfter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			r := e.do(tt.req())
			wantError(t, r, tt.status, tt.code)
			if got := r.Header.Get("Retry-After"); tt.retryAfter {
				if n, err := strconv.Atoi(got); err != nil || n < 1 {
					t.Fatalf("Retry-After = %q, want whole seconds ≥ 1", got)
				}
			} else if got != "" {
				t.Fatalf("Retry-After = %q on a %d", got, tt.status)
			}
			if tt.status == 405 && r.Header.Get("Allow") != "POST" {
				t.Fatalf("Allow = %q, want POST", r.Header.Get("Allow"))
			}
			if strings.Contains(string(r.Body), good) || strings.Contains(string(r.Body), "replace-me") {
				t.Fatalf("error body echoes a credential: %s", r.Body)
			}
		})
	}

	e.startNATS()
	st, err := webhookstatus.Get(context.Background(), e.js, "default", "orphan")
	if err != nil || !strings.Contains(st.LastError, "no-such-job") {
		t.Errorf("orphan's lastError = %q (%v), want it to name the missing job", st.LastError, err)
	}
}

// errNotYet is what a polled condition returns until it holds.
var errNotYet = constError("not yet")

// TestIngress_RejectsExpiredKey is the table's expired_key row on its own,
// with the boundary: a key is refused from its expiry instant on, and the
// same key answers 401 expired_key in every placement.
func TestIngress_RejectsExpiredKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	header := e.webhook("by-header", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	query := e.webhook("by-query", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "query", Name: "test_key"}}})
	path := e.webhook("by-path", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}})
	body := e.webhook("by-body", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "test_key"}}})
	past := time.Now().Add(-time.Second)
	key := e.apiKey(nil, nil, &past)

	wantError(t, e.post(hookPath(header), "{}", "X-API-KEY", key), 401, "expired_key")
	wantError(t, e.post(hookPath(query)+"?test_key="+key, "{}"), 401, "expired_key")
	wantError(t, e.post(hookPath(path, key), "{}"), 401, "expired_key")
	wantError(t, e.post(hookPath(body), `{"test_key":"`+key+`"}`), 401, "expired_key")

	// The key's life covers the KV put, the catalog watch and a POST on a
	// loaded machine; it must answer 202 until its expiry and 401 from then.
	soon := time.Now().Add(5 * time.Second)
	live := e.apiKey(nil, nil, &soon)
	wantAccepted(t, e.post(hookPath(header), "{}", "X-API-KEY", live), 202)
	testenv.Eventually(t, time.Until(soon)+10*time.Second, func() error {
		r := e.post(hookPath(header), "{}", "X-API-KEY", live)
		if r.Err.Code != "expired_key" {
			return fmt.Errorf("answer %d %s", r.Status, r.Body)
		}
		if early := time.Until(soon); early > 0 {
			t.Fatalf("expired_key %s before the key's expiry", early)
		}
		return nil
	})
}

// The 202's body is encoded by pkg/message's encoder: the same bytes as
// Echo's c.JSON (encoding/json), HTML escapes and all, for any event id.
func TestWriteJSON_SameBytesAsEchoJSON(t *testing.T) {
	e := echo.New()
	for _, ev := range []string{"evt-1", `a<b>&"c"\d`, "é\u2028日本", ""} {
		acc := &accepted{Accepted: true, Received: true, Duplicate: ev == "", WebhookID: "gh", DeliveryID: "dlv_1", EventID: ev, ExecutionID: "run_1", Status: "queued"}
		want := httptest.NewRecorder()
		if err := e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), want).JSON(http.StatusAccepted, acc); err != nil {
			t.Fatal(err)
		}
		got := httptest.NewRecorder()
		if err := writeJSON(e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), got), http.StatusAccepted, acc); err != nil {
			t.Fatal(err)
		}
		if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("event id %q: got %d %q %q, want %d %q %q", ev, got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}

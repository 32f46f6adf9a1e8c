package ingress

// The seed documents' own examples (../shared/seeds), replayed with exactly
// their headers and bodies against our paths. Where a seed uses a
// placeholder ("your-api-key", "YOUR-GENERATED-KEY") the test puts a key the
// keys service would have generated; where it computes a signature with
// openssl, so does the test (the same pipeline, which crypto/hmac must
// agree with; without sh, openssl or xxd those tests skip, or fail under
// CI=true).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// opensslHexHMAC is the Orloj seed's
//
//	printf '%s' "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256
func opensslHexHMAC(t *testing.T, payload, secret string) string {
	t.Helper()
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	want := hex.EncodeToString(m.Sum(nil))
	for _, tool := range []string{"sh", "openssl", "xxd"} {
		if _, err := exec.LookPath(tool); err != nil {
			// Signing with crypto/hmac alone would check it against itself.
			msg := fmt.Sprintf("%s is not on PATH: install it (apt-get install openssl xxd) to replay the seed's openssl pipeline", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	cmd := exec.Command("sh", "-c", `printf '%s' "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256`)
	cmd.Env = append(cmd.Environ(), "PAYLOAD="+payload, "SECRET="+secret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl pipeline: %v", err)
	}
	got := strings.TrimSpace(string(out))
	if got != want {
		t.Fatalf("openssl gives %s, crypto/hmac %s", got, want)
	}
	return got
}

// TestSeed_JanusCurlWithAPIKey replays Janus' curl:
//
//	curl -X POST https://your-janus-instance/webhook/execute/abc123 \
//	  -H "X-API-KEY: your-api-key" \
//	  -H "Content-Type: application/json" \
//	  -d '{"message": "Hello from webhook"}'
//
// on a webhook that answers 200 as Janus senders expect; the body reaches
// the delivery as sent and the key does not. Janus' other answers: 401
// without the correct key, GET runs with defaults only (no body), no file
// uploads, 500 when the job cannot start.
func TestSeed_JanusCurlWithAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("janus", resource.WebhookSpec{
		Methods:  []string{"GET", "POST"},
		Auth:     resource.Auth{APIKey: &resource.APIKeyAuth{In: "header", Name: "X-API-KEY"}},
		Response: &resource.Response{Status: 200},
	})
	key := e.apiKey([]string{"janus"}, nil, nil)
	const body = `{"message": "Hello from webhook"}`

	r := e.post(hookPath(w), body, "X-API-KEY", key, "Content-Type", "application/json")
	wantAccepted(t, r, http.StatusOK)
	d := e.stored(r.Acc.DeliveryID)
	if string(d.Body) != body || d.ContentType != "application/json" || d.Method != "POST" {
		t.Fatalf("stored %s %q %q", d.Method, d.ContentType, d.Body)
	}
	if _, ok := d.Header["X-Api-Key"]; ok {
		t.Fatal("the API key header was stored")
	}

	wantError(t, e.post(hookPath(w), body, "X-API-KEY", "your-api-key", "Content-Type", "application/json"), 401, "invalid_credentials")
	wantError(t, e.post(hookPath(w), body, "Content-Type", "application/json"), 401, "missing_credentials")

	g := e.do(e.request("GET", hookPath(w), nil, "X-API-KEY", key))
	wantAccepted(t, g, http.StatusOK)
	if d := e.stored(g.Acc.DeliveryID); d.Method != "GET" || len(d.Body) != 0 {
		t.Fatalf("GET stored as %s with body %q, want no body", d.Method, d.Body)
	}
	wantError(t, e.post(hookPath(w), "--x\r\n\r\nfile\r\n--x--\r\n", "X-API-KEY", key, "Content-Type", "multipart/form-data; boundary=x"), 415, "unsupported_media_type")

	open := e.webhook("janus-open", resource.WebhookSpec{Response: &resource.Response{Status: 200}})
	wantAccepted(t, e.post(hookPath(open), body, "Content-Type", "application/json"), http.StatusOK)

	broken := e.webhook("janus-broken", resource.WebhookSpec{Job: "gone", Response: &resource.Response{Status: 200}})
	wantError(t, e.post(hookPath(broken), body, "Content-Type", "application/json"), 500, "job_not_runnable")
}

// TestSeed_JacCloudKeyPlacements replays Jac Cloud's four placements with
// the seed's names ("test-key" for the header, "test_key" otherwise):
//
//	curl -X 'POST' 'http://localhost:8001/webhook/walker/webhook_by_header' -H 'test-key: YOUR-GENERATED-KEY'
//	curl -X 'POST' 'http://localhost:8001/webhook/walker/webhook_by_query?test_key=YOUR-GENERATED-KEY'
//	curl -X 'POST' 'http://localhost:8001/webhook/walker/webhook_by_path/YOUR-GENERATED-KEY'
//	curl -X 'POST' 'http://localhost:8001/webhook/walker/webhook_by_body' -d '{"test_key": "YOUR-GENERATED-KEY"}'
//
// (curl -d sends Content-Type application/x-www-form-urlencoded; the key is
// still found in the JSON and removed from the stored body.)
func TestSeed_JacCloudKeyPlacements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	byHeader := e.webhook("webhook-by-header", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "header", Name: "test-key"}}})
	byQuery := e.webhook("webhook-by-query", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "query", Name: "test_key"}}})
	byPath := e.webhook("webhook-by-path", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path", Name: "test_key"}}})
	byBody := e.webhook("webhook-by-body", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "test_key"}}})
	// Jac Cloud's generate-key: a name, allowed walkers, an expiration.
	exp := time.Now().Add(60 * 24 * time.Hour)
	key := e.apiKey([]string{"webhook-by-header", "webhook-by-query", "webhook-by-path", "webhook-by-body"}, nil, &exp)

	for _, r := range []reply{
		e.post(hookPath(byHeader), nil, "test-key", key),
		e.post(hookPath(byQuery)+"?test_key="+key, nil),
		e.post(hookPath(byPath, key), nil),
	} {
		wantAccepted(t, r, 202)
		if d := e.stored(r.Acc.DeliveryID); len(d.Body) != 0 || len(d.Query) != 0 || d.Header["Test-Key"] != nil {
			t.Fatalf("stored body %q query %v header %v", d.Body, d.Query, d.Header)
		}
	}
	body := `{"test_key": "` + key + `"}`
	r := e.post(hookPath(byBody), body, "Content-Type", "application/x-www-form-urlencoded", "Content-Length", strconv.Itoa(len(body)))
	wantAccepted(t, r, 202)
	if d := e.stored(r.Acc.DeliveryID); string(d.Body) != `{}` || d.Header["Content-Length"] != nil {
		// The sender's Content-Length no longer fits the stored body, and
		// would tell the removed key's length.
		t.Fatalf("stored body %q, want {} (the key removed), headers %v", d.Body, d.Header)
	}
	// Troubleshooting: "the key in the correct location, the parameter name matches".
	wantError(t, e.post(hookPath(byHeader), nil, "X-API-KEY", key), 401, "missing_credentials")
	wantError(t, e.post(hookPath(byQuery)+"?api_key="+key, nil), 401, "missing_credentials")
	wantError(t, e.post(hookPath(byBody), `{"api_key": "`+key+`"}`), 401, "missing_credentials")
}

// TestSeed_OrlojGenericSignedCurl replays Orloj's step 4:
//
//	BODY='{"event":"report.trigger","topic":"AI startups"}'
//	TS="$(date +%s)"
//	SECRET='replace-me'
//	SIG_HEX="$(printf '%s' "${TS}.${BODY}" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256)"
//	curl -i -X POST "http://127.0.0.1:8080${endpointPath}" \
//	  -H "Content-Type: application/json" -H "X-Timestamp: ${TS}" \
//	  -H "X-Event-Id: evt-001" -H "X-Signature: sha256=${SIG_HEX}" --data "$BODY"
//
// Expected: 202, accepted: true, duplicate: false on the first delivery,
// duplicate: true (still 202) when it is sent again.
func TestSeed_OrlojGenericSignedCurl(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("weekly-report")
	e.secret("webhook-shared-secret", "replace-me", "", 0)
	w := e.webhook("report-generic-webhook", resource.WebhookSpec{Job: "weekly-report",
		Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "webhook-shared-secret"}}})

	const body = `{"event":"report.trigger","topic":"AI startups"}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := opensslHexHMAC(t, ts+"."+body, "replace-me")
	send := func(eventID, sig string) reply {
		return e.post(w.Status.EndpointPath, body,
			"Content-Type", "application/json", "X-Timestamp", ts, "X-Event-Id", eventID, "X-Signature", "sha256="+sig)
	}
	first := send("evt-001", sig)
	wantAccepted(t, first, 202)
	if first.Acc.Duplicate || first.Acc.EventID != "evt-001" {
		t.Fatalf("first delivery: %s", first.Body)
	}
	again := send("evt-001", sig)
	wantAccepted(t, again, 202)
	if !again.Acc.Duplicate || again.Acc.ExecutionID != first.Acc.ExecutionID {
		t.Fatalf("second delivery: %s, want duplicate of %s", again.Body, first.Acc.ExecutionID)
	}
	d := e.stored(first.Acc.DeliveryID)
	if string(d.Body) != body || d.EventID != "evt-001" || d.Profile != "generic" || d.Header["X-Signature"] != nil {
		t.Fatalf("stored %+v", d)
	}

	// Troubleshooting: 401 signature verification failed, 400 missing event
	// id, 404 webhook endpoint not found.
	bad := send("evt-002", opensslHexHMAC(t, ts+"."+body, "not-replace-me"))
	wantError(t, bad, 401, "signature_invalid")
	if bad.Err.Message != "signature verification failed" {
		t.Fatalf("message %q, want Orloj's %q", bad.Err.Message, "signature verification failed")
	}
	wantError(t, e.post(w.Status.EndpointPath, body, "Content-Type", "application/json", "X-Timestamp", ts, "X-Signature", "sha256="+sig), 400, "missing_event_id")
	wantError(t, e.post("/v1/hooks/ep_rotatedaway", body, "Content-Type", "application/json", "X-Timestamp", ts, "X-Event-Id", "evt-003", "X-Signature", "sha256="+sig), 404, "endpoint_not_found")
}

// TestSeed_OrlojGitHubSignedCurl replays Orloj's step 4b:
//
//	BODY='{"ref":"refs/heads/main","repository":{"full_name":"acme/repo"}}'
//	SECRET='replace-me'
//	SIG_HEX="$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256)"
//	curl -i -X POST "http://127.0.0.1:8080${endpointPath}" -H "Content-Type: application/json" \
//	  -H "X-GitHub-Delivery: gh-evt-001" -H "X-Hub-Signature-256: sha256=${SIG_HEX}" --data "$BODY"
//
// and the template-task failure: the job is not runnable → 500 with the
// detail in status.lastError, a generic message to the sender.
func TestSeed_OrlojGitHubSignedCurl(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("weekly-report")
	e.secret("github-secret", "replace-me", "", 0)
	w := e.webhook("report-github-push", resource.WebhookSpec{Job: "weekly-report",
		Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "github-secret"}}})

	const body = `{"ref":"refs/heads/main","repository":{"full_name":"acme/repo"}}`
	sig := opensslHexHMAC(t, body, "replace-me")
	r := e.post(w.Status.EndpointPath, body, "Content-Type", "application/json",
		"X-GitHub-Delivery", "gh-evt-001", "X-Hub-Signature-256", "sha256="+sig)
	wantAccepted(t, r, 202)
	if r.Acc.Duplicate || r.Acc.EventID != "gh-evt-001" {
		t.Fatalf("answer %s", r.Body)
	}
	if d := e.stored(r.Acc.DeliveryID); string(d.Body) != body || d.Header["X-Hub-Signature-256"] != nil || d.Profile != "github" {
		t.Fatalf("stored body %q header %v profile %q", d.Body, d.Header, d.Profile)
	}
	wantError(t, e.post(w.Status.EndpointPath, body, "Content-Type", "application/json", "X-Hub-Signature-256", "sha256="+sig), 400, "missing_event_id")

	orphan := e.webhook("report-github-orphan", resource.WebhookSpec{Job: "not-a-template",
		Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "github-secret"}}})
	failed := e.post(orphan.Status.EndpointPath, body, "Content-Type", "application/json",
		"X-GitHub-Delivery", "gh-evt-002", "X-Hub-Signature-256", "sha256="+sig)
	wantError(t, failed, 500, "job_not_runnable")
	if strings.Contains(failed.Err.Message, "not-a-template") {
		t.Fatalf("the sender learns the detail: %q", failed.Err.Message)
	}
	st, err := webhookstatus.Get(context.Background(), e.js, "default", "report-github-orphan")
	if err != nil || !strings.Contains(st.LastError, "not-a-template") {
		t.Fatalf("lastError %q (%v)", st.LastError, err)
	}
}

// TestSeed_WorkjetJSONToSecretURL replays Workjet's request:
//
//	POST https://api.workjet.dev/v1/webhooks/wh_abc123
//	Content-Type: application/json
//
//	{ "event": "ticket.created", "data": { ... } }
//
// on a secret-URL webhook: it is acknowledged at once with received,
// webhookId, executionId and status queued, and stored byte for byte.
func TestSeed_WorkjetJSONToSecretURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("triage")
	w := e.webhook("wh-abc123", resource.WebhookSpec{Job: "triage"})
	const body = `{
  "event": "ticket.created",
  "data": {
    "id": "TICKET-456",
    "title": "Login button not working",
    "description": "Users report the login button is unresponsive on mobile.",
    "priority": "high"
  }
}`
	r := e.post(hookPath(w), body, "Content-Type", "application/json")
	wantAccepted(t, r, 202)
	if !r.Acc.Received || r.Acc.WebhookID != "wh-abc123" || r.Acc.Status != "queued" || !strings.HasPrefix(r.Acc.ExecutionID, "run_") {
		t.Fatalf("answer %s", r.Body)
	}
	if d := e.stored(r.Acc.DeliveryID); string(d.Body) != body || d.RunID != r.Acc.ExecutionID {
		t.Fatalf("stored body %q run %q", d.Body, d.RunID)
	}
	// "If a webhook URL is compromised, regenerate it": the old URL is dead.
	w2 := *w
	w2.Status.EndpointID = ""
	e.putWebhook(w2)
	wantError(t, e.post(hookPath(w), body, "Content-Type", "application/json"), 404, "endpoint_not_found")
}

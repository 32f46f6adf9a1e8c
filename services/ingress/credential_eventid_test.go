package ingress

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

// The event id is stored with the delivery and its runs, answered and
// given to the job: one that holds the webhook's credential (a key sent
// again in the idempotency header, GitLab's token in Idempotency-Key) is
// refused, and the answer does not echo it.
func TestDeliver_EventIDHoldingTheCredentialIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	keyed := e.webhook("keyed-idem", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}, IdempotencyHeader: "X-Request-Id"})
	key := e.apiKey(nil, nil, nil)
	r := e.post(hookPath(keyed), `{}`, "X-API-KEY", key, "X-Request-Id", key)
	wantError(t, r, 400, "missing_event_id")
	if strings.Contains(string(r.Body), key) || !strings.Contains(string(r.Body), "credential") {
		t.Fatalf("answer %s: want why, without the key", r.Body)
	}
	wantAccepted(t, e.post(hookPath(keyed), `{}`, "X-API-KEY", key, "X-Request-Id", "order-1"), 202)

	const token = "gitlab-token-0123456789"
	e.secret("gl-token", token, "", 0)
	gl := e.webhook("gitlab-idem", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "gitlab", SecretRef: "gl-token"}}})
	send := func(idem string) reply {
		req := signed(e.request(http.MethodPost, hookPath(gl), `{}`), "gitlab", []byte(`{}`), token, "uuid-1", time.Now())
		req.Header.Set("Idempotency-Key", idem)
		return e.do(req)
	}
	r = send(token)
	wantError(t, r, 400, "missing_event_id")
	if strings.Contains(string(r.Body), token) {
		t.Fatalf("answer %s echoes the token", r.Body)
	}
	wantAccepted(t, send("b3c5e0a2-retry-1"), 202)
}

// A short secret (a GitLab token typed by hand) is too short to be looked
// for within other values, but a value that is the secret whole is its
// credential all the same: not stored in another header or the query, and
// not taken for an event id.
func TestDeliver_AShortSecretSentAgainElsewhereIsStripped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	const token = "pw1234"
	e.secret("gl-short", token, "", 0)
	gl := e.webhook("gitlab-short", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "gitlab", SecretRef: "gl-short"}}})
	send := func(path, idem string, hs ...string) reply {
		req := signed(e.request(http.MethodPost, path, `{}`, hs...), "gitlab", []byte(`{}`), token, "uuid-short", time.Now())
		req.Header.Set("Idempotency-Key", idem)
		return e.do(req)
	}
	r := send(hookPath(gl), token)
	wantError(t, r, 400, "missing_event_id")

	r = send(hookPath(gl)+"?token="+token+"&kept=1", "evt-short-1", "X-Debug", token, "X-Kept", "pw12345-not-it")
	wantAccepted(t, r, 202)
	d := e.stored(r.Acc.DeliveryID)
	if d.Header["X-Debug"] != nil || d.Query["token"] != nil {
		t.Errorf("the short token was stored: headers %v, query %v", d.Header, d.Query)
	}
	if d.Header["X-Kept"] == nil || d.Query["kept"] == nil {
		t.Errorf("a value that only contains the short token was dropped: %v %v", d.Header, d.Query)
	}
}

// A short secret that only keys an HMAC (GitHub's) never travels with the
// request: values that happen to equal it ("?page=test") are the sender's
// data, kept, and an event id equal to it is no credential.
func TestDeliver_AShortHMACSecretStripsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	const secret = "test"
	e.secret("gh-short", secret, "", 0)
	gh := e.webhook("gh-short", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "gh-short"}}})
	body := []byte(`{}`)
	req := signed(e.request(http.MethodPost, hookPath(gh)+"?page=test", body, "X-Note", "test"), "github", body, secret, "test", time.Now())
	r := e.do(req)
	wantAccepted(t, r, 202)
	d := e.stored(r.Acc.DeliveryID)
	if d.Header["X-Note"] == nil || d.Query["page"] == nil || d.EventID != "test" {
		t.Errorf("the sender's data was taken for the secret: headers %v, query %v, event id %q", d.Header, d.Query, d.EventID)
	}
}

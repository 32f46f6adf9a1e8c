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

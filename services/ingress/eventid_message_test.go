package ingress

import (
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// TestAuth_MissingEventIDNamesTheWebhooksOwnProfile: a correctly signed
// delivery without an event id is answered 400 missing_event_id with a
// message that names where this webhook's profile reads the id — not the
// headers of other profiles.
func TestAuth_MissingEventIDNamesTheWebhooksOwnProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	tests := []struct {
		profile string
		body    string
		want    string   // the whole message
		notWant []string // what other profiles read
	}{
		{"generic", `{"a":1}`,
			"missing event id: this webhook's generic profile requires the X-Event-Id header",
			[]string{"GitHub", "webhook-id", "Stripe"}},
		{"github", `{"a":1}`,
			"missing event id: this webhook's github profile requires the X-GitHub-Delivery header",
			[]string{"X-Event-Id", "webhook-id", "body"}},
		{"stripe", `{"object":"event","type":"ping"}`,
			`missing event id: this webhook's stripe profile requires the event's "id" field in the JSON body`,
			[]string{"X-Event-Id", "X-GitHub-Delivery", "webhook-id"}},
		{"standard-webhooks", `{"a":1}`,
			"missing event id: this webhook's standard-webhooks profile requires the webhook-id header (svix-id when the svix-* headers are used)",
			[]string{"X-Event-Id", "X-GitHub-Delivery", "body"}},
		{"shopify", `{"a":1}`,
			"missing event id: this webhook's shopify profile requires the X-Shopify-Event-Id header (with X-Shopify-Topic), else the X-Shopify-Webhook-Id header (Shopify-Webhook-Id for an Events delivery, its headers without X-)",
			[]string{"X-Event-Id", "X-GitHub-Delivery", "webhook-id"}},
		{"gitlab", `{"a":1}`,
			"missing event id: this webhook's gitlab profile requires the Idempotency-Key header (GitLab 17.4 and later), else the X-Gitlab-Event-UUID header",
			[]string{"X-Event-Id", "X-GitHub-Delivery", "webhook-id"}},
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			p, _ := signature.Lookup(tc.profile)
			secret, _ := p.GenerateSecret()
			ref := tc.profile + "-eid-secret"
			e.secret(ref, secret, "", 0)
			w := e.webhook(tc.profile+"-eid", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: tc.profile, SecretRef: ref}}})
			body := []byte(tc.body)
			r := e.do(signed(e.request("POST", hookPath(w), body, "Content-Type", "application/json"), tc.profile, body, secret, "", time.Now()))
			wantError(t, r, 400, "missing_event_id")
			if r.Err.Message != tc.want {
				t.Fatalf("message %q,\nwant    %q", r.Err.Message, tc.want)
			}
			for _, s := range tc.notWant {
				if strings.Contains(r.Err.Message, s) {
					t.Fatalf("message %q names %q, which the %s profile does not read", r.Err.Message, s, tc.profile)
				}
			}
		})
	}
}

package resource

import "testing"

// A profile whose event id header is unsigned (generic, github, gitlab,
// shopify) can take the id from a header the webhook names instead:
// Orloj's "configured event id header", the profile giving the default.
func TestWebhookValidate_AcceptsAnIdempotencyHeaderWithAProfileWhoseEventIDIsUnsigned(t *testing.T) {
	for _, profile := range []string{"generic", "github", "gitlab", "shopify"} {
		w := validWebhook()
		w.Spec.Auth.Signature = &SignatureAuth{Profile: profile, SecretRef: "s"}
		w.Spec.IdempotencyHeader = "X-Request-Id"
		if err := w.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want the idempotency header accepted", profile, err)
		}
		if w.Spec.IdempotencyHeader != "X-Request-Id" {
			t.Errorf("%s: idempotency header stored as %q", profile, w.Spec.IdempotencyHeader)
		}
	}
}

// Where the profile signs the event id (stripe and slack in the body,
// standard-webhooks' webhook-id), an id from an unsigned header would let
// a captured delivery be replayed under a new id: refused, saying so.
func TestWebhookValidate_RefusesAnIdempotencyHeaderWhereTheProfileSignsTheEventID(t *testing.T) {
	for _, profile := range []string{"stripe", "slack", "standard-webhooks"} {
		t.Run(profile, func(t *testing.T) {
			w := validWebhook()
			w.Spec.Auth.Signature = &SignatureAuth{Profile: profile, SecretRef: "s"}
			w.Spec.IdempotencyHeader = "X-Request-Id"
			err := w.Validate()
			wantFieldError(t, err, "spec.idempotencyHeader", "the "+profile+" profile signs the event id")
			wantFieldError(t, err, "spec.idempotencyHeader", "replayed under a new id")
		})
	}
}

// The event id is stored, answered and given to the job: the header that
// carries the profile's signature or token is never it, whatever its case.
func TestWebhookValidate_RefusesTheProfilesCredentialHeaderAsIdempotencyHeader(t *testing.T) {
	for _, tc := range []struct{ profile, header string }{
		{"gitlab", "X-Gitlab-Token"},
		{"gitlab", "x-gitlab-token"},
		{"generic", "X-Signature"},
		{"github", "X-Hub-Signature-256"},
		{"github", "X-Hub-Signature"},
		{"shopify", "X-Shopify-Hmac-Sha256"},
		{"github", "Authorization"},
		// Stripped from every delivery whatever the auth mode.
		{"github", "X-Api-Key"},
	} {
		t.Run(tc.profile+" "+tc.header, func(t *testing.T) {
			w := validWebhook()
			w.Spec.Auth.Signature = &SignatureAuth{Profile: tc.profile, SecretRef: "s"}
			w.Spec.IdempotencyHeader = tc.header
			wantFieldError(t, w.Validate(), "spec.idempotencyHeader", "must not be "+tc.header)
		})
	}
}

// A header that names no single delivery is refused as the event id
// header, with or without a profile: one Go's server keeps out of a
// request's headers (Host), one every delivery of a second shares (the
// signed timestamp: every event after the first dropped as a duplicate),
// one every delivery of a kind shares (X-GitHub-Event, easily taken for
// X-GitHub-Delivery).
func TestWebhookValidate_RefusesAnIdempotencyHeaderThatNamesNoSingleDelivery(t *testing.T) {
	for _, tc := range []struct{ profile, header string }{
		{"", "Host"},
		{"", "transfer-encoding"},
		{"", "Content-Type"},
		{"generic", "X-Timestamp"},
		{"github", "X-GitHub-Event"},
		{"gitlab", "X-Gitlab-Event"},
		{"shopify", "X-Shopify-Topic"},
	} {
		t.Run(tc.profile+" "+tc.header, func(t *testing.T) {
			w := validWebhook()
			if tc.profile != "" {
				w.Spec.Auth.Signature = &SignatureAuth{Profile: tc.profile, SecretRef: "s"}
			}
			w.Spec.IdempotencyHeader = tc.header
			wantFieldError(t, w.Validate(), "spec.idempotencyHeader", "does not name one delivery")
		})
	}
}

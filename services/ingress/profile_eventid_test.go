package ingress

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
)

// TestAuth_AGenericWebhookTakesItsEventIDFromItsIdempotencyHeader: a
// generic webhook that names spec.idempotencyHeader (Orloj: the event id
// header is configured, the profile gives the default) dedups on that
// header, ignores X-Event-Id, and refuses a delivery without it, naming it.
func TestAuth_AGenericWebhookTakesItsEventIDFromItsIdempotencyHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	const secret = "generic-idem-secret-0123456789"
	e.secret("gen-idem", secret, "", 0)
	w := e.webhook("generic-idem", resource.WebhookSpec{
		Auth:              resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "gen-idem"}},
		IdempotencyHeader: "X-Request-Id",
	})
	body := []byte(`{"event":"report.trigger"}`)
	send := func(eventID string, hs ...string) reply {
		return e.do(signed(e.request(http.MethodPost, hookPath(w), body, hs...), "generic", body, secret, eventID, time.Now()))
	}

	first := send("evt-1", "X-Request-Id", "req-1")
	wantAccepted(t, first, 202)
	if first.Acc.EventID != "req-1" || first.Acc.Duplicate {
		t.Fatalf("first: eventId %q duplicate %v, want req-1 (X-Request-Id), not a duplicate", first.Acc.EventID, first.Acc.Duplicate)
	}
	if d := e.stored(first.Acc.DeliveryID); d.EventID != "req-1" {
		t.Fatalf("stored event id %q, want req-1", d.EventID)
	}

	// Another X-Event-Id, the same X-Request-Id: the same event.
	again := send("evt-2", "x-request-id", "req-1")
	wantAccepted(t, again, 202)
	if !again.Acc.Duplicate || again.Acc.ExecutionID != first.Acc.ExecutionID {
		t.Fatalf("again: duplicate %v executionId %q, want a duplicate of %q", again.Acc.Duplicate, again.Acc.ExecutionID, first.Acc.ExecutionID)
	}

	// X-Event-Id is no longer needed, nor enough.
	noDefault := send("", "X-Request-Id", "req-2")
	wantAccepted(t, noDefault, 202)
	if noDefault.Acc.EventID != "req-2" || noDefault.Acc.Duplicate {
		t.Fatalf("without X-Event-Id: eventId %q duplicate %v, want req-2", noDefault.Acc.EventID, noDefault.Acc.Duplicate)
	}
	missing := send("evt-3")
	wantError(t, missing, 400, "missing_event_id")
	if want := "missing event id: this webhook's generic profile requires the X-Request-Id header"; missing.Err.Message != want {
		t.Fatalf("message %q,\nwant    %q", missing.Err.Message, want)
	}
}

// A webhook stored before the keys service refused it, whose idempotency
// header carries its profile's token or signature, is refused once the
// sender is authenticated: the event id is stored and shown with every
// run, and the answer does not echo the credential.
func TestAuth_AProfilesCredentialHeaderIsNeverTheEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	const token = "gitlab-token-0123456789"
	e.secret("gl-cred", token, "", 0)
	gl := e.storeUnvalidated("gitlab-cred", resource.WebhookSpec{
		Auth:              resource.Auth{Signature: &resource.SignatureAuth{Profile: "gitlab", SecretRef: "gl-cred"}},
		IdempotencyHeader: "X-Gitlab-Token",
	})
	r := e.do(signed(e.request(http.MethodPost, hookPath(gl), `{}`), "gitlab", []byte(`{}`), token, "uuid-1", time.Now()))
	wantError(t, r, 400, "missing_event_id")
	if strings.Contains(string(r.Body), token) || !strings.Contains(r.Err.Message, "credential") {
		t.Fatalf("answer %s: want why, without the token", r.Body)
	}
	// Only an authenticated sender learns it.
	wantError(t, e.do(signed(e.request(http.MethodPost, hookPath(gl), `{}`), "gitlab", []byte(`{}`), "another-token-0123456789", "uuid-2", time.Now())), 401, "signature_invalid")

	const secret = "generic-cred-secret-0123456789"
	e.secret("gen-cred", secret, "", 0)
	gen := e.storeUnvalidated("generic-cred", resource.WebhookSpec{
		Auth:              resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "gen-cred"}},
		IdempotencyHeader: "X-Signature",
	})
	body := []byte(`{}`)
	r = e.do(signed(e.request(http.MethodPost, hookPath(gen), body), "generic", body, secret, "evt-1", time.Now()))
	wantError(t, r, 400, "missing_event_id")
	if !strings.Contains(r.Err.Message, "credential") || strings.Contains(string(r.Body), "sha256=") {
		t.Fatalf("answer %s: want why, without the signature", r.Body)
	}
}

// storeUnvalidated stores a webhook with spec's idempotency header as an
// older release or a hand-written config might have, past today's
// validation, and waits for the ingress to see it.
func (e *env) storeUnvalidated(name string, spec resource.WebhookSpec) *resource.Webhook {
	e.t.Helper()
	h := spec.IdempotencyHeader
	spec.IdempotencyHeader = ""
	w := e.webhook(name, spec) // validated, defaults filled
	w.Spec.IdempotencyHeader = h
	b, _ := json.Marshal(w)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketWebhooks)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name), b); err != nil {
		e.t.Fatal(err)
	}
	e.waitWebhook(w)
	return w
}

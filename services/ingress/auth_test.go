package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// TestAuth_SecretURLAloneAuthenticates is Workjet's model: the endpoint id
// is the credential, long enough not to be guessed, and a near miss is 404.
func TestAuth_SecretURLAloneAuthenticates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("assistant", resource.WebhookSpec{})

	id := strings.TrimPrefix(w.Status.EndpointID, "ep_")
	if bits := len(id) * 5; bits < 128 { // lower-case base32: 5 bits a character
		t.Fatalf("endpoint id %q carries %d random bits, want ≥ 128", w.Status.EndpointID, bits)
	}
	r := e.post(hookPath(w), `{"event":"ticket.created"}`, "Content-Type", "application/json")
	wantAccepted(t, r, http.StatusAccepted)
	if d := e.stored(r.Acc.DeliveryID); d.Principal != "endpoint" {
		t.Fatalf("principal = %q, want endpoint", d.Principal)
	}
	nearMiss := w.Status.EndpointID[:len(w.Status.EndpointID)-1] + "a"
	if nearMiss == w.Status.EndpointID {
		nearMiss = w.Status.EndpointID[:len(w.Status.EndpointID)-1] + "b"
	}
	wantError(t, e.post("/v1/hooks/"+nearMiss, "{}"), 404, "endpoint_not_found")
}

// TestAuth_AcceptsAPIKeyWhereTheWebhookPutsIt covers Jac Cloud's four
// placements with default and custom names: the key is taken only from its
// configured place, and the answers for a missing, wrong or misplaced key.
func TestAuth_AcceptsAPIKeyWhereTheWebhookPutsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key, id, wrong := e.keyAndAWrongOne()

	type send func(w *resource.Webhook, key string) reply
	header := func(name string) send {
		return func(w *resource.Webhook, key string) reply { return e.post(hookPath(w), `{"a":1}`, name, key) }
	}
	query := func(name string) send {
		return func(w *resource.Webhook, key string) reply { return e.post(hookPath(w)+"?"+name+"="+key, `{"a":1}`) }
	}
	path := func(w *resource.Webhook, key string) reply { return e.post(hookPath(w, key), `{"a":1}`) }
	body := func(name string) send {
		return func(w *resource.Webhook, key string) reply {
			return e.post(hookPath(w), `{"a":1,"`+name+`":"`+key+`"}`, "Content-Type", "application/json")
		}
	}
	tests := []struct {
		name      string
		auth      resource.APIKeyAuth
		send      send
		misplaced send   // the key somewhere else: must not count
		where     string // what the missing_credentials message names
	}{
		{"header with the default name X-API-KEY", resource.APIKeyAuth{}, header("X-API-KEY"), query("X-API-KEY"), "in header X-API-KEY"},
		{"header name matched case-insensitively", resource.APIKeyAuth{In: "header"}, header("x-api-key"), body("X-API-KEY"), "in header X-API-KEY"},
		{"header with a custom name", resource.APIKeyAuth{In: "header", Name: "test-key"}, header("test-key"), header("X-API-KEY"), "in header test-key"},
		{"query with the default name X-API-KEY", resource.APIKeyAuth{In: "query"}, query("X-API-KEY"), header("X-API-KEY"), "in query parameter X-API-KEY"},
		{"query with a custom name", resource.APIKeyAuth{In: "query", Name: "test_key"}, query("test_key"), query("api_key"), "in query parameter test_key"},
		{"path", resource.APIKeyAuth{In: "path"}, path, header("X-API-KEY"), "in the URL path"},
		{"body with the default name X-API-KEY", resource.APIKeyAuth{In: "body"}, body("X-API-KEY"), query("X-API-KEY"), "in body field X-API-KEY"},
		{"body with a custom name", resource.APIKeyAuth{In: "body", Name: "test_key"}, body("test_key"), body("api_key"), "in body field test_key"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			w := e.webhook(fmt.Sprintf("keyed-%d", i), resource.WebhookSpec{Auth: resource.Auth{APIKey: &auth}})
			r := tt.send(w, key)
			wantAccepted(t, r, http.StatusAccepted)
			if d := e.stored(r.Acc.DeliveryID); d.Principal != "key:"+id {
				t.Fatalf("principal = %q, want key:%s", d.Principal, id)
			}
			wantError(t, tt.send(w, wrong), 401, "invalid_credentials")
			wantError(t, tt.send(w, "hk_nosuchid_"+strings.Repeat("b", 52)), 401, "invalid_credentials")
			wantError(t, tt.misplaced(w, key), 401, "missing_credentials")
			missing := e.post(hookPath(w), `{"a":1}`)
			wantError(t, missing, 401, "missing_credentials")
			if !strings.Contains(missing.Err.Message, "expected "+tt.where) {
				t.Fatalf("missing key: %q, want it to say the key is expected %s", missing.Err.Message, tt.where)
			}
			if strings.Contains(string(missing.Body), `\u003c`) {
				t.Fatalf("the error body has HTML escapes: %s", missing.Body)
			}
		})
	}
}

// TestAuth_AcceptsBearerKeyInAuthorization: a webhook that takes its key
// in the Authorization header takes it as a Bearer token (the scheme in any
// case: many SaaS senders can send nothing else) or bare; other headers
// take it bare only. The stored delivery holds neither the header nor the
// key.
func TestAuth_AcceptsBearerKeyInAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key, id, wrong := e.keyAndAWrongOne()
	w := e.webhook("bearer", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "header", Name: "Authorization"}}})
	other := e.webhook("custom-header", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "header", Name: "X-API-KEY"}}})

	for _, v := range []string{"Bearer " + key, "bearer " + key, "BEARER  " + key, key} {
		r := e.post(hookPath(w), `{"a":1}`, "Authorization", v, "X-Forwarded-Authorization", v, "X-Kept", "yes")
		wantAccepted(t, r, 202)
		d := e.stored(r.Acc.DeliveryID)
		if d.Principal != "key:"+id {
			t.Fatalf("%q: principal %q, want key:%s", v, d.Principal, id)
		}
		if d.Header["Authorization"] != nil || d.Header["X-Forwarded-Authorization"] != nil || d.Header["X-Kept"] == nil {
			t.Fatalf("%q: stored headers %v", v, d.Header)
		}
		if strings.Contains(string(e.storedMsg(r.Acc.DeliveryID).Data), key) {
			t.Fatalf("%q: the stored delivery holds the key", v)
		}
	}
	for _, tt := range []struct{ value, code string }{
		{"Bearer " + wrong, "invalid_credentials"},
		{"Basic " + key, "invalid_credentials"},
		{"Bearer" + key, "invalid_credentials"},
		{"Bearer", "missing_credentials"},
	} {
		wantError(t, e.post(hookPath(w), `{"a":1}`, "Authorization", tt.value), 401, tt.code)
	}
	wantError(t, e.post(hookPath(other), `{"a":1}`, "X-API-KEY", "Bearer "+key), 401, "invalid_credentials")
	wantAccepted(t, e.post(hookPath(other), `{"a":1}`, "X-API-KEY", key), 202)
}

// TestAuth_RefusesKeyOutsideItsScopes: Jac Cloud's allowed walkers/nodes
// are our webhooks/jobs; empty lists mean all.
func TestAuth_RefusesKeyOutsideItsScopes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	e.job("other-job")
	a := e.webhook("hook-a", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	b := e.webhook("hook-b", resource.WebhookSpec{Job: "other-job", Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})

	onlyA := e.apiKey([]string{"hook-a"}, nil, nil)
	onlyReport := e.apiKey(nil, []string{"report"}, nil)
	both := e.apiKey([]string{"hook-a", "hook-b"}, []string{"report", "other-job"}, nil)
	all := e.apiKey(nil, nil, nil)

	for _, tt := range []struct {
		key  string
		w    *resource.Webhook
		want int
	}{
		{onlyA, a, 202}, {onlyA, b, 403},
		{onlyReport, a, 202}, {onlyReport, b, 403},
		{both, a, 202}, {both, b, 202},
		{all, a, 202}, {all, b, 202},
	} {
		r := e.post(hookPath(tt.w), "{}", "X-API-KEY", tt.key)
		if tt.want == 202 {
			wantAccepted(t, r, 202)
		} else {
			wantError(t, r, 403, "key_not_allowed")
		}
	}
}

// A key is valid in its own namespace only: one stored without a namespace
// (as keys were before they always recorded one) in the default namespace,
// and only a key made for every namespace ("*") everywhere.
func TestAuth_KeyWorksOnlyInItsNamespace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "report", Namespace: "other"}, Spec: resource.JobSpec{Command: []string{"/bin/true"}}})
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, ok := e.cat.Job("other", "report"); !ok {
			return errors.New("job other/report not in the catalog yet")
		}
		return nil
	})
	auth := resource.Auth{APIKey: &resource.APIKeyAuth{}}
	def := e.webhook("deploy", resource.WebhookSpec{Auth: auth})
	oth := e.putWebhook(resource.Webhook{Metadata: resource.Meta{Name: "deploy", Namespace: "other"}, Spec: resource.WebhookSpec{Job: "report", Auth: auth}})

	keyIn := func(ns string) string {
		key, k := e.cfg.APIKeyIn(ns, "k-"+ns, []string{"deploy"}, nil, nil)
		testenv.Eventually(t, 5*time.Second, func() error {
			if _, ok := e.cat.Key(k.ID); !ok {
				return errors.New("key not in the catalog yet")
			}
			return nil
		})
		return key
	}
	legacy, other, all := keyIn(""), keyIn("other"), keyIn(resource.AllNamespaces)
	for _, tt := range []struct {
		name, key string
		w         *resource.Webhook
		want      int
	}{
		{"no namespace, default", legacy, def, 202}, {"no namespace, other", legacy, oth, 403},
		{"other, default", other, def, 403}, {"other, other", other, oth, 202},
		{"every namespace, default", all, def, 202}, {"every namespace, other", all, oth, 202},
	} {
		r := e.post(hookPath(tt.w), "{}", "X-API-KEY", tt.key)
		if r.Status != tt.want || tt.want == 403 && r.Err.Code != "key_not_allowed" {
			t.Errorf("%s: %d %s, want %d", tt.name, r.Status, r.Body, tt.want)
		}
	}
}

// TestAuth_KeyErrorsRevealNothing: a wrong secret for a real key id and an
// unknown id get the same answer, and no answer echoes the key.
func TestAuth_KeyErrorsRevealNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("hook", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	key := e.apiKey(nil, nil, nil)
	id, _, _ := apikey.Parse(key)
	realID := e.post(hookPath(w), "{}", "X-API-KEY", apikey.Prefix+id+"_wrongsecret")
	unknownID := e.post(hookPath(w), "{}", "X-API-KEY", "hk_unknownid_wrongsecret")
	wantError(t, realID, 401, "invalid_credentials")
	if string(realID.Body) != string(unknownID.Body) {
		t.Fatalf("a real key id answers %s, an unknown one %s", realID.Body, unknownID.Body)
	}
	if strings.Contains(string(realID.Body), id) {
		t.Fatalf("answer echoes the key id: %s", realID.Body)
	}
}

// profileBody carries the event ids of the profiles that read them from
// the body (stripe "id", slack "event_id").
func profileBody(tag string) []byte {
	return []byte(`{"id":"evt_` + tag + `","event_id":"Ev` + tag + `","type":"ping","data":{"n":1}}`)
}

// wantEventID is the event id the ingress must report for a delivery of
// profileBody(tag) signed with header event id hdrID.
func wantEventID(profile, tag, hdrID string) string {
	switch profile {
	case "stripe":
		return "evt_" + tag
	case "slack":
		return "Ev" + tag
	}
	return hdrID
}

// TestAuth_VerifiesEverySignatureProfileOverHTTP sends, for every profile,
// deliveries signed as the provider signs them through the real HTTP path:
// a good signature, a tampered body, a wrong secret, a stale timestamp, a
// missing event id, and a rotation — the previous secret valid during its
// grace period and refused after it.
func TestAuth_VerifiesEverySignatureProfileOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	for _, name := range signature.Names() {
		t.Run(name, func(t *testing.T) {
			p, _ := signature.Lookup(name)
			secret, _ := p.GenerateSecret()
			other, _ := p.GenerateSecret()
			ref := name + "-secret"
			e.secret(ref, secret, "", 0)
			w := e.webhook(name+"-hook", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: name, SecretRef: ref}}})
			timed := signature.Tolerance(p) > 0
			now := time.Now()
			send := func(body []byte, sigBody []byte, secret, eventID string, at time.Time) reply {
				return e.do(signed(e.request("POST", hookPath(w), body, "Content-Type", "application/json"), name, sigBody, secret, eventID, at))
			}

			body := profileBody(name + "-good")
			r := send(body, body, secret, "evt-good", now)
			wantAccepted(t, r, 202)
			if want := wantEventID(name, name+"-good", "evt-good"); r.Acc.EventID != want {
				t.Fatalf("eventId = %q, want %q", r.Acc.EventID, want)
			}
			d := e.stored(r.Acc.DeliveryID)
			if string(d.Body) != string(body) || d.Principal != "signature:"+name || d.Profile != name {
				t.Fatalf("stored body %q principal %q profile %q", d.Body, d.Principal, d.Profile)
			}

			tampered := profileBody(name + "-tampered")
			if r := send(append(tampered, ' '), tampered, secret, "evt-tampered", now); name == "gitlab" {
				wantAccepted(t, r, 202) // GitLab sends a shared token, not an HMAC of the body
			} else {
				wantError(t, r, 401, "signature_invalid")
			}
			wantError(t, send(tampered, tampered, other, "evt-wrong", now), 401, "signature_invalid")
			// No signature at all: the same code, and a message that says so.
			unsigned := e.post(hookPath(w), string(body), "Content-Type", "application/json")
			wantError(t, unsigned, 401, "signature_invalid")
			if !strings.HasPrefix(unsigned.Err.Message, "signature verification failed: signature missing") {
				t.Fatalf("unsigned request: %q, want it to say the signature is missing", unsigned.Err.Message)
			}

			stale := profileBody(name + "-stale")
			if r := send(stale, stale, secret, "evt-stale", now.Add(-10*time.Minute)); timed {
				wantError(t, r, 401, "timestamp_out_of_tolerance")
			} else {
				wantAccepted(t, r, 202) // nothing time-bound is signed: dedup is the replay guard
			}
			if timed {
				wantError(t, send(stale, stale, secret, "evt-future", now.Add(10*time.Minute)), 401, "timestamp_out_of_tolerance")
			}

			switch name {
			case "slack": // no event id: the signature names it, so a replay is a duplicate
				noID := []byte(`{"type":"app_rate_limited"}`)
				r := send(noID, noID, secret, "", now)
				wantAccepted(t, r, 202)
				if !strings.HasPrefix(r.Acc.EventID, "v0sig:") || r.Acc.Duplicate {
					t.Fatalf("eventId %q duplicate %v, want an id from the signature (v0sig:…), not a duplicate", r.Acc.EventID, r.Acc.Duplicate)
				}
				again := send(noID, noID, secret, "", now)
				wantAccepted(t, again, 202)
				if !again.Acc.Duplicate || again.Acc.EventID != r.Acc.EventID || again.Acc.DeliveryID != r.Acc.DeliveryID {
					t.Fatalf("the same signed request again: %+v, want a duplicate of %+v", again.Acc, r.Acc)
				}
				// Slack's URL verification: the challenge echoed, nothing stored.
				before := e.streamMsgs()
				hello := []byte(`{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
				r = send(hello, hello, secret, "", now)
				if r.Status != 200 || string(bytes.TrimSpace(r.Body)) != `{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}` {
					t.Fatalf("url_verification: %d %s", r.Status, r.Body)
				}
				if after := e.streamMsgs(); after != before {
					t.Fatalf("url_verification stored a delivery (%d → %d messages)", before, after)
				}
				wantError(t, send(hello, hello, other, "", now), 401, "signature_invalid")
			case "github":
				// GitHub's ping: verified and answered, not stored nor run.
				before := e.streamMsgs()
				zen := []byte(`{"zen":"Design for failure.","hook_id":1}`)
				ping := func(secret string) reply {
					req := signed(e.request("POST", hookPath(w), zen, "Content-Type", "application/json"), name, zen, secret, "ping-1", now)
					req.Header.Set("X-GitHub-Event", "ping")
					return e.do(req)
				}
				r := ping(secret)
				if r.Status != 200 || string(bytes.TrimSpace(r.Body)) != `{"received":true,"ping":true,"webhookId":"github-hook"}` {
					t.Fatalf("ping: %d %s", r.Status, r.Body)
				}
				if after := e.streamMsgs(); after != before {
					t.Fatalf("a ping stored a delivery (%d → %d messages)", before, after)
				}
				wantError(t, ping(other), 401, "signature_invalid")
				wantError(t, send(body, body, secret, "", now), 400, "missing_event_id")
			case "stripe":
				noID := []byte(`{"type":"ping"}`)
				wantError(t, send(noID, noID, secret, "", now), 400, "missing_event_id")
			default:
				wantError(t, send(body, body, secret, "", now), 400, "missing_event_id")
			}

			// Rotation: the new secret, and the old one while in grace.
			rotated, _ := p.GenerateSecret()
			e.secret(ref, rotated, secret, time.Hour)
			for i, s := range []string{rotated, secret} {
				b := profileBody(fmt.Sprintf("%s-rot-%d", name, i))
				wantAccepted(t, send(b, b, s, fmt.Sprintf("evt-rot-%d", i), time.Now()), 202)
			}
			e.secret(ref, rotated, secret, -time.Second) // grace over
			b := profileBody(name + "-after-grace")
			wantError(t, send(b, b, secret, "evt-after-grace", time.Now()), 401, "signature_invalid")
			wantAccepted(t, send(b, b, rotated, "evt-after-grace", time.Now()), 202)
		})
	}
}

// TestAuth_AppliesTheWebhooksTolerance: spec.auth.signature.tolerance
// narrows or widens the profile's skew check.
func TestAuth_AppliesTheWebhooksTolerance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	e.secret("s", "replace-me", "", 0)
	narrow := e.webhook("narrow", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "s", Tolerance: resource.Duration(30 * time.Second)}}})
	wide := e.webhook("wide", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "s", Tolerance: resource.Duration(time.Hour)}}})
	body := []byte(`{"a":1}`)
	minuteAgo, tenAgo := time.Now().Add(-time.Minute), time.Now().Add(-10*time.Minute)
	wantError(t, e.do(signed(e.request("POST", hookPath(narrow), body), "generic", body, "replace-me", "e1", minuteAgo)), 401, "timestamp_out_of_tolerance")
	wantAccepted(t, e.do(signed(e.request("POST", hookPath(wide), body), "generic", body, "replace-me", "e2", tenAgo)), 202)
}

// TestAuth_MisconfiguredSignatureIsJobNotRunnable: a missing or unusable
// secret and an unknown profile are the owner's faults, answered 500 with
// the detail in status.lastError, not a 401 that blames the sender.
func TestAuth_MisconfiguredSignatureIsJobNotRunnable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	e.secret("not-whsec", "plain-text-secret", "", 0)
	for _, tt := range []struct {
		hook, profile, ref, detail string
	}{
		{"no-secret", "generic", "missing-secret", "missing-secret"},
		{"bad-secret", "standard-webhooks", "not-whsec", "not usable"},
		{"bad-profile", "carrier-pigeon", "not-whsec", "unknown signature profile"},
	} {
		w := e.webhook(tt.hook, resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: tt.profile, SecretRef: tt.ref}}})
		body := []byte(`{"a":1}`)
		signAs := tt.profile
		if _, ok := signature.Lookup(signAs); !ok {
			signAs = "generic"
		}
		r := e.do(signed(e.request("POST", hookPath(w), body), signAs, body, "plain-text-secret", "e1", time.Now()))
		wantError(t, r, 500, "job_not_runnable")
		st, err := webhookstatus.Get(context.Background(), e.js, "default", tt.hook)
		if err != nil || !strings.Contains(st.LastError, tt.detail) {
			t.Fatalf("%s: lastError %q (%v), want it to mention %q", tt.hook, st.LastError, err, tt.detail)
		}
		if strings.Contains(st.LastError, "plain-text-secret") {
			t.Fatalf("lastError holds the secret: %q", st.LastError)
		}
	}
}

// TestAuth_UsesTheIdempotencyHeaderAsEventID: a webhook without a profile
// may name an idempotency header; its value is the event id (so a retry is
// a duplicate of the same run), and without it each delivery is its own.
func TestAuth_UsesTheIdempotencyHeaderAsEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("idem", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})

	first := e.post(hookPath(w), `{"n":1}`, "Idempotency-Key", "order-42")
	wantAccepted(t, first, 202)
	if first.Acc.EventID != "order-42" || first.Acc.Duplicate {
		t.Fatalf("first: eventId %q duplicate %v", first.Acc.EventID, first.Acc.Duplicate)
	}
	if want := ident.RunID(w.Metadata.UID, "order-42", ""); first.Acc.ExecutionID != want {
		t.Fatalf("executionId %q, want %q derived from webhook and event id", first.Acc.ExecutionID, want)
	}
	retry := e.post(hookPath(w), `{"n":1}`, "idempotency-key", "order-42")
	wantAccepted(t, retry, 202)
	if !retry.Acc.Duplicate || retry.Acc.ExecutionID != first.Acc.ExecutionID {
		t.Fatalf("retry: duplicate %v executionId %q, want true %q", retry.Acc.Duplicate, retry.Acc.ExecutionID, first.Acc.ExecutionID)
	}

	a, b := e.post(hookPath(w), `{"n":2}`), e.post(hookPath(w), `{"n":2}`)
	wantAccepted(t, a, 202)
	wantAccepted(t, b, 202)
	if a.Acc.EventID != a.Acc.DeliveryID || b.Acc.Duplicate || a.Acc.ExecutionID == b.Acc.ExecutionID {
		t.Fatalf("without the header: %s then %s, want two distinct runs", a.Body, b.Body)
	}
	wantError(t, e.post(hookPath(w), `{}`, "Idempotency-Key", strings.Repeat("k", 257)), 400, "missing_event_id")
}

// TestAuth_PathKeyOnlyOnPathWebhooks: /v1/hooks/{endpointId}/{key} exists
// only for webhooks whose key sits in the path; elsewhere it is 404.
func TestAuth_PathKeyOnlyOnPathWebhooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	byPath := e.webhook("by-path", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}})
	byHeader := e.webhook("by-header", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	wantAccepted(t, e.post(hookPath(byPath, key), "{}"), 202)
	wantError(t, e.post(hookPath(byPath), "{}"), 401, "missing_credentials")
	wantError(t, e.post(hookPath(byHeader, key), "{}"), 404, "endpoint_not_found")
	// A secret URL is the whole URL: with anything after it, it is another
	// (one trailing slash aside: TestTarget_TrailingSlashIsAbsent).
	open := e.webhook("open", resource.WebhookSpec{})
	wantAccepted(t, e.post(hookPath(open), "{}"), 202)
	wantError(t, e.post(hookPath(open, "anything"), "{}"), 404, "endpoint_not_found")
	wantError(t, e.post(hookPath(open, "anything")+"/", "{}"), 404, "endpoint_not_found")
}

// TestAuth_AcceptsSvixHeaders: Svix, Clerk and Resend sign Standard
// Webhooks under svix-* header names; such a delivery is accepted, and its
// signature is not stored.
func TestAuth_AcceptsSvixHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	p, _ := signature.Lookup("standard-webhooks")
	secret, _ := p.GenerateSecret()
	e.secret("svix-secret", secret, "", 0)
	w := e.webhook("clerk", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "standard-webhooks", SecretRef: "svix-secret"}}})

	body := []byte(`{"type":"user.created"}`)
	req := e.request("POST", hookPath(w), body, "Content-Type", "application/json")
	for name, vs := range p.Sign(body, secret, "msg_svix1", time.Now()) {
		req.Header["Svix-"+strings.TrimPrefix(name, "Webhook-")] = vs
	}
	sig := req.Header.Get("Svix-Signature")
	if sig == "" || req.Header.Get("Webhook-Signature") != "" {
		t.Fatalf("request headers %v, want svix-* only", req.Header)
	}
	r := e.do(req)
	wantAccepted(t, r, 202)
	if r.Acc.EventID != "msg_svix1" {
		t.Fatalf("eventId = %q, want the svix-id", r.Acc.EventID)
	}
	d := e.stored(r.Acc.DeliveryID)
	if d.Header["Svix-Signature"] != nil || strings.Contains(string(e.storedMsg(r.Acc.DeliveryID).Data), strings.TrimPrefix(sig, "v1,")) {
		t.Fatalf("stored delivery holds the signature: %v", d.Header)
	}
	if d.Header["Svix-Id"] == nil || d.Header["Svix-Timestamp"] == nil {
		t.Fatalf("svix-id and svix-timestamp not kept: %v", d.Header)
	}
}

// TestAuth_AcceptsEveryPreviousSecretUntilItsExpiry: after two quick
// rotations (v1 → v2 → v3) a sender still signing with v1 is accepted
// until v1's own grace ends, not refused at the second rotation.
func TestAuth_AcceptsEveryPreviousSecretUntilItsExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	const ref = "twice-rotated"
	key := bus.ConfigKey(resource.DefaultNamespace, ref)
	now := time.Now()
	v1Until := now.Add(3 * time.Second)
	// As the keys service stores it after the second rotation.
	seal := func(v string) []byte { return e.cfg.Box.Seal([]byte(v), []byte(key)) }
	st := resource.StoredSecret{Secret: resource.Secret{
		TypeMeta: resource.TypeMeta{APIVersion: resource.APIVersion, Kind: resource.KindSecret},
		Metadata: resource.Meta{Name: ref, Namespace: resource.DefaultNamespace},
	}, Current: seal("secret-v3")}
	st.SetPreviousValues([]resource.PreviousValue{{Value: seal("secret-v2"), ExpiresAt: now.Add(time.Hour)}, {Value: seal("secret-v1"), ExpiresAt: v1Until}})
	b, _ := json.Marshal(st)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	w := e.webhook("rotated-twice", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: ref}}})
	testenv.Eventually(t, 5*time.Second, func() error {
		if vs, _ := e.cat.SecretValues(resource.DefaultNamespace, ref, now); len(vs) != 3 {
			return errors.New("secret not loaded yet")
		}
		return nil
	})

	send := func(secret, id string) reply {
		body := []byte(`{"n":"` + id + `"}`)
		return e.do(signed(e.request("POST", hookPath(w), body), "generic", body, secret, id, time.Now()))
	}
	for _, v := range []string{"secret-v3", "secret-v2", "secret-v1"} {
		r := send(v, "evt-"+strings.TrimPrefix(v, "secret-")) // an event id holding the secret is refused
		wantAccepted(t, r, 202)
		if d := e.stored(r.Acc.DeliveryID); strings.Contains(fmt.Sprint(d.Header, d.Query), v) {
			t.Fatalf("stored delivery holds %s", v)
		}
	}
	// Past v1's expiry it is refused; v2 is still accepted.
	testenv.Eventually(t, 10*time.Second, func() error {
		if r := send("secret-v1", fmt.Sprint("evt-late-", time.Now().UnixNano())); r.Status != 401 {
			return fmt.Errorf("v1 after its expiry: %d", r.Status)
		}
		return nil
	})
	if time.Now().Before(v1Until) {
		t.Fatal("v1 refused before its expiry")
	}
	wantAccepted(t, send("secret-v2", "evt-v2-late"), 202)
}

// keyAndAWrongOne makes an API key valid everywhere, its id, and a key of
// the same id with a wrong secret.
func (e *env) keyAndAWrongOne() (key, id, wrong string) {
	key = e.apiKey(nil, nil, nil)
	id, _, _ = apikey.Parse(key)
	return key, id, apikey.Prefix + id + "_" + strings.Repeat("a", 52)
}

// A value is stripped as an API key only when it holds one's whole shape,
// as it is or percent-encoded: a header that merely mentions hk_ stays.
func TestHoldsAPIKey_OnlyTheShapeOfAKey(t *testing.T) {
	key, _, _ := apikey.New()
	for v, want := range map[string]bool{
		key:             true,
		"Bearer " + key: true,
		"/x?k=" + strings.ReplaceAll(key, "_", "%5F"): true,
		"/x?k=" + strings.ReplaceAll(key, "_", "%5f"): true,
		"hk_":                                           false,
		"hk_abc_def":                                    false,
		"hk_abc_" + strings.Repeat("a", 31):             false,
		"hk_abc_" + strings.Repeat("a", 32):             true,
		"HK_ABC_" + strings.Repeat("A", 40):             false,
		"hk__" + strings.Repeat("a", 40):                false,
		"see hk_ and " + key[len(key)-40:]:              false,
		"100%":                                          false,
		"100%&k=" + strings.ReplaceAll(key, "_", "%5F"): true,
	} {
		if got := holdsAPIKey(v); got != want {
			t.Errorf("holdsAPIKey(%q) = %v, want %v", v, got, want)
		}
	}
}

// GitHub's ping to a webhook whose job is missing is answered as any of its
// deliveries would be (500 job_not_runnable, which GitHub shows red), not
// with a pong that would show the hook as working.
func TestAuth_GitHubPingOfAWebhookWhoseJobIsMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.secret("gh-ping-secret", "s3cret-for-pings", "", 0)
	w := e.webhook("orphan-hook", resource.WebhookSpec{Job: "missing", Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "gh-ping-secret"}}})
	zen := []byte(`{"zen":"Keep it logically awesome.","hook_id":2}`)
	req := signed(e.request("POST", hookPath(w), zen, "Content-Type", "application/json"), "github", zen, "s3cret-for-pings", "ping-2", time.Now())
	req.Header.Set("X-GitHub-Event", "ping")
	wantError(t, e.do(req), 500, "job_not_runnable")
}

// An API key outside the body is checked before the body is read: a wrong
// one is answered 401 while its body has not come (a sender waiting on
// Expect: 100-continue uploads nothing), and no body is held for it. A
// right one still has its body read and stored.
func TestAuth_AKeyOutsideTheBodyIsCheckedBeforeTheBodyIsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("early", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "header", Name: "X-API-KEY"}}})
	key := e.apiKey([]string{"early"}, nil, nil)

	never, open := io.Pipe() // a body that never comes
	t.Cleanup(func() { open.Close() })
	req := e.request("POST", hookPath(w), io.Reader(never), "X-API-KEY", "hk_nope_"+strings.Repeat("x", 20), "Expect", "100-continue")
	answered := make(chan reply, 1)
	go func() { answered <- e.do(req) }()
	select {
	case r := <-answered:
		wantError(t, r, 401, "invalid_credentials")
	case <-time.After(10 * time.Second):
		t.Fatal("a wrong key was not answered before its body came")
	}
	wantAccepted(t, e.post(hookPath(w), `{"a":1}`, "X-API-KEY", key), 202)
	if got := e.storedFor(w); len(got) != 1 || string(got[0].Body) != `{"a":1}` {
		t.Fatalf("stored %d deliveries, want the keyed one with its body", len(got))
	}
}

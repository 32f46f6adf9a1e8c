package ingress

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// TestPublish_StoresNoCredentialOfAnyAuthMode sends, for every auth mode
// and placement, a delivery that also carries Authorization, Cookie and
// Proxy-Authorization headers and a Referer holding the key; then searches
// the stored message (raw, its decoded body, headers and query) and the
// ingress's logs for every credential string and signing secret.
func TestPublish_StoresNoCredentialOfAnyAuthMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	_, keySecret, _ := apikey.Parse(key)
	const (
		bearer = "bearer-token-0123456789"
		cookie = "session-cookie-0123456789"
		proxy  = "proxy-credential-0123456789"
		gitlab = "gitlab-secret-token-0123456789" // GitLab sends it whatever the profile
	)
	// A key of another webhook, sent where this one takes none: in
	// X-API-KEY, in a header of any name, and percent-encoded in a
	// proxy's header.
	other := e.apiKey(nil, nil, nil)
	_, otherSecret, _ := apikey.Parse(other)
	extra := []string{"Authorization", "Bearer " + bearer, "Cookie", "sid=" + cookie, "Proxy-Authorization", "Basic " + proxy,
		"X-Kept", "kept-value", "X-Api-Key", other, "X-Gitlab-Token", gitlab, "X-Sender-Note", "sent with " + other,
		"X-Original-Uri", "/hooks?api_key=" + strings.ReplaceAll(other, "_", "%5F")}

	type sent struct {
		req     *http.Request
		secrets []string // what must appear nowhere
		body    string   // the body that must be stored
	}
	cases := map[string]func(w *resource.Webhook) sent{}
	modes := map[string]resource.Auth{}

	modes["secret-url"] = resource.Auth{}
	cases["secret-url"] = func(w *resource.Webhook) sent {
		return sent{e.request("POST", hookPath(w)+"?kept=1", `{"a":1}`, extra...), nil, `{"a":1}`}
	}
	for _, in := range []string{"header", "query", "path", "body"} {
		mode := "key-" + in
		modes[mode] = resource.Auth{APIKey: &resource.APIKeyAuth{In: in, Name: map[string]string{"header": "X-Hook-Key", "query": "hook_key", "body": "hook_key"}[in]}}
		cases[mode] = func(w *resource.Webhook) sent {
			hs := append([]string{"Referer", "https://sender.example/hooks?k=" + key}, extra...)
			path, body := hookPath(w)+"?kept=1", `{"a":1}`
			switch in {
			case "header":
				hs = append(hs, "X-Hook-Key", key)
			case "query":
				path += "&hook_key=" + key
			case "path":
				path = hookPath(w, key) + "?kept=1"
			case "body":
				body = `{"a":1,"hook_key":"` + key + `"}`
			}
			want := `{"a":1}`
			return sent{e.request("POST", path, body, hs...), []string{key, keySecret}, want}
		}
	}
	for _, name := range signature.Names() {
		p, _ := signature.Lookup(name)
		secret, _ := p.GenerateSecret()
		e.secret("sec-"+name, secret, "", 0)
		mode := "sig-" + name
		modes[mode] = resource.Auth{Signature: &resource.SignatureAuth{Profile: name, SecretRef: "sec-" + name}}
		cases[mode] = func(w *resource.Webhook) sent {
			body := profileBody("cred-" + name)
			req := signed(e.request("POST", hookPath(w)+"?kept=1", body, extra...), name, body, secret, "evt-cred", time.Now())
			secrets := []string{secret}
			for _, h := range p.CredentialHeaders() {
				if v := req.Header.Get(h); v != "" {
					secrets = append(secrets, v)
					if _, sig, ok := strings.Cut(v, "="); ok && len(sig) > 16 {
						secrets = append(secrets, sig) // the digest without its "sha256=" / "v0=" prefix
					}
				}
			}
			if name == "standard-webhooks" {
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
				secrets = append(secrets, string(raw))
			}
			return sent{req, secrets, string(body)}
		}
	}

	for mode, auth := range modes {
		t.Run(mode, func(t *testing.T) {
			w := e.webhook(mode, resource.WebhookSpec{Auth: auth})
			s := cases[mode](w)
			r := e.do(s.req)
			wantAccepted(t, r, 202)
			raw := e.storedMsg(r.Acc.DeliveryID)
			d := e.stored(r.Acc.DeliveryID)
			if string(d.Body) != s.body {
				t.Fatalf("stored body %q, want %q", d.Body, s.body)
			}
			if d.Header["X-Kept"] == nil || d.Query["kept"] == nil {
				t.Fatalf("non-credential header or query lost: %v %v", d.Header, d.Query)
			}
			for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key", "X-Gitlab-Token", "X-Sender-Note", "X-Original-Uri"} {
				if d.Header[h] != nil {
					t.Fatalf("header %s stored", h)
				}
			}
			where := map[string]string{
				"raw message": string(raw.Data), "message headers": fmt.Sprint(raw.Header),
				"body": string(d.Body), "headers": fmt.Sprint(d.Header), "query": fmt.Sprint(d.Query),
				"logs": e.logs.String(),
			}
			for _, secret := range append(s.secrets, bearer, cookie, proxy, gitlab, other, otherSecret) {
				for place, text := range where {
					if secret != "" && strings.Contains(text, secret) {
						t.Errorf("%s holds credential %q", place, secret)
					}
				}
			}
		})
	}
}

// TestPublish_StoresNoEndpointID: the endpoint id is a secret URL's
// credential; headers a proxy or browser adds that repeat the path
// (X-Forwarded-Uri, X-Original-Url, Referer), or a query parameter holding
// it, are not stored, whatever the auth mode.
func TestPublish_StoresNoEndpointID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	e.secret("ep-secret", "endpoint-test-secret", "", 0)
	for _, tt := range []struct {
		mode string
		auth resource.Auth
		sign func(req *http.Request, body []byte) *http.Request
	}{
		{"secret-url", resource.Auth{}, func(req *http.Request, _ []byte) *http.Request { return req }},
		{"key-path", resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}, func(req *http.Request, _ []byte) *http.Request { return req }},
		{"key-header", resource.Auth{APIKey: &resource.APIKeyAuth{}}, func(req *http.Request, _ []byte) *http.Request {
			req.Header.Set("X-API-KEY", key)
			return req
		}},
		{"sig-generic", resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "ep-secret"}}, func(req *http.Request, body []byte) *http.Request {
			return signed(req, "generic", body, "endpoint-test-secret", "evt-ep", time.Now())
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			w := e.webhook("ep-"+tt.mode, resource.WebhookSpec{Auth: tt.auth})
			path := hookPath(w)
			if tt.mode == "key-path" {
				path = hookPath(w, key)
			}
			body := []byte(`{"a":1}`)
			req := tt.sign(e.request("POST", path+"?kept=1&from=https%3A%2F%2Fproxy.example"+strings.ReplaceAll(path, "/", "%2F"), body,
				"X-Forwarded-Uri", path, "X-Original-Url", path+"?kept=1", "Referer", "https://sender.example"+path,
				"X-Kept", "kept-value"), body)
			r := e.do(req)
			wantAccepted(t, r, 202)
			d := e.stored(r.Acc.DeliveryID)
			for _, h := range []string{"X-Forwarded-Uri", "X-Original-Url", "Referer"} {
				if d.Header[h] != nil {
					t.Errorf("header %s stored: %v", h, d.Header[h])
				}
			}
			if d.Query["from"] != nil {
				t.Errorf("query parameter holding the path stored: %v", d.Query)
			}
			if d.Header["X-Kept"] == nil || d.Query["kept"] == nil {
				t.Fatalf("non-credential header or query lost: %v %v", d.Header, d.Query)
			}
			if raw := e.storedMsg(r.Acc.DeliveryID); strings.Contains(string(raw.Data), w.Status.EndpointID) {
				t.Errorf("stored delivery holds the endpoint id: %s", raw.Data)
			}
		})
	}
}

// TestPublish_StoresWithWebhookAndRunAsMessageID: the message id is what
// lets JetStream's duplicate window drop fast retries: the webhook and the
// run id (the event's under this webhook's uid), not the event id alone.
func TestPublish_StoresWithWebhookAndRunAsMessageID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("msgid", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	r := e.post(hookPath(w), "{}", "Idempotency-Key", "evt-9")
	wantAccepted(t, r, 202)
	m := e.storedMsg(r.Acc.DeliveryID)
	if got := m.Header.Get(bus.HeaderMsgID); got != "default.msgid:"+r.Acc.ExecutionID || !strings.HasPrefix(r.Acc.ExecutionID, "run_") {
		t.Fatalf("Nats-Msg-Id %q", got)
	}
	if m.Header.Get(bus.HeaderSchema) != message.SchemaDelivery || m.Subject != bus.DeliverySubject("default", "msgid", r.Acc.DeliveryID) {
		t.Fatalf("stored on %s with schema %q", m.Subject, m.Header.Get(bus.HeaderSchema))
	}
}

// TestPublish_FastRetryIsDuplicateOfTheStoredDelivery: within JetStream's
// duplicate window a retry is 202 duplicate with the first run's
// executionId and the stored delivery's id, and is not stored again.
func TestPublish_FastRetryIsDuplicateOfTheStoredDelivery(t *testing.T) {
	t.Parallel()
	e, w, send := githubEvent(t, "gh-retry-1")
	first, retry := send(), send()
	wantAccepted(t, first, 202)
	wantAccepted(t, retry, 202)
	if first.Acc.Duplicate || !retry.Acc.Duplicate {
		t.Fatalf("duplicate flags %v then %v, want false then true", first.Acc.Duplicate, retry.Acc.Duplicate)
	}
	if retry.Acc.ExecutionID != first.Acc.ExecutionID || retry.Acc.DeliveryID != first.Acc.DeliveryID || retry.Acc.EventID != "gh-retry-1" {
		t.Fatalf("retry %s, want the first's executionId and deliveryId %s", retry.Body, first.Body)
	}
	if n := len(e.storedFor(w)); n != 1 {
		t.Fatalf("%d deliveries stored, want 1", n)
	}
	// Once the first run has ended, a duplicate says how it ended.
	ran := &message.Run{Kind: message.KindRun, ID: first.Acc.ExecutionID, Namespace: "default", Webhook: w.Metadata.Name, Job: "report", Status: message.StatusSucceeded}
	if err := runstatus.Publish(context.Background(), e.js, ran); err != nil {
		t.Fatal(err)
	}
	if again := send(); !again.Acc.Duplicate || again.Acc.Status != message.StatusSucceeded {
		t.Fatalf("duplicate after the first run succeeded: %s", again.Body)
	}
}

// TestPublish_DedupKeyInRedisMarksDuplicate: after JetStream's window, the
// dispatcher's claim in Redis (owned by another delivery) makes the answer
// duplicate, with the same executionId; an unclaimed event does not. The
// claim is looked for under the webhook's window, here the configured
// default (HOOKRUN_DEDUP_WINDOW), as the dispatcher claims it.
func TestPublish_DedupKeyInRedisMarksDuplicate(t *testing.T) {
	t.Parallel()
	e := newRedisEnv(t, func(c *Config) { c.DefaultWindow = 90 * time.Minute })
	testDedupClaimMarksDuplicate(t, e, dedup.NewRedis(e.redis), 90*time.Minute)
}

// TestPublish_DedupKeyInNATSKVMarksDuplicate is the same with the NATS KV
// dedup store that `hookrun dev` uses when there is no Redis.
func TestPublish_DedupKeyInNATSKVMarksDuplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketDedup)
	if err != nil {
		t.Fatal(err)
	}
	testDedupClaimMarksDuplicate(t, e, dedup.NewKV(kv), 24*time.Hour)
}

// testDedupClaimMarksDuplicate claims an event in store as the dispatcher
// would, for another delivery, then delivers that event.
func testDedupClaimMarksDuplicate(t *testing.T, e *env, store dedup.Store, def time.Duration) {
	e.job("report")
	w := e.webhook("dedup", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	eventID := fmt.Sprintf("evt-%d", time.Now().UnixNano())
	ctx := context.Background()
	if res, err := store.Claim(ctx, dedup.Key(w.Metadata.UID, eventID), "dlv_someotherdelivery", dedup.Window(w, def)); err != nil || res != dedup.Claimed {
		t.Fatalf("claim: %v %v", res, err)
	}

	r := e.post(hookPath(w), "{}", "Idempotency-Key", eventID)
	wantAccepted(t, r, 202)
	if want := ident.RunID(w.Metadata.UID, eventID, ""); !r.Acc.Duplicate || r.Acc.ExecutionID != want {
		t.Fatalf("answer %s, want duplicate with executionId %s", r.Body, want)
	}
	// Stored nonetheless (JetStream had not seen it): the dispatcher records
	// it as a duplicate; the ingress never decides that alone.
	if d := e.stored(r.Acc.DeliveryID); d.EventID != eventID {
		t.Fatalf("stored event id %q", d.EventID)
	}
	// The run id is the event's: while its last status is an earlier
	// run's (the event sent again after its window, the claiming delivery
	// not queued yet), a duplicate is "queued", not that run's end; then
	// it is the claiming delivery's run's status.
	// A run queued within the window is the event's run even without a
	// claim naming it (claims kept in another store before), as the
	// dispatcher judges (dedup.QueuedWithinWindow): by when it was queued,
	// which a backlog can put long after its delivery came.
	window := dedup.Window(w, def)
	longAgo, lately := time.Now().Add(-window-time.Hour), time.Now().Add(-window/2)
	for _, c := range []struct {
		delivery, status string
		received         time.Time
		queued           *time.Time
		want             string
	}{
		{"dlv_anearlierdelivery", message.StatusSucceeded, time.Time{}, nil, message.StatusQueued},
		{"dlv_anearlierdelivery", message.StatusSucceeded, longAgo, nil, message.StatusQueued},
		{"dlv_anearlierdelivery", message.StatusSucceeded, longAgo, &longAgo, message.StatusQueued},
		{"dlv_unclaimedrecently", message.StatusSucceeded, lately, nil, message.StatusSucceeded},
		{"dlv_queuedafterabacklog", message.StatusSucceeded, longAgo, &lately, message.StatusSucceeded},
		{"dlv_someotherdelivery", message.StatusRunning, time.Time{}, nil, message.StatusRunning},
	} {
		st := &message.Run{Kind: message.KindRun, ID: r.Acc.ExecutionID, DeliveryID: c.delivery, Namespace: "default", Webhook: w.Metadata.Name, Job: "report", Status: c.status, WebhookReceivedAt: c.received, QueuedAt: c.queued}
		if err := runstatus.Publish(ctx, e.js, st); err != nil {
			t.Fatal(err)
		}
		again := e.post(hookPath(w), "{}", "Idempotency-Key", eventID)
		if !again.Acc.Duplicate || again.Acc.Status != c.want {
			t.Fatalf("duplicate while the run id's last status is %s's %s: %s, want status %s", c.delivery, c.status, again.Body, c.want)
		}
	}
	fresh := e.post(hookPath(w), "{}", "Idempotency-Key", eventID+"-fresh")
	wantAccepted(t, fresh, 202)
	if fresh.Acc.Duplicate {
		t.Fatal("an unclaimed event answered duplicate")
	}
}

// TestPublish_NATSOutageAnswers503AndRecovers: with NATS down every
// delivery is 503 unavailable with Retry-After, answered within the publish
// timeout; none of them is stored, even once NATS is back; and the ingress
// accepts again by itself.
func TestPublish_NATSOutageAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.PublishTimeout = timeout })
	e.job("report")
	w := e.webhook("outage", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	plain := e.webhook("outage-plain", resource.WebhookSpec{})
	before := e.post(hookPath(w), "{}", "Idempotency-Key", "before")
	wantAccepted(t, before, 202)

	e.stopNATS()
	for i := range 5 {
		start := time.Now()
		r := e.post(hookPath(w), "{}", "Idempotency-Key", fmt.Sprintf("during-%d", i))
		wantError(t, r, 503, "unavailable")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		if d := time.Since(start); d > timeout+250*time.Millisecond {
			t.Fatalf("503 after %s, want within the publish timeout %s", d, timeout)
		}
		wantError(t, e.post(hookPath(plain), "{}"), 503, "unavailable")
	}
	e.requireReady() // the ingress's own readiness is its configuration; NATS is wire.go's check

	e.nats.Start()
	var after reply
	testenv.Eventually(t, 10*time.Second, func() error {
		after = e.post(hookPath(w), "{}", "Idempotency-Key", "after")
		if after.Status != 202 {
			return fmt.Errorf("still %d", after.Status)
		}
		return nil
	})
	var ids []string
	for _, d := range e.storedFor(w) {
		ids = append(ids, d.EventID)
	}
	if strings.Join(ids, ",") != "before,after" {
		t.Fatalf("stored event ids %v, want only before and after: a 503 was half-accepted", ids)
	}
	if n := len(e.storedFor(plain)); n != 0 {
		t.Fatalf("%d deliveries of 503 answers stored", n)
	}
}

// TestPublish_NoAckInTimeAnswers503: when JetStream does not ack (here the
// stream is gone, so nothing answers) the sender gets 503 within the
// publish timeout and nothing is stored.
func TestPublish_NoAckInTimeAnswers503(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.PublishTimeout = timeout })
	e.job("report")
	w := e.webhook("no-ack", resource.WebhookSpec{})
	ctx := context.Background()
	if err := e.js.DeleteStream(ctx, bus.StreamDeliveries); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := e.post(hookPath(w), "{}")
	wantError(t, r, 503, "unavailable")
	if d := time.Since(start); d > timeout+250*time.Millisecond {
		t.Fatalf("503 after %s, want within %s", d, timeout)
	}
	if err := bus.Ensure(ctx, e.js, bus.Options{}); err != nil {
		t.Fatal(err)
	}
	wantAccepted(t, e.post(hookPath(w), "{}"), 202)
	if n := len(e.storedFor(w)); n != 1 {
		t.Fatalf("%d deliveries stored, want the one accepted", n)
	}
}

// TestPublish_DuplicateOfAMessageNotHeldIsStoredAgain: JetStream can answer
// "duplicate" for a message id whose message it does not hold (in a
// cluster, the id of a write whose leader was lost before it committed;
// here, the first write deleted). The ingress must not answer 202 for an
// event nothing holds: it stores the delivery under its own message id.
func TestPublish_DuplicateOfAMessageNotHeldIsStoredAgain(t *testing.T) {
	t.Parallel()
	e, w, send := githubEvent(t, "gh-lost-1")
	first := send()
	wantAccepted(t, first, 202)
	// The first write disappears; its message id stays in the duplicate window.
	e.deleteStored(first.Acc.DeliveryID)
	retry := send()
	wantAccepted(t, retry, 202)
	if retry.Acc.Duplicate || retry.Acc.DeliveryID == first.Acc.DeliveryID {
		t.Fatalf("retry %s: a duplicate of a delivery nothing holds", retry.Body)
	}
	if got := e.stored(retry.Acc.DeliveryID); got.EventID != "gh-lost-1" || got.RunID != first.Acc.ExecutionID {
		t.Fatalf("stored again as event %q run %q, want gh-lost-1 and %s", got.EventID, got.RunID, first.Acc.ExecutionID)
	}
	// While the lost id stays in the window, each retry is stored under its
	// own id, all of one run: the dispatcher's claim on the event id runs
	// it once.
	again := send()
	wantAccepted(t, again, 202)
	if again.Acc.ExecutionID != first.Acc.ExecutionID {
		t.Fatalf("third send's run %s, want %s", again.Acc.ExecutionID, first.Acc.ExecutionID)
	}
	for _, d := range e.storedFor(w) {
		if d.RunID != first.Acc.ExecutionID {
			t.Fatalf("stored delivery %s of run %s, want %s", d.ID, d.RunID, first.Acc.ExecutionID)
		}
	}
}

// deleteStored deletes the stored message of delivery id from DELIVERIES
// (its message id stays in the duplicate window, as a write lost with its
// leader's does).
func (e *env) deleteStored(id string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := e.deliveries(ctx)
	if err := s.DeleteMsg(ctx, e.storedMsg(id).Sequence); err != nil {
		e.t.Fatal(err)
	}
}

// githubEvent starts an ingress (mods adjust its configuration) with a
// GitHub-signed webhook and returns a sender of one event (the same
// delivery id every time, like a retry).
func githubEvent(t *testing.T, eventID string, mods ...func(*Config)) (*env, *resource.Webhook, func() reply) {
	e := newEnv(t, mods...)
	e.job("report")
	e.secret("gh", "replace-me", "", 0)
	w := e.webhook("gh", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "gh"}}})
	body := []byte(`{"ref":"refs/heads/main"}`)
	return e, w, func() reply {
		return e.do(signed(e.request("POST", hookPath(w), body), "github", body, "replace-me", eventID, time.Now()))
	}
}

// A sender that hangs up on a duplicate (its request's context ends) does
// not make the ingress take the duplicate for unconfirmed and store it a
// second time: what follows the publish runs to its end.
func TestPublish_DuplicateWhoseSenderHungUpIsNotStoredAgain(t *testing.T) {
	t.Parallel()
	e, w, send := githubEvent(t, "gh-hangup-1")
	wantAccepted(t, send(), 202)
	body := []byte(`{"ref":"refs/heads/main"}`)
	req := signed(e.request("POST", hookPath(w), body), "github", body, "replace-me", "gh-hangup-1", time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // gone before the answer
	rec := httptest.NewRecorder()
	e.in.Handler().ServeHTTP(rec, req.WithContext(ctx))
	if n := len(e.storedFor(w)); n != 1 {
		t.Fatalf("%d deliveries stored, want 1 (answer %d %s)", n, rec.Code, rec.Body)
	}
}

// A webhook deleted and created again under its name is another webhook:
// its first delivery of an event the old one took moments ago is stored
// and runs under its own run id (before, JetStream's duplicate window,
// keyed by name and event id, answered it as the old delivery's duplicate
// and nothing ran).
func TestPublish_RecreatedWebhookIsNotTheOldOnesDuplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	old := e.webhook("again", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	first := e.post(hookPath(old), `{"n":1}`, "Idempotency-Key", "evt-1")
	wantAccepted(t, first, 202)
	nw := e.webhook("again", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	if nw.Metadata.UID == old.Metadata.UID {
		t.Fatal("the webhook made again kept its uid")
	}
	r := e.post(hookPath(nw), `{"n":1}`, "Idempotency-Key", "evt-1")
	wantAccepted(t, r, 202)
	if r.Acc.Duplicate || r.Acc.DeliveryID == first.Acc.DeliveryID || r.Acc.ExecutionID == first.Acc.ExecutionID {
		t.Fatalf("first delivery to the webhook made again: %s (the old one's: %s)", r.Body, first.Body)
	}
	if m := e.storedMsg(r.Acc.DeliveryID); m == nil {
		t.Fatal("not stored")
	}
	// The new webhook's own retry is still a duplicate.
	if again := e.post(hookPath(nw), `{"n":1}`, "Idempotency-Key", "evt-1"); !again.Acc.Duplicate || again.Acc.DeliveryID != r.Acc.DeliveryID {
		t.Fatalf("retry to the webhook made again: %s", again.Body)
	}
}

// The read that confirms a duplicate fetches its original whole: a large
// one is given time for its size (a 4 MiB body timed out at a flat 250 ms,
// was stored again and counted as unconfirmed), within the publish timeout.
func TestConfirmWithin_GrowsWithTheMessage(t *testing.T) {
	if got := confirmWithin(2048, 5*time.Second); got > 300*time.Millisecond {
		t.Errorf("a small message's read may take %v", got)
	}
	if got := confirmWithin(6<<20, 5*time.Second); got < 900*time.Millisecond {
		t.Errorf("a 6 MiB message's read may take only %v", got)
	}
	if got := confirmWithin(64<<20, 2*time.Second); got != 2*time.Second {
		t.Errorf("the read may take %v, over the publish timeout", got)
	}
}

// A credential sent as a query parameter's name (a key or the endpoint id
// put in the URL bare, ?hk_…) is not stored either: it is a name with an
// empty value.
func TestPublish_StoresNoCredentialSentAsAParameterName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	w := e.webhook("bare-params", resource.WebhookSpec{})
	ep := strings.TrimPrefix(hookPath(w), "/v1/hooks/")
	r := e.post(hookPath(w)+"?"+key+"&"+ep+"&kept=1", `{}`)
	wantAccepted(t, r, 202)
	d := e.stored(r.Acc.DeliveryID)
	if len(d.Query) != 1 || d.Query["kept"] == nil {
		t.Fatalf("stored query %v, want only kept", d.Query)
	}
	raw := e.storedMsg(r.Acc.DeliveryID)
	for _, secret := range []string{key, ep} {
		if strings.Contains(string(raw.Data), secret) {
			t.Fatalf("the stored delivery holds %q", secret)
		}
	}
}

// A publish whose ack does not come in time (lost with the connection to
// the stream's leader, or late) may be of a write that landed: the
// delivery is published once more under the same message id, and the
// "duplicate" that names its own write is answered 202, as this delivery
// accepted (not a duplicate), stored once. Without the second publish the
// sender got 503 for a stored delivery, and its retry (of a webhook with
// no event id) ran the job a second time.
func TestPublish_AnAckLostAfterTheWriteIsAnsweredAccepted(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	e := newEnv(t, func(c *Config) {
		c.publishWithin = func(nc *nats.Conn, m *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
			ack, err := bus.PublishWithin(nc, m, timeout)
			if calls.Add(1) == 1 && err == nil {
				return nil, nats.ErrTimeout // stored, its ack lost
			}
			return ack, err
		}
	})
	e.job("report")
	w := e.webhook("lost-ack", resource.WebhookSpec{})
	retries := testutil.ToFloat64(mPublishRetries)
	r := e.post(hookPath(w), "{}")
	wantAccepted(t, r, 202)
	if testutil.ToFloat64(mPublishRetries) <= retries {
		t.Fatal("hookrun_ingress_publish_retries_total did not count the second publish")
	}
	if r.Acc.Duplicate || calls.Load() != 2 {
		t.Fatalf("answer %s after %d publishes: want this delivery accepted, not a duplicate, after 2", r.Body, calls.Load())
	}
	stored := e.storedFor(w)
	if len(stored) != 1 || stored[0].ID != r.Acc.DeliveryID {
		t.Fatalf("%d deliveries stored, want the one answered (%s)", len(stored), r.Acc.DeliveryID)
	}
}

// A delivery stored again under its own message id (its event's id
// answered as a duplicate of a write the stream does not hold) is
// published once: its ack lost, the answer is 503, not a second publish
// answered "duplicate" of its own write and a 202 calling it a duplicate;
// so a delivery's handling stays within handleWithin.
func TestPublish_ADeliveryStoredAgainUnderItsOwnIDIsPublishedOnce(t *testing.T) {
	t.Parallel()
	var ownID atomic.Int32
	e, _, send := githubEvent(t, "gh-own-1", func(c *Config) {
		c.publishWithin = func(nc *nats.Conn, m *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
			ack, err := bus.PublishWithin(nc, m, timeout)
			if strings.Contains(m.Header.Get(bus.HeaderMsgID), "#") {
				ownID.Add(1)
				if err == nil {
					return nil, nats.ErrTimeout // stored, its ack lost
				}
			}
			return ack, err
		}
	})
	first := send()
	wantAccepted(t, first, 202)
	e.deleteStored(first.Acc.DeliveryID)
	wantError(t, send(), 503, "unavailable")
	if n := ownID.Load(); n != 1 {
		t.Fatalf("the delivery was published %d times under its own id, want once", n)
	}
}

// A publish that failed is timed as well as one that was acked: in a
// JetStream stall the failures are what the publish histogram must show.
// Not parallel: no other test's publishes are counted beside these.
func TestPublish_FailedPublishesAreTimed(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(c *Config) {
		c.publishWithin = func(nc *nats.Conn, m *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
			calls.Add(1)
			return nil, nats.ErrTimeout // never acked
		}
	})
	e.job("report")
	w := e.webhook("never-acked", resource.WebhookSpec{})
	timed := publishesTimed(t)
	wantError(t, e.post(hookPath(w), "{}"), 503, "unavailable")
	if n := publishesTimed(t) - timed; n != 2 || calls.Load() != 2 {
		t.Fatalf("hookrun_ingress_publish_duration_seconds timed %d of %d failed publishes, want both", n, calls.Load())
	}
}

// While publishes fail alike (JetStream away), the ingress logs one line
// per webhook and kind every refusalLogEvery, with the count suppressed,
// not one per delivery.
func TestPublish_FailuresAreLoggedAFewAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.publishWithin = func(nc *nats.Conn, m *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
			return nil, nats.ErrTimeout
		}
	})
	e.job("report")
	w := e.webhook("failing", resource.WebhookSpec{})
	for range 4 {
		wantError(t, e.post(hookPath(w), "{}"), 503, "unavailable")
	}
	count := func(msg string) int { return strings.Count(e.logs.String(), `"msg":"`+msg) }
	if n := count("publish failed: answering 503"); n != 1 {
		t.Fatalf("%d 'publish failed' lines for 4 deliveries, want 1", n)
	}
	if n := count("no ack in time"); n != 1 {
		t.Fatalf("%d 'no ack in time' lines for 4 deliveries, want 1", n)
	}
}

// publishesTimed is hookrun_ingress_publish_duration_seconds' count.
func publishesTimed(t *testing.T) uint64 {
	t.Helper()
	var m dto.Metric
	if err := mPublishSeconds.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

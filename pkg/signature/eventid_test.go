package signature

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEventIDSource_NamesWhereEachProfileReadsTheEventID: every registered
// profile says where its event id comes from, and a header it names is the
// one Verify reads (the event id Sign puts there is the one Verify returns).
func TestEventIDSource_NamesWhereEachProfileReadsTheEventID(t *testing.T) {
	want := map[string]string{
		"generic":           "X-Event-Id",
		"github":            "X-GitHub-Delivery",
		"gitlab":            "Idempotency-Key",
		"shopify":           "X-Shopify-Webhook-Id",
		"standard-webhooks": "webhook-id",
		"stripe":            `"id" field in the JSON body`,
		"slack":             `"event_id" field in the JSON body`,
	}
	for _, name := range Names() {
		p, _ := Lookup(name)
		src := EventIDSource(p)
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: no expectation for this profile", name)
			continue
		}
		if !strings.Contains(src, w) {
			t.Errorf("%s: EventIDSource = %q, want it to name %s", name, src, w)
		}
		if name == "stripe" || name == "slack" {
			continue // read from the body
		}
		f := fixtures[name]
		h := p.Sign(f.body, "some-secret-value", "evt-x", now)
		if got := h.Get(w); got != "evt-x" {
			t.Errorf("%s: Sign put %q in %s, want the event id there", name, got, w)
		}
	}
	if got := EventIDSource(WithTolerance(Profile(generic{}), 1)); got != "the X-Event-Id header" {
		t.Errorf("a profile with its tolerance changed: EventIDSource = %q", got)
	}
}

// GitLab keeps Idempotency-Key across its retries and a user's resends,
// while X-Gitlab-Event-UUID is new on each: the first is the event id
// where it comes (before, a resent event ran again), the second where it
// does not (GitLab before 17.4).
func TestGitLab_EventIDIsTheIdempotencyKeyWhereSent(t *testing.T) {
	p, _ := Lookup("gitlab")
	for _, tc := range []struct {
		header http.Header
		want   string
	}{
		{http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"uuid-attempt-2"}, "Idempotency-Key": {"idem-1"}}, "idem-1"},
		// sha256("{}")[:8]
		{http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"uuid-1"}}, "uuid-1:44136fa355b3678a"},
		{http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"uuid-1"}, "Idempotency-Key": {""}}, "uuid-1:44136fa355b3678a"},
	} {
		id, err := p.Verify(Request{Header: tc.header, Body: []byte(`{}`)}, []string{"tok-123456"}, now)
		if err != nil || id != tc.want {
			t.Errorf("%v: event id %q (%v), want %q", tc.header, id, err, tc.want)
		}
	}
	if _, err := p.Verify(Request{Header: http.Header{"X-Gitlab-Token": {"tok-123456"}}, Body: []byte(`{}`)}, []string{"tok-123456"}, now); !errors.Is(err, ErrMissingEventID) {
		t.Errorf("neither header: %v, want ErrMissingEventID", err)
	}
	// Neither header is taken before the token is checked.
	if _, err := p.Verify(Request{Header: http.Header{"X-Gitlab-Token": {"wrong"}, "Idempotency-Key": {"idem-1"}}, Body: []byte(`{}`)}, []string{"tok-123456"}, now); !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("a wrong token with an Idempotency-Key: %v, want ErrSignatureInvalid", err)
	}
}

// A Slack delivery without an event_id (a slash command, an interactivity
// payload) gets its event id from its signature: a captured request
// replayed within the tolerance is then a duplicate rather than a new run,
// while two real requests, with their own timestamp and trigger_id, are
// two events. Events API deliveries keep their event_id across retries.
func TestSlack_EventIDWithoutEventIDFieldComesFromTheSignature(t *testing.T) {
	p, _ := Lookup("slack")
	const secret = "s3cret-slack-signing"
	verify := func(t *testing.T, h http.Header, body string) string {
		t.Helper()
		id, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, now)
		if err != nil {
			t.Fatalf("Verify(%q): %v", body, err)
		}
		return id
	}
	sign := func(body string, at time.Time) http.Header { return p.Sign([]byte(body), secret, "", at) }

	for _, tc := range []struct{ name, body string }{
		{"slash command", "command=/deploy&trigger_id=1"},
		{"interactivity", "payload=%7B%22type%22%3A%22block_actions%22%2C%22trigger_id%22%3A%221%22%7D"},
		{"JSON without event_id", `{"type":"app_rate_limited"}`},
	} {
		body := tc.body
		t.Run(tc.name, func(t *testing.T) {
			h := sign(body, now)
			id := verify(t, h, body)
			if id == "" || len(id) > 256 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				t.Fatalf("event id %q, want a non-empty printable ASCII id of at most 256 bytes", id)
			}
			if again := verify(t, h.Clone(), body); again != id {
				t.Fatalf("the same request replayed: event id %q, then %q", id, again)
			}
			sig := strings.TrimPrefix(h.Get("X-Slack-Signature"), "v0=")
			if strings.Contains(id, sig[:16]) {
				t.Fatalf("event id %q holds the signature %s, a credential", id, sig)
			}
			upper := h.Clone()
			upper.Set("X-Slack-Signature", "v0="+strings.ToUpper(sig))
			if got := verify(t, upper, body); got != id {
				t.Fatalf("the replay with its signature in upper case: event id %q, want %q", got, id)
			}
			if other := verify(t, sign(body+"&x=2", now), body+"&x=2"); other == id {
				t.Fatalf("a different body has the same event id %q", id)
			}
			if later := verify(t, sign(body, now.Add(time.Second)), body); later == id {
				t.Fatalf("the same body sent a second later has the same event id %q", id)
			}
		})
	}

	events := `{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}`
	for _, at := range []time.Time{now, now.Add(time.Minute)} { // Slack's retries sign anew
		if id := verify(t, sign(events, at), events); id != "Ev08MFMKH6" {
			t.Fatalf("Events API delivery signed at %v: event id %q, want its event_id", at, id)
		}
	}
}

// GitLab sends the hooks it makes while handling one request under one
// X-Gitlab-Event-UUID ("recursive webhooks have the same value"): without
// an Idempotency-Key, two such hooks of other content are two events, and
// the same delivery sent again is one.
func TestGitLab_RecursiveHooksSharingAUUIDAreTwoEvents(t *testing.T) {
	p, _ := Lookup("gitlab")
	id := func(body string) string {
		h := http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"0e1b6d3c-2b6a-4f1e-9b8a-1c2d3e4f5a6b"}}
		id, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{"tok-123456"}, now)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	push, note := id(`{"object_kind":"push"}`), id(`{"object_kind":"note"}`)
	if push == note {
		t.Fatalf("a push and a note under one UUID have one event id %q", push)
	}
	if again := id(`{"object_kind":"push"}`); again != push || !strings.HasPrefix(push, "0e1b6d3c-2b6a-4f1e-9b8a-1c2d3e4f5a6b:") {
		t.Fatalf("the same delivery again: %q then %q", push, again)
	}
}

// Shopify names X-Shopify-Event-Id for recognising duplicates: two
// deliveries of one event (and topic) under two X-Shopify-Webhook-Id are
// one event; X-Shopify-Webhook-Id is the id where no Event-Id comes, and a
// webhook's own idempotency header replaces both.
func TestShopify_EventIDIsTheEventsWithItsTopic(t *testing.T) {
	p, _ := Lookup("shopify")
	body := []byte(`{"id":820982911946154508}`)
	verify := func(p Profile, h http.Header) string {
		for k, v := range p.Sign(body, "shpss_secret", "", now) {
			h[k] = v
		}
		id, err := p.Verify(Request{Header: h, Body: body}, []string{"shpss_secret"}, now)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		return id
	}
	first := verify(p, http.Header{"X-Shopify-Webhook-Id": {"wh-1"}, "X-Shopify-Event-Id": {"ev-1"}, "X-Shopify-Topic": {"orders/create"}})
	second := verify(p, http.Header{"X-Shopify-Webhook-Id": {"wh-2"}, "X-Shopify-Event-Id": {"ev-1"}, "X-Shopify-Topic": {"orders/create"}})
	if first != second || first != "ev-1:orders/create" {
		t.Fatalf("one event under two webhook ids: %q and %q, want ev-1:orders/create", first, second)
	}
	if other := verify(p, http.Header{"X-Shopify-Webhook-Id": {"wh-3"}, "X-Shopify-Event-Id": {"ev-1"}, "X-Shopify-Topic": {"orders/paid"}}); other == first {
		t.Fatalf("one event's deliveries to two topics have one id %q", other)
	}
	if old := verify(p, http.Header{"X-Shopify-Webhook-Id": {"wh-4"}}); old != "wh-4" {
		t.Fatalf("without X-Shopify-Event-Id: %q, want the webhook id", old)
	}
	named, _ := WithEventIDHeader(p, "X-Request-Id")
	if got := verify(named, http.Header{"X-Request-Id": {"req-1"}, "X-Shopify-Event-Id": {"ev-1"}}); got != "req-1" {
		t.Fatalf("a webhook's own idempotency header: %q, want req-1", got)
	}
}

// Shopify's Events deliveries name their headers without the X- prefix:
// Shopify-Hmac-Sha256 is verified as X-Shopify-Hmac-Sha256 is, and the
// delivery is named by Shopify-Webhook-Id, which Shopify names for
// recognising an Events delivery's duplicates.
func TestShopify_EventsDeliveriesWithoutThePrefix(t *testing.T) {
	p, _ := Lookup("shopify")
	body := []byte(`{"topic":"Product","action":"update","handle":"products"}`)
	sig := p.Sign(body, "shpss_secret", "", now).Get("X-Shopify-Hmac-Sha256")
	h := http.Header{"Shopify-Hmac-Sha256": {sig}, "Shopify-Webhook-Id": {"wh-events-1"}, "Shopify-Topic": {"products/update"}}
	id, err := p.Verify(Request{Header: h, Body: body}, []string{"shpss_secret"}, now)
	if err != nil || id != "wh-events-1" {
		t.Fatalf("an Events delivery: id %q, err %v; want wh-events-1", id, err)
	}
	h.Set("Shopify-Hmac-Sha256", p.Sign([]byte("other"), "shpss_secret", "", now).Get("X-Shopify-Hmac-Sha256"))
	if _, err := p.Verify(Request{Header: h, Body: body}, []string{"shpss_secret"}, now); !errors.Is(err, ErrSignatureInvalid) {
		t.Fatalf("an Events delivery with another body's signature: %v, want %v", err, ErrSignatureInvalid)
	}
	h = http.Header{"Shopify-Hmac-Sha256": {sig}}
	if _, err := p.Verify(Request{Header: h, Body: body}, []string{"shpss_secret"}, now); !errors.Is(err, ErrMissingEventID) {
		t.Fatalf("an Events delivery without Shopify-Webhook-Id: %v, want %v", err, ErrMissingEventID)
	}
	if !slices.Contains(p.CredentialHeaders(), "Shopify-Hmac-Sha256") {
		t.Fatalf("Shopify-Hmac-Sha256 is not among the credential headers (scrubbed from stored deliveries): %v", p.CredentialHeaders())
	}
}

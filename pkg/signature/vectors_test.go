package signature

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// Known-answer tests. Published vectors come from the providers' documents;
// where a provider publishes none, the expected value was computed outside
// Go with openssl while writing the test (the command is in the comment).

func TestGitHub_AcceptsPublishedVector(t *testing.T) {
	// docs.github.com, "Validating webhook deliveries".
	const (
		secret = "It's a Secret to Everybody"
		body   = "Hello, World!"
		want   = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	p, _ := Lookup("github")
	h := http.Header{}
	h.Set("X-Hub-Signature-256", want)
	h.Set("X-GitHub-Delivery", "gh-evt-001")
	id, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, now)
	if err != nil || id != "gh-evt-001" {
		t.Fatalf("Verify = (%q, %v), want (gh-evt-001, nil)", id, err)
	}
	if got := p.Sign([]byte(body), secret, "gh-evt-001", now).Get("X-Hub-Signature-256"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestStandardWebhooks_AcceptsPublishedVector(t *testing.T) {
	// The Standard Webhooks specification's example.
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		msgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	at := time.Unix(1614265330, 0)
	p, _ := Lookup("standard-webhooks")
	h := http.Header{}
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", want)
	id, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, at)
	if err != nil || id != msgID {
		t.Fatalf("Verify = (%q, %v), want (%s, nil)", id, err, msgID)
	}
	if got := p.Sign([]byte(body), secret, msgID, at).Get("webhook-signature"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if _, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, at.Add(6*time.Minute)); err == nil {
		t.Fatal("Verify six minutes later accepted the vector")
	}
}

// TestStandardWebhooks_ReadsSvixHeaders: Svix (and Clerk, Resend) send the
// same scheme as svix-id, svix-timestamp and svix-signature; they are read
// when there is no webhook-signature, and never mixed with webhook-* ones.
func TestStandardWebhooks_ReadsSvixHeaders(t *testing.T) {
	// The same example, as Svix's documentation gives it.
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		msgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		body   = `{"test": 2432232314}`
		sig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	at := time.Unix(1614265330, 0)
	p, _ := Lookup("standard-webhooks")
	svix := func() http.Header {
		h := http.Header{}
		h.Set("svix-id", msgID)
		h.Set("svix-timestamp", "1614265330")
		h.Set("svix-signature", sig)
		return h
	}
	verify := func(h http.Header) (string, error) {
		return p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, at)
	}
	if id, err := verify(svix()); err != nil || id != msgID {
		t.Fatalf("Verify with svix-* headers = (%q, %v), want (%s, nil)", id, err, msgID)
	}
	h := svix()
	h.Set("svix-id", "msg_other")
	if _, err := verify(h); !errors.Is(err, ErrSignatureInvalid) {
		t.Fatalf("Verify with a swapped svix-id = %v, want ErrSignatureInvalid", err)
	}
	// Stray webhook-* headers beside Svix's three (a proxy's) do not hide
	// them, as in Svix's own library; they are not mixed in either.
	h = svix()
	h.Set("webhook-id", "msg_stray")
	h.Set("webhook-timestamp", "1")
	if id, err := verify(h); err != nil || id != msgID {
		t.Fatalf("Verify with svix-* and stray webhook-id, webhook-timestamp = (%q, %v), want (%s, nil)", id, err, msgID)
	}
	// A webhook-signature picks the webhook-* names: the svix-* ones are
	// not read for what it lacks.
	h = svix()
	h.Set("webhook-signature", sig)
	if _, err := verify(h); !errors.Is(err, ErrSignatureMissing) {
		t.Fatalf("Verify with svix-* and a webhook-signature = %v, want ErrSignatureMissing (names not mixed)", err)
	}
	if !slices.Contains(p.CredentialHeaders(), "Svix-Signature") {
		t.Fatalf("CredentialHeaders %v lack Svix-Signature", p.CredentialHeaders())
	}
}

func TestSlack_AcceptsPublishedVector(t *testing.T) {
	// docs.slack.dev, "Verifying requests from Slack", worked example (a
	// slash command, so the body has no event_id and the event id comes
	// from the signature: "v0sig:" and SHA-256 of its bytes, cut to 16).
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		ts     = "1531420618"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	at := time.Unix(1531420618, 0)
	p, _ := Lookup("slack")
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", want)
	id, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, at.Add(time.Minute))
	if wantID := "v0sig:fae3ee0e1a65c4f8da96c50461e3c2af"; err != nil || id != wantID {
		t.Fatalf("Verify = (%q, %v), want (%q, nil)", id, err, wantID)
	}
	if got := p.Sign([]byte(body), secret, "", at).Get("X-Slack-Signature"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestStripe_AcceptsIndependentVector(t *testing.T) {
	// Stripe publishes no vector. Computed with OpenSSL 3.0:
	//   printf '%s' '1700000000.{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"payment_intent.succeeded"}' \
	//     | openssl dgst -sha256 -hmac 'whsec_test_7c02454e546498db'
	const (
		secret = "whsec_test_7c02454e546498db"
		body   = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"payment_intent.succeeded"}`
		sig    = "41a7ab8e70ac839dfbd990253716276de19ce8433e7a8539da59223f6c68c149"
	)
	at := time.Unix(1700000000, 0)
	p, _ := Lookup("stripe")
	h := http.Header{}
	// A v0 entry and a v1 from another secret come first, as during a
	// Stripe-side secret roll.
	h.Set("Stripe-Signature", "t=1700000000,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39,v1="+
		"0000000000000000000000000000000000000000000000000000000000000000,v1="+sig)
	id, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, at.Add(2*time.Minute))
	if err != nil || id != "evt_1NG8Du2eZvKYlo2CUI79vXWy" {
		t.Fatalf("Verify = (%q, %v), want (evt_1NG8Du2eZvKYlo2CUI79vXWy, nil)", id, err)
	}
	if got, want := p.Sign([]byte(body), secret, "", at).Get("Stripe-Signature"), "t=1700000000,v1="+sig; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestShopify_AcceptsIndependentVector(t *testing.T) {
	// Shopify publishes no vector. Computed with OpenSSL 3.0:
	//   printf '%s' '{"id":820982911946154508,"email":"jon@example.com"}' \
	//     | openssl dgst -sha256 -hmac 'shpss_7c02454e546498db' -binary | base64
	const (
		secret = "shpss_7c02454e546498db"
		body   = `{"id":820982911946154508,"email":"jon@example.com"}`
		want   = "6WU3lsd69LwVRapioQfo7ZwbeqW1sWY4INKkMgx/GL0="
	)
	p, _ := Lookup("shopify")
	h := http.Header{}
	h.Set("X-Shopify-Hmac-Sha256", want)
	h.Set("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
	if _, err := p.Verify(Request{Header: h, Body: []byte(body)}, []string{secret}, now); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := p.Sign([]byte(body), secret, "x", now).Get("X-Shopify-Hmac-Sha256"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

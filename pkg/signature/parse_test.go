package signature

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Profile-specific header handling: malformed values must be rejected as
// invalid, never accepted and never panic.

func TestGeneric_RejectsMalformedHeaders(t *testing.T) {
	p, _ := Lookup("generic")
	const secret = "replace-me"
	body := []byte(`{"a":1}`)
	good := p.Sign(body, secret, "evt-1", now)
	sig := good.Get("X-Signature")
	ts := good.Get("X-Timestamp")
	tests := []struct {
		name      string
		signature string
		timestamp string
		want      error
	}{
		{"good", sig, ts, nil},
		{"uppercase hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256=")), ts, nil},
		{"no prefix", strings.TrimPrefix(sig, "sha256="), ts, ErrSignatureInvalid},
		{"sha1 prefix", "sha1=" + strings.TrimPrefix(sig, "sha256="), ts, ErrSignatureInvalid},
		{"short hex", sig[:len(sig)-2], ts, ErrSignatureInvalid},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), ts, ErrSignatureInvalid},
		{"prefix only", "sha256=", ts, ErrSignatureInvalid},
		{"signed timestamp with plus", sig, "+" + ts, ErrSignatureInvalid},
		{"timestamp with fraction", sig, ts + ".0", ErrSignatureInvalid},
		{"negative timestamp", sig, "-" + ts, ErrSignatureInvalid},
		{"timestamp overflow", sig, strings.Repeat("9", 30), ErrSignatureInvalid},
		{"timestamp in millis", sig, ts + "000", ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Signature", tt.signature)
			h.Set("X-Timestamp", tt.timestamp)
			h.Set("X-Event-Id", "evt-1")
			_, err := p.Verify(Request{Header: h, Body: body}, []string{secret}, now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStripe_ParsesSignatureHeader(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"id":"evt_1","object":"event"}`)
	p, _ := Lookup("stripe")
	ts := "1750000000"
	v1 := hex.EncodeToString(sumSHA256([]byte(secret), []byte(ts), dot, body))
	other := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"single v1", "t=" + ts + ",v1=" + v1, nil},
		{"v1 among others", "t=" + ts + ",v1=" + other + ",v1=" + v1 + ",v0=" + other, nil},
		{"spaces around items", "t=" + ts + ", v1=" + v1, nil},
		{"v1 before t", "v1=" + v1 + ",t=" + ts, nil},
		{"unknown keys ignored", "t=" + ts + ",foo=bar,junk,v1=" + v1, nil},
		{"only v0", "t=" + ts + ",v0=" + v1, ErrSignatureInvalid},
		{"no timestamp", "v1=" + v1, ErrSignatureInvalid},
		{"two timestamps", "t=" + ts + ",t=1,v1=" + v1, ErrSignatureInvalid},
		{"malformed timestamp", "t=abc,v1=" + v1, ErrSignatureInvalid},
		{"empty timestamp", "t=,v1=" + v1, ErrSignatureInvalid},
		{"short v1", "t=" + ts + ",v1=" + v1[:10], ErrSignatureInvalid},
		{"garbage", ",,,===,", ErrSignatureInvalid},
		{"wrong v1", "t=" + ts + ",v1=" + other, ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("Stripe-Signature", tt.header)
			_, err := p.Verify(Request{Header: h, Body: body}, []string{secret}, time.Unix(1750000000, 0))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStripe_TakesEventIDOnlyFromTopLevelStringID(t *testing.T) {
	tests := []struct {
		body   string
		wantID string // "" means ErrMissingEventID
	}{
		{`{"id":"evt_1"}`, "evt_1"},
		{`{"data":{"object":{"id":"pi_1"}},"id":"evt_2"}`, "evt_2"},
		{`{"data":{"id":"pi_1"}}`, ""},
		{`{"ID":"evt_1"}`, ""},
		{`{"id":42}`, ""},
		{`{"id":""}`, ""},
		{`{"id":null}`, ""},
		{`["evt_1"]`, ""},
		{`"evt_1"`, ""},
		{`not json`, ""},
		{``, ""},
	}
	p, _ := Lookup("stripe")
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			req := Request{Header: p.Sign([]byte(tt.body), "whsec_x", "", now), Body: []byte(tt.body)}
			id, err := p.Verify(req, []string{"whsec_x"}, now)
			if tt.wantID == "" {
				if !errors.Is(err, ErrMissingEventID) {
					t.Fatalf("Verify = (%q, %v), want ErrMissingEventID", id, err)
				}
				return
			}
			if err != nil || id != tt.wantID {
				t.Fatalf("Verify = (%q, %v), want %q", id, err, tt.wantID)
			}
		})
	}
}

func TestSlack_RejectsMalformedSignature(t *testing.T) {
	p, _ := Lookup("slack")
	body := []byte(`{"event_id":"Ev1"}`)
	good := p.Sign(body, "s3cret", "", now)
	sig := good.Get("X-Slack-Signature")
	for _, bad := range []string{
		strings.TrimPrefix(sig, "v0="),
		"v1=" + strings.TrimPrefix(sig, "v0="),
		"v0=" + strings.Repeat("0", 64),
		"v0=",
		sig + "00",
	} {
		h := good.Clone()
		h.Set("X-Slack-Signature", bad)
		if _, err := p.Verify(Request{Header: h, Body: body}, []string{"s3cret"}, now); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("Verify with X-Slack-Signature %q = %v, want ErrSignatureInvalid", bad, err)
		}
	}
}

func TestStandardWebhooks_ParsesSignatureList(t *testing.T) {
	p, _ := Lookup("standard-webhooks")
	secret, _ := p.GenerateSecret()
	body := []byte(`{"a":1}`)
	good := p.Sign(body, secret, "msg_1", now)
	sig := good.Get("Webhook-Signature")
	other := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"single", sig, nil},
		{"second of two", other + " " + sig, nil},
		{"extra spaces", "  " + other + "   " + sig + " ", nil},
		{"asymmetric entry ignored", "v1a,abcd " + sig, nil},
		{"only other version", "v2," + strings.TrimPrefix(sig, "v1,"), ErrSignatureInvalid},
		{"comma separated list", other + "," + sig, ErrSignatureInvalid},
		{"not base64", "v1,!!!!", ErrSignatureInvalid},
		{"no comma", "v1", ErrSignatureInvalid},
		{"wrong signature", other, ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good.Clone()
			h.Set("Webhook-Signature", tt.header)
			_, err := p.Verify(Request{Header: h, Body: body}, []string{secret}, now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStandardWebhooks_AcceptsSecretWithoutPrefix(t *testing.T) {
	p, _ := Lookup("standard-webhooks")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{}`)
	req := Request{Header: p.Sign(body, secret, "msg_1", now), Body: body}
	if _, err := p.Verify(req, []string{strings.TrimPrefix(secret, "whsec_")}, now); err != nil {
		t.Fatalf("Verify with the bare base64 key: %v", err)
	}
}

func TestStandardWebhooks_SignsTheEventID(t *testing.T) {
	p, _ := Lookup("standard-webhooks")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{}`)
	h := p.Sign(body, secret, "msg_1", now)
	h.Set("Webhook-Id", "msg_2")
	if _, err := p.Verify(Request{Header: h, Body: body}, []string{secret}, now); !errors.Is(err, ErrSignatureInvalid) {
		t.Fatalf("Verify with a swapped webhook-id = %v, want ErrSignatureInvalid", err)
	}
}

func TestStandardWebhooks_RejectsUndecodableSecrets(t *testing.T) {
	p, _ := Lookup("standard-webhooks")
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{}`)
	req := Request{Header: p.Sign(body, good, "msg_1", now), Body: body}
	if _, err := p.Verify(req, []string{"whsec_not base64!"}, now); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("Verify with only an undecodable secret = %v, want ErrInvalidSecret", err)
	}
	if _, err := p.Verify(req, []string{"whsec_not base64!", good}, now); err != nil {
		t.Fatalf("Verify skipping an undecodable secret: %v", err)
	}
}

func TestShopify_RejectsMalformedSignature(t *testing.T) {
	p, _ := Lookup("shopify")
	body := []byte(`{"id":1}`)
	good := p.Sign(body, "s3cret", "wh-1", now)
	for _, bad := range []string{"not base64!", "sha256=" + good.Get("X-Shopify-Hmac-Sha256"), "AAAA"} {
		h := good.Clone()
		h.Set("X-Shopify-Hmac-Sha256", bad)
		if _, err := p.Verify(Request{Header: h, Body: body}, []string{"s3cret"}, now); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("Verify with %q = %v, want ErrSignatureInvalid", bad, err)
		}
	}
}

func TestGitLab_ComparesWholeToken(t *testing.T) {
	p, _ := Lookup("gitlab")
	const secret = "0123456789abcdef"
	for _, bad := range []string{secret[:15], secret + "0", strings.ToUpper(secret), " " + secret + "x"} {
		h := p.Sign(nil, bad, "uuid-1", now)
		if _, err := p.Verify(Request{Header: h}, []string{secret}, now); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("Verify with a token differing from the secret = %v, want ErrSignatureInvalid", err)
		}
	}
}

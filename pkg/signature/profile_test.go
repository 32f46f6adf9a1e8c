package signature

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is the fixed clock of every test that does not pin a published vector.
var now = time.Unix(1_750_000_000, 0)

// fixture is what the cross-profile tests need to know about one profile.
type fixture struct {
	body    []byte // a delivery body the provider would send
	eventID string // passed to Sign
	wantID  string // what Verify returns for body signed with eventID

	// noIDBody and noIDErr describe a delivery without an event id: body
	// signed with eventID "" and the error Verify gives it (nil for slack,
	// which then derives one from the signature).
	noIDBody []byte
	noIDErr  error

	timestamped bool
	bodySigned  bool // false for gitlab, whose token does not cover the body
}

var fixtures = map[string]fixture{
	"generic": {
		body: []byte(`{"event":"report.trigger","topic":"AI startups"}`), eventID: "evt-001", wantID: "evt-001",
		noIDBody: []byte(`{"event":"report.trigger"}`), noIDErr: ErrMissingEventID,
		timestamped: true, bodySigned: true,
	},
	"github": {
		body: []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/repo"}}`), eventID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", wantID: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		noIDBody: []byte(`{"ref":"refs/heads/main"}`), noIDErr: ErrMissingEventID,
		bodySigned: true,
	},
	"stripe": {
		body: []byte(`{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"payment_intent.succeeded"}`), wantID: "evt_1NG8Du2eZvKYlo2CUI79vXWy",
		noIDBody: []byte(`{"object":"event","type":"payment_intent.succeeded"}`), noIDErr: ErrMissingEventID,
		timestamped: true, bodySigned: true,
	},
	"slack": {
		body: []byte(`{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}`), wantID: "Ev08MFMKH6",
		noIDBody: []byte(`token=xyzz0WbapA4vBCDEFasx0q6G&command=%2Fdeploy&text=prod`), noIDErr: nil,
		timestamped: true, bodySigned: true,
	},
	"standard-webhooks": {
		body: []byte(`{"type":"invoice.paid","data":{"id":"inv_1"}}`), eventID: "msg_p5jXN8AQM9LWM0D4loKWxJek", wantID: "msg_p5jXN8AQM9LWM0D4loKWxJek",
		noIDBody: []byte(`{"type":"invoice.paid"}`), noIDErr: ErrMissingEventID,
		timestamped: true, bodySigned: true,
	},
	"shopify": {
		body: []byte(`{"id":820982911946154508,"email":"jon@example.com"}`), eventID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", wantID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
		noIDBody: []byte(`{"id":820982911946154508}`), noIDErr: ErrMissingEventID,
		bodySigned: true,
	},
	"gitlab": {
		body: []byte(`{"object_kind":"push","ref":"refs/heads/main"}`), eventID: "13792a34-cac6-4fda-95a8-c58e00a3954e", wantID: "13792a34-cac6-4fda-95a8-c58e00a3954e",
		noIDBody: []byte(`{"object_kind":"push"}`), noIDErr: ErrMissingEventID,
	},
}

// profileCase is one registered profile with its fixture and two fresh
// secrets: current and the previous one still in its rotation grace.
type profileCase struct {
	name              string
	p                 Profile
	fx                fixture
	current, previous string
}

// allProfiles returns a case for every registered profile, failing the test
// when a profile has no fixture so a new profile cannot go untested.
func allProfiles(t *testing.T) []profileCase {
	t.Helper()
	var cases []profileCase
	for _, name := range Names() {
		p, ok := Lookup(name)
		if !ok {
			t.Fatalf("Lookup(%q) found nothing, but Names lists it", name)
		}
		fx, ok := fixtures[name]
		if !ok {
			t.Fatalf("profile %q has no test fixture", name)
		}
		cases = append(cases, profileCase{name: name, p: p, fx: fx,
			current: mustSecret(t, p), previous: mustSecret(t, p)})
	}
	return cases
}

func mustSecret(t *testing.T, p Profile) string {
	t.Helper()
	s, err := p.GenerateSecret()
	if err != nil {
		t.Fatalf("%s: GenerateSecret: %v", p.Name(), err)
	}
	return s
}

// signed returns the request a sender would make with body, secret and at.
func (c profileCase) signed(body []byte, secret, eventID string, at time.Time) Request {
	return Request{Header: c.p.Sign(body, secret, eventID, at), Body: body}
}

// good returns the fixture's delivery, signed with the current secret at now.
func (c profileCase) good() Request {
	return c.signed(c.fx.body, c.current, c.fx.eventID, now)
}

func TestProfiles_AcceptGoodSignature(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			id, err := c.p.Verify(c.good(), []string{c.current}, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id != c.fx.wantID {
				t.Errorf("event id = %q, want %q", id, c.fx.wantID)
			}
		})
	}
}

func TestProfiles_RejectTamperedBody(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			req := c.good()
			req.Body = []byte(strings.Replace(string(req.Body), "{", `{"injected":true,`, 1))
			_, err := c.p.Verify(req, []string{c.current}, now)
			if !c.fx.bodySigned {
				// GitLab's token is not a signature over the body.
				if err != nil {
					t.Fatalf("Verify: %v, want nil: the token does not cover the body", err)
				}
				return
			}
			if !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("Verify = %v, want ErrSignatureInvalid", err)
			}
		})
	}
}

func TestProfiles_RejectWrongSecret(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			req := c.signed(c.fx.body, mustSecret(t, c.p), c.fx.eventID, now)
			if _, err := c.p.Verify(req, []string{c.current, c.previous}, now); !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("Verify = %v, want ErrSignatureInvalid", err)
			}
		})
	}
}

func TestProfiles_EnforceTimestampTolerance(t *testing.T) {
	tests := []struct {
		name   string
		signAt time.Time
		stale  bool // rejected by a timestamped profile
	}{
		{"stale beyond tolerance", now.Add(-DefaultTolerance - time.Second), true},
		{"future beyond skew", now.Add(DefaultTolerance + time.Second), true},
		{"old at the tolerance edge", now.Add(-DefaultTolerance), false},
		{"future at the tolerance edge", now.Add(DefaultTolerance), false},
		{"a day old", now.Add(-24 * time.Hour), true},
	}
	for _, c := range allProfiles(t) {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				req := c.signed(c.fx.body, c.current, c.fx.eventID, tt.signAt)
				_, err := c.p.Verify(req, []string{c.current}, now)
				switch {
				case !c.fx.timestamped:
					// Nothing time-bound is signed; the dedup window guards replays.
					if err != nil {
						t.Fatalf("Verify = %v, want nil for a profile without timestamp", err)
					}
				case tt.stale && !errors.Is(err, ErrTimestampOutOfTolerance):
					t.Fatalf("Verify = %v, want ErrTimestampOutOfTolerance", err)
				case !tt.stale && err != nil:
					t.Fatalf("Verify = %v, want nil", err)
				}
			})
		}
	}
}

func TestProfiles_AcceptPreviousSecretDuringRotation(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			req := c.signed(c.fx.body, c.previous, c.fx.eventID, now)
			id, err := c.p.Verify(req, []string{c.current, c.previous}, now)
			if err != nil {
				t.Fatalf("Verify with [current, previous]: %v", err)
			}
			if id != c.fx.wantID {
				t.Errorf("event id = %q, want %q", id, c.fx.wantID)
			}
			if _, err := c.p.Verify(req, []string{c.current}, now); !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("Verify with [current] only = %v, want ErrSignatureInvalid", err)
			}
		})
	}
}

func TestProfiles_RejectMissingSignature(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			req := c.good()
			for _, h := range c.p.CredentialHeaders() {
				req.Header.Del(h)
			}
			if _, err := c.p.Verify(req, []string{c.current}, now); !errors.Is(err, ErrSignatureMissing) {
				t.Fatalf("Verify without credential headers = %v, want ErrSignatureMissing", err)
			}
			if _, err := c.p.Verify(Request{}, []string{c.current}, now); !errors.Is(err, ErrSignatureMissing) {
				t.Fatalf("Verify of a request without headers = %v, want ErrSignatureMissing", err)
			}
		})
	}
}

func TestProfiles_RejectMissingTimestamp(t *testing.T) {
	headers := map[string]string{
		"generic":           "X-Timestamp",
		"slack":             "X-Slack-Request-Timestamp",
		"standard-webhooks": "Webhook-Timestamp",
	}
	for _, c := range allProfiles(t) {
		h, ok := headers[c.name]
		if !ok {
			continue // stripe's timestamp is inside Stripe-Signature, tested there
		}
		t.Run(c.name, func(t *testing.T) {
			req := c.good()
			req.Header.Del(h)
			if _, err := c.p.Verify(req, []string{c.current}, now); !errors.Is(err, ErrSignatureMissing) {
				t.Fatalf("Verify without %s = %v, want ErrSignatureMissing", h, err)
			}
		})
	}
}

func TestProfiles_ReportMissingEventID(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			req := c.signed(c.fx.noIDBody, c.current, "", now)
			id, err := c.p.Verify(req, []string{c.current}, now)
			if c.fx.noIDErr == nil {
				if err != nil || id == "" {
					t.Fatalf("Verify = (%q, %v), want an event id of its own", id, err)
				}
				return
			}
			if !errors.Is(err, c.fx.noIDErr) {
				t.Fatalf("Verify = %v, want %v", err, c.fx.noIDErr)
			}
		})
	}
}

func TestProfiles_CheckSignatureBeforeEventID(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			req := c.signed(c.fx.noIDBody, mustSecret(t, c.p), "", now)
			if _, err := c.p.Verify(req, []string{c.current}, now); !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("Verify of a forged delivery without id = %v, want ErrSignatureInvalid", err)
			}
		})
	}
}

func TestProfiles_SignVerifyRoundTrip(t *testing.T) {
	bodies := map[string][]byte{
		"fixture":      nil, // replaced by the profile's own body
		"empty":        {},
		"binary":       {0x00, 0xff, 0x7b, '\n', 0x80},
		"large":        []byte(strings.Repeat(`{"k":"v"},`, 10_000)),
		"unicode":      []byte(`{"name":"Zoë ☃"}`),
		"json with id": []byte(`{"id":"evt_roundtrip","event_id":"Ev_roundtrip"}`),
	}
	for _, c := range allProfiles(t) {
		for bname, body := range bodies {
			t.Run(c.name+"/"+bname, func(t *testing.T) {
				if body == nil {
					body = c.fx.body
				}
				p := WithTolerance(c.p, time.Minute)
				req := c.signed(body, c.current, "evt-roundtrip", now)
				_, err := p.Verify(req, []string{c.current}, now.Add(30*time.Second))
				if c.name == "stripe" && bname != "fixture" && bname != "json with id" {
					// Authentic, but Stripe's event id lives in a JSON body.
					if !errors.Is(err, ErrMissingEventID) {
						t.Fatalf("Verify = %v, want ErrMissingEventID", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			})
		}
	}
}

func TestProfiles_RejectUnusableSecrets(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			for _, secrets := range [][]string{nil, {}, {""}, {"", ""}} {
				if _, err := c.p.Verify(c.good(), secrets, now); !errors.Is(err, ErrInvalidSecret) {
					t.Errorf("Verify with secrets %q = %v, want ErrInvalidSecret", secrets, err)
				}
			}
		})
	}
}

func TestProfiles_SkipUnusablePreviousSecret(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.p.Verify(c.good(), []string{"", c.current}, now); err != nil {
				t.Fatalf("Verify with an empty secret before the current one: %v", err)
			}
		})
	}
}

func TestProfiles_ErrorsHoldNoSecretOrSignature(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			good := c.good()
			var values []string
			for _, h := range c.p.CredentialHeaders() {
				if v := good.Header.Get(h); v != "" {
					values = append(values, v)
				}
			}
			if len(values) == 0 {
				t.Fatal("Sign set none of the CredentialHeaders")
			}
			tampered := c.good()
			tampered.Body = slices.Concat(tampered.Body, []byte(" "))
			stale := c.signed(c.fx.body, c.current, c.fx.eventID, now.Add(-time.Hour))
			noID := c.signed(c.fx.noIDBody, c.current, "", now)
			attempts := []struct {
				req     Request
				secrets []string
			}{
				{good, []string{c.previous}},
				{tampered, []string{c.current}},
				{stale, []string{c.current}},
				{noID, []string{c.current}},
				{good, []string{""}},
			}
			for i, a := range attempts {
				_, err := c.p.Verify(a.req, a.secrets, now)
				if err == nil {
					continue
				}
				msg := err.Error()
				for _, secret := range []string{c.current, c.previous} {
					if strings.Contains(msg, secret) {
						t.Errorf("attempt %d: error %q holds a secret", i, msg)
					}
				}
				for _, v := range values {
					if strings.Contains(msg, v) {
						t.Errorf("attempt %d: error %q holds the credential header value", i, msg)
					}
				}
			}
		})
	}
}

func TestProfiles_StrippingCredentialHeadersRemovesEverySecretValue(t *testing.T) {
	for _, c := range allProfiles(t) {
		t.Run(c.name, func(t *testing.T) {
			h := c.good().Header
			for _, name := range c.p.CredentialHeaders() {
				if name != http.CanonicalHeaderKey(name) {
					t.Errorf("credential header %q is not canonical", name)
				}
				h.Del(name)
			}
			for name, vs := range h {
				for _, v := range vs {
					if strings.Contains(v, c.current) {
						t.Errorf("header %s still holds the secret after stripping", name)
					}
				}
			}
		})
	}
}

func TestProfiles_DefaultWindows(t *testing.T) {
	want := map[string]time.Duration{
		"generic":           24 * time.Hour,
		"github":            72 * time.Hour,
		"stripe":            72 * time.Hour,
		"slack":             time.Hour,
		"standard-webhooks": 76 * time.Hour, // the spec's example retry schedule: 75h35m
		"shopify":           48 * time.Hour,
		"gitlab":            72 * time.Hour,
	}
	for _, c := range allProfiles(t) {
		if got := c.p.DefaultWindow(); got != want[c.name] {
			t.Errorf("%s: DefaultWindow = %s, want %s", c.name, got, want[c.name])
		}
		if got := c.p.Name(); got != c.name {
			t.Errorf("Lookup(%q).Name() = %q", c.name, got)
		}
	}
}

func TestNames_ListsEveryProfileSorted(t *testing.T) {
	want := []string{"generic", "github", "gitlab", "shopify", "slack", "standard-webhooks", "stripe"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
}

func TestLookup_RejectsUnknownName(t *testing.T) {
	for _, name := range []string{"", "GitHub", "svix", "generic "} {
		if p, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %s, want none", name, p.Name())
		}
	}
}

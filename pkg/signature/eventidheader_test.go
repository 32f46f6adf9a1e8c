package signature

import (
	"errors"
	"strings"
	"testing"
)

// TestWithEventIDHeader_ReadsTheEventIDFromTheConfiguredHeader: a profile
// whose event id header is unsigned takes the id from the header a webhook
// names instead, and from that header only: the profile's own header,
// still sent, is ignored, and without the named one the delivery lacks
// its id, whatever else it carries.
func TestWithEventIDHeader_ReadsTheEventIDFromTheConfiguredHeader(t *testing.T) {
	for _, name := range []string{"generic", "github", "gitlab", "shopify"} {
		t.Run(name, func(t *testing.T) {
			base, _ := Lookup(name)
			p, ok := WithEventIDHeader(base, "X-Request-Id")
			if !ok {
				t.Fatalf("WithEventIDHeader refused the %s profile, whose event id header is not signed", name)
			}
			secret, other := mustSecret(t, base), mustSecret(t, base)
			fx := fixtures[name]
			// As the provider sends it: its own id header, and the
			// sender's request id (header names are case-insensitive).
			req := Request{Header: base.Sign(fx.body, secret, "provider-id", now), Body: fx.body}
			req.Header.Set("x-request-id", "req-42")
			if id, err := p.Verify(req, []string{secret}, now); err != nil || id != "req-42" {
				t.Fatalf("Verify = %q, %v; want the X-Request-Id value req-42", id, err)
			}

			req.Header.Del("X-Request-Id")
			_, err := p.Verify(req, []string{secret}, now)
			if !errors.Is(err, ErrMissingEventID) || !strings.Contains(err.Error(), "X-Request-Id") {
				t.Fatalf("without X-Request-Id: Verify = %v, want ErrMissingEventID naming X-Request-Id", err)
			}
			if src := EventIDSource(p); src != "the X-Request-Id header" {
				t.Errorf("EventIDSource = %q, want the X-Request-Id header", src)
			}

			// What Sign produces, Verify reads back.
			signed := Request{Header: p.Sign(fx.body, secret, "evt-7", now), Body: fx.body}
			if id, err := p.Verify(signed, []string{secret}, now); err != nil || id != "evt-7" {
				t.Fatalf("Verify(Sign) = %q, %v; want evt-7", id, err)
			}
			if again, _ := Lookup(name); EventIDSource(again) == EventIDSource(p) {
				t.Error("WithEventIDHeader changed the registered profile")
			}

			// The signature check is what it was: the option only moves
			// where the id is read.
			forged := Request{Header: base.Sign(fx.body, other, "", now), Body: fx.body}
			forged.Header.Set("X-Request-Id", "req-43")
			if _, err := p.Verify(forged, []string{secret}, now); !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("signed with another secret: Verify = %v, want ErrSignatureInvalid", err)
			}
			if Tolerance(p) != Tolerance(base) || p.DefaultWindow() != base.DefaultWindow() || p.Name() != name {
				t.Error("WithEventIDHeader changed more than the event id header")
			}
		})
	}
}

// Generic's own X-Event-Id is no longer required once a webhook names
// another header: a sender that only has a request id is served.
func TestWithEventIDHeader_GenericNoLongerRequiresXEventID(t *testing.T) {
	base, _ := Lookup("generic")
	p, _ := WithEventIDHeader(base, "X-Request-Id")
	secret := mustSecret(t, base)
	fx := fixtures["generic"]
	req := Request{Header: base.Sign(fx.body, secret, "", now), Body: fx.body}
	req.Header.Set("X-Request-Id", "req-1")
	if id, err := p.Verify(req, []string{secret}, now); err != nil || id != "req-1" {
		t.Fatalf("Verify = %q, %v; want req-1 with no X-Event-Id sent", id, err)
	}
}

// Where the event id is signed (stripe's and slack's in the body,
// standard-webhooks' webhook-id in the signed payload), reading it from
// another, unsigned header would let a captured delivery be replayed under
// a new id: the option is refused and the profile comes back unchanged.
func TestWithEventIDHeader_IsRefusedWhereTheEventIDIsSigned(t *testing.T) {
	for _, name := range []string{"stripe", "slack", "standard-webhooks"} {
		base, _ := Lookup(name)
		p, ok := WithEventIDHeader(base, "X-Request-Id")
		if ok {
			t.Errorf("%s: WithEventIDHeader accepted a header for a signed event id", name)
		}
		if p != base {
			t.Errorf("%s: WithEventIDHeader returned a different profile", name)
		}
	}
}

// Every registered profile is placed on one side or the other, so a new
// profile has to say whether its event id is signed.
func TestWithEventIDHeader_CoversEveryProfile(t *testing.T) {
	unsigned := map[string]bool{"generic": true, "github": true, "gitlab": true, "shopify": true,
		"stripe": false, "slack": false, "standard-webhooks": false}
	for _, name := range Names() {
		want, known := unsigned[name]
		if !known {
			t.Errorf("%s: no expectation: is its event id signed?", name)
			continue
		}
		p, _ := Lookup(name)
		if _, ok := WithEventIDHeader(p, "X-Request-Id"); ok != want {
			t.Errorf("%s: WithEventIDHeader ok = %v, want %v", name, ok, want)
		}
	}
}

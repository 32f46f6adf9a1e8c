package signature

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestWithTolerance_WidensAndNarrowsTheSkewCheck(t *testing.T) {
	for _, name := range []string{"generic", "stripe", "slack", "standard-webhooks"} {
		t.Run(name, func(t *testing.T) {
			base, _ := Lookup(name)
			secret, _ := base.GenerateSecret()
			fx := fixtures[name]
			old := Request{Header: base.Sign(fx.body, secret, fx.eventID, now.Add(-8*time.Minute)), Body: fx.body}

			if _, err := base.Verify(old, []string{secret}, now); !errors.Is(err, ErrTimestampOutOfTolerance) {
				t.Fatalf("default tolerance: Verify = %v, want ErrTimestampOutOfTolerance", err)
			}
			wide := WithTolerance(base, 10*time.Minute)
			if _, err := wide.Verify(old, []string{secret}, now); err != nil {
				t.Fatalf("10m tolerance: Verify: %v", err)
			}
			recent := Request{Header: base.Sign(fx.body, secret, fx.eventID, now.Add(-time.Minute)), Body: fx.body}
			narrow := WithTolerance(base, 30*time.Second)
			if _, err := narrow.Verify(recent, []string{secret}, now); !errors.Is(err, ErrTimestampOutOfTolerance) {
				t.Fatalf("30s tolerance: Verify = %v, want ErrTimestampOutOfTolerance", err)
			}
			if Tolerance(base) != DefaultTolerance || Tolerance(wide) != 10*time.Minute {
				t.Errorf("Tolerance = %s / %s, want %s / 10m", Tolerance(base), Tolerance(wide), DefaultTolerance)
			}
			if wide.Name() != name || wide.DefaultWindow() != base.DefaultWindow() {
				t.Error("WithTolerance changed more than the tolerance")
			}
			if again, _ := Lookup(name); Tolerance(again) != DefaultTolerance {
				t.Error("WithTolerance changed the registered profile")
			}
		})
	}
}

func TestWithTolerance_CannotDisableTheSkewCheck(t *testing.T) {
	p, _ := Lookup("generic")
	for _, d := range []time.Duration{0, -time.Second} {
		if got := Tolerance(WithTolerance(p, d)); got != DefaultTolerance {
			t.Errorf("WithTolerance(%s) gives tolerance %s, want %s", d, got, DefaultTolerance)
		}
	}
}

// A tolerance stored before the keys service bounded it is held to
// MaxTolerance: a stripe delivery signed years ago does not pass.
func TestWithTolerance_IsBounded(t *testing.T) {
	base, _ := Lookup("stripe")
	secret, _ := base.GenerateSecret()
	fx := fixtures["stripe"]
	p := WithTolerance(base, 1500000*time.Hour)
	if Tolerance(p) != MaxTolerance {
		t.Fatalf("tolerance %s, want %s", Tolerance(p), MaxTolerance)
	}
	old := Request{Header: base.Sign(fx.body, secret, fx.eventID, now.Add(-25*time.Hour)), Body: fx.body}
	if _, err := p.Verify(old, []string{secret}, now); !errors.Is(err, ErrTimestampOutOfTolerance) {
		t.Fatalf("a delivery signed 25h ago: Verify = %v, want ErrTimestampOutOfTolerance", err)
	}
}

func TestWithTolerance_LeavesUntimedProfilesUnchanged(t *testing.T) {
	for _, name := range []string{"github", "shopify", "gitlab"} {
		p, _ := Lookup(name)
		if got := WithTolerance(p, time.Hour); got != p {
			t.Errorf("%s: WithTolerance returned a different profile", name)
		}
		if Tolerance(p) != 0 {
			t.Errorf("%s: Tolerance = %s, want 0", name, Tolerance(p))
		}
	}
}

// A signed timestamp in milliseconds (a sender's usual mistake) is out of
// tolerance, and said to look like milliseconds; one merely old is not.
func TestVerify_ATimestampInMillisecondsIsNamedSo(t *testing.T) {
	p, _ := Lookup("generic")
	secret, _ := p.GenerateSecret()
	body := []byte(`{"a":1}`)
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	h := http.Header{}
	h.Set(genericTimestampHeader, ms)
	h.Set("X-Event-Id", "evt-ms")
	h.Set(genericSignatureHeader, sha256Prefix+hex.EncodeToString(sumSHA256([]byte(secret), []byte(ms), dot, body)))
	_, err := p.Verify(Request{Header: h, Body: body}, []string{secret}, now)
	if !errors.Is(err, ErrTimestampOutOfTolerance) || !errors.Is(err, ErrTimestampInMilliseconds) {
		t.Fatalf("milliseconds: Verify = %v, want out of tolerance, in milliseconds", err)
	}
	old := Request{Header: p.Sign(body, secret, "evt-old", now.Add(-8*time.Minute)), Body: body}
	if _, err := p.Verify(old, []string{secret}, now); !errors.Is(err, ErrTimestampOutOfTolerance) || errors.Is(err, ErrTimestampInMilliseconds) {
		t.Fatalf("8 minutes old: Verify = %v, want out of tolerance, not milliseconds", err)
	}
}

package signature

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of untrusted header input. Each must never
// panic, and whatever it accepts must survive a format/parse round trip.
// Seed corpora live in testdata/fuzz/<FuzzName>/.

func FuzzStripeSignatureHeader(f *testing.F) {
	f.Add("t=1614265330,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1614265330,v1=" + strings.Repeat("ab", 32) + ",v1=" + strings.Repeat("cd", 32) + ",v0=" + strings.Repeat("ef", 32))
	f.Add("v1=" + strings.Repeat("00", 32) + ",t=1")
	f.Add("t=,v1=")
	f.Add("t=1,t=2,v1=" + strings.Repeat("ab", 32))
	f.Add(",,==,t==1")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		sh, err := parseStripeHeader(v)
		if err != nil {
			if !errors.Is(err, ErrSignatureInvalid) {
				t.Fatalf("error %v does not wrap ErrSignatureInvalid", err)
			}
			return
		}
		if n, ok := parseUnix(sh.t); !ok || n != sh.unix {
			t.Fatalf("accepted timestamp %q parsed as %d", sh.t, sh.unix)
		}
		if len(sh.v1) == 0 {
			t.Fatal("accepted a header without v1 signature")
		}
		items := []string{"t=" + sh.t}
		for _, s := range sh.v1 {
			if len(s) != 32 {
				t.Fatalf("accepted a %d-byte v1 signature", len(s))
			}
			items = append(items, "v1="+hex.EncodeToString(s))
		}
		again, err := parseStripeHeader(strings.Join(items, ","))
		if err != nil || again.t != sh.t || len(again.v1) != len(sh.v1) {
			t.Fatalf("re-formatted header does not parse the same: %v", err)
		}
	})
}

func FuzzStandardWebhooksSignatureList(f *testing.F) {
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,abc v2,xyz")
	f.Add("v1, v1,, ,v1")
	f.Add("v1,AAAA====")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		sigs := parseStandardSignatures(v)
		entries := make([]string, 0, len(sigs))
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("accepted a %d-byte signature", len(s))
			}
			entries = append(entries, "v1,"+base64.StdEncoding.EncodeToString(s))
		}
		again := parseStandardSignatures(strings.Join(entries, " "))
		if len(again) != len(sigs) {
			t.Fatalf("re-formatted list parses to %d signatures, want %d", len(again), len(sigs))
		}
		for i := range again {
			if !bytes.Equal(again[i], sigs[i]) {
				t.Fatalf("signature %d changed in a round trip", i)
			}
		}
	})
}

// fuzzPrefixedHex checks parsePrefixedHex for one prefix.
func fuzzPrefixedHex(t *testing.T, v, prefix string) {
	sum, ok := parsePrefixedHex(v, prefix)
	if !ok {
		return
	}
	if len(sum) != 32 {
		t.Fatalf("accepted a %d-byte digest", len(sum))
	}
	if want := prefix + hex.EncodeToString(sum); strings.ToLower(v) != want {
		t.Fatalf("accepted %q, which is not %q up to hex case", v, want)
	}
}

func FuzzSHA256PrefixedSignature(f *testing.F) {
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Add("sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17")
	f.Add("sha1=757107ea0eb2509fc211221cce984b8a37570b6d")
	f.Add("sha256=")
	f.Add("sha256=zz")
	f.Fuzz(func(t *testing.T, v string) { fuzzPrefixedHex(t, v, sha256Prefix) })
}

func FuzzSlackV0Signature(f *testing.F) {
	f.Add("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	f.Add("v0=")
	f.Add("v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	f.Add("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b50")
	f.Fuzz(func(t *testing.T, v string) { fuzzPrefixedHex(t, v, slackPrefix) })
}

// FuzzVerify feeds arbitrary header values and bodies to every profile: no
// panic, and every failure wraps one of the documented errors.
func FuzzVerify(f *testing.F) {
	f.Add("sha256="+strings.Repeat("ab", 32), "1750000000", "evt-1", []byte(`{"id":"evt_1","event_id":"Ev1"}`))
	f.Add("t=1750000000,v1="+strings.Repeat("ab", 32), "1750000000", "", []byte(`{"id":1}`))
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "1614265330", "msg_1", []byte(`{"test": 2432232314}`))
	f.Add("v0=", "-1", "\x00", []byte{0xff, 0xfe})
	f.Add("", "", "", []byte(nil))
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "s3cret"}
	sentinels := []error{ErrSignatureMissing, ErrSignatureInvalid, ErrTimestampOutOfTolerance, ErrMissingEventID, ErrInvalidSecret}
	f.Fuzz(func(t *testing.T, sig, ts, id string, body []byte) {
		h := http.Header{}
		for _, name := range []string{"X-Signature", "X-Hub-Signature-256", "Stripe-Signature", "X-Slack-Signature",
			"Webhook-Signature", "X-Shopify-Hmac-Sha256", "X-Gitlab-Token"} {
			h[name] = []string{sig}
		}
		for _, name := range []string{"X-Timestamp", "X-Slack-Request-Timestamp", "Webhook-Timestamp"} {
			h[name] = []string{ts}
		}
		for _, name := range []string{"X-Event-Id", "X-Github-Delivery", "Webhook-Id", "X-Shopify-Webhook-Id", "X-Gitlab-Event-Uuid"} {
			h[name] = []string{id}
		}
		at := time.Unix(1750000000, 0)
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil && n > 0 && n < 1<<40 {
			at = time.Unix(n, 0) // let the fuzzer reach the checks after the skew check
		}
		for _, name := range Names() {
			p, _ := Lookup(name)
			_, err := p.Verify(Request{Header: h, Body: body}, secrets, at)
			if err == nil {
				// Only a real signature gets here (the seed corpus holds the
				// standard-webhooks vector): it must cover the body, and a
				// GitLab token must be one of the secrets.
				if name == "gitlab" {
					if sig != secrets[0] && sig != secrets[1] {
						t.Fatalf("gitlab accepted token %q", sig)
					}
					continue
				}
				tampered := append(bytes.Clone(body), '!')
				if _, err := p.Verify(Request{Header: h, Body: tampered}, secrets, at); !errors.Is(err, ErrSignatureInvalid) {
					t.Fatalf("%s accepted a delivery whatever its body: %v", name, err)
				}
				continue
			}
			known := false
			for _, s := range sentinels {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Fatalf("%s: error %v wraps none of the documented errors", name, err)
			}
		}
	})
}

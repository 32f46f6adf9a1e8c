package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	stripeName            = "stripe"
	stripeSignatureHeader = "Stripe-Signature"
	stripeEventIDField    = "id"
)

// stripe is Stripe's scheme: Stripe-Signature "t=<unix>,v1=<hex>[,v1=...]"
// over t + "." + body, keyed by the whole endpoint secret string ("whsec_..."
// is not decoded). Stripe sends several v1 entries while it rolls a secret;
// v0 entries (a legacy test-mode scheme) are ignored.
type stripe struct {
	skew time.Duration
}

func (stripe) Name() string { return stripeName }

func (p stripe) Verify(req Request, secrets []string, now time.Time) (string, error) {
	v := req.Header.Get(stripeSignatureHeader)
	if v == "" {
		return "", fmt.Errorf("%w: need header %s", ErrSignatureMissing, stripeSignatureHeader)
	}
	sh, err := parseStripeHeader(v)
	if err != nil {
		return "", err
	}
	if err := verifyHMAC(secrets, rawKey, sh.v1, []byte(sh.t), dot, req.Body); err != nil {
		return "", fmt.Errorf("stripe: %w", err)
	}
	if err := checkSkew(sh.unix, now, p.skew); err != nil {
		return "", err
	}
	// The event id comes from the signed body, so it is only parsed now that
	// the body is known to be Stripe's.
	id, ok := jsonStringField(req.Body, stripeEventIDField)
	if !ok {
		return "", fmt.Errorf("%w: body is not a JSON object with a string %q", ErrMissingEventID, stripeEventIDField)
	}
	return id, nil
}

// Sign ignores eventID: Stripe's event id is the body's "id" field.
func (stripe) Sign(body []byte, secret, _ string, now time.Time) http.Header {
	t := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set(stripeSignatureHeader, "t="+t+",v1="+hex.EncodeToString(sumSHA256([]byte(secret), []byte(t), dot, body)))
	return h
}

// DefaultWindow is 72h: Stripe retries a failed live-mode delivery for up to
// three days.
func (stripe) DefaultWindow() time.Duration { return 72 * time.Hour }

func (stripe) CredentialHeaders() []string { return []string{stripeSignatureHeader} }

// GenerateSecret returns "whsec_" + 64 hex digits, shaped like Stripe's
// endpoint secrets; the whole string is the key.
func (stripe) GenerateSecret() (string, error) { return generateHex("whsec_") }

func (p stripe) tolerance() time.Duration { return p.skew }

func (p stripe) withTolerance(d time.Duration) Profile { p.skew = d; return p }

// stripeHeader is a parsed Stripe-Signature value.
type stripeHeader struct {
	t    string   // the timestamp exactly as sent, part of the signed payload
	unix int64    // t as a number, for the skew check
	v1   [][]byte // decoded v1 signatures
}

// parseStripeHeader parses "t=<unix>,v1=<hex>,...". Items without "=", with
// unknown keys, or v1 values that are not 32 bytes of hex are skipped, as
// Stripe's libraries do; exactly one t and at least one good v1 are required.
func parseStripeHeader(v string) (stripeHeader, error) {
	var sh stripeHeader
	seenT := false
	for item := range strings.SplitSeq(v, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		switch key {
		case "t":
			if seenT {
				return stripeHeader{}, fmt.Errorf("%w: header Stripe-Signature has more than one timestamp", ErrSignatureInvalid)
			}
			seenT = true
			unix, ok := parseUnix(val)
			if !ok {
				return stripeHeader{}, fmt.Errorf("%w: header Stripe-Signature has a malformed timestamp", ErrSignatureInvalid)
			}
			sh.t, sh.unix = val, unix
		case "v1":
			if sig, err := hex.DecodeString(val); err == nil && len(sig) == sha256.Size {
				sh.v1 = append(sh.v1, sig)
			}
		}
	}
	if !seenT {
		return stripeHeader{}, fmt.Errorf("%w: header Stripe-Signature has no timestamp", ErrSignatureInvalid)
	}
	if len(sh.v1) == 0 {
		return stripeHeader{}, fmt.Errorf("%w: header Stripe-Signature has no v1 signature", ErrSignatureInvalid)
	}
	return sh, nil
}

package signature

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	standardWebhooksName  = "standard-webhooks"
	swIDHeader            = "Webhook-Id"
	swTimestampHeader     = "Webhook-Timestamp"
	swSignatureHeader     = "Webhook-Signature"
	svixIDHeader          = "Svix-Id"
	svixTimestampHeader   = "Svix-Timestamp"
	svixSignatureHeader   = "Svix-Signature"
	swSecretPrefix        = "whsec_"
	swSignatureVersion    = "v1"
	swSignatureVersionSep = ","
)

// standardWebhooks is the Standard Webhooks (Svix) scheme: webhook-signature
// holds space-separated "v1,<base64>" entries over id + "." + timestamp + "."
// + body, keyed by the base64-decoded part of a "whsec_<base64>" secret.
// Several entries appear while the sender rotates its secret; entries of
// other versions (v1a, asymmetric) are ignored. Svix, and senders built on
// it (Clerk, Resend), name the same headers svix-id, svix-timestamp and
// svix-signature; like Svix's libraries, Verify reads those when the
// webhook-* ones are absent.
type standardWebhooks struct {
	skew time.Duration
}

func (standardWebhooks) Name() string { return standardWebhooksName }

// swHeaders names the three headers of one naming of the scheme.
type swHeaders struct{ id, timestamp, signature string }

var (
	webhookHeaders = swHeaders{swIDHeader, swTimestampHeader, swSignatureHeader}
	svixHeaders    = swHeaders{svixIDHeader, svixTimestampHeader, svixSignatureHeader}
)

// headersOf picks the naming a request uses, by its signature header: the
// webhook-* headers unless webhook-signature is absent and svix-signature
// is there (a stray webhook-id beside Svix's three, as a proxy may add,
// does not hide them: Svix's own library reads them too). The three are
// never mixed, so a request is verified against one sender's headers only.
func headersOf(h http.Header) swHeaders {
	if h.Get(swSignatureHeader) == "" && h.Get(svixSignatureHeader) != "" {
		return svixHeaders
	}
	return webhookHeaders
}

func (p standardWebhooks) Verify(req Request, secrets []string, now time.Time) (string, error) {
	hs := headersOf(req.Header)
	sigValue := req.Header.Get(hs.signature)
	ts := req.Header.Get(hs.timestamp)
	if sigValue == "" || ts == "" {
		return "", fmt.Errorf("%w: need headers %s and %s (or %s and %s)",
			ErrSignatureMissing, swSignatureHeader, swTimestampHeader, svixSignatureHeader, svixTimestampHeader)
	}
	sigs := parseStandardSignatures(sigValue)
	if len(sigs) == 0 {
		return "", fmt.Errorf("%w: header %s has no v1 signature", ErrSignatureInvalid, hs.signature)
	}
	unix, ok := parseUnix(ts)
	if !ok {
		return "", fmt.Errorf("%w: header %s is not unix seconds", ErrSignatureInvalid, hs.timestamp)
	}
	// The id is part of the signed content; an absent one is signed as "" and
	// reported as a missing event id once the signature holds.
	id := req.Header.Get(hs.id)
	if err := verifyHMAC(secrets, standardKey, sigs, []byte(id), dot, []byte(ts), dot, req.Body); err != nil {
		return "", fmt.Errorf("standard-webhooks: %w", err)
	}
	if err := checkSkew(unix, now, p.skew); err != nil {
		return "", err
	}
	return requireEventID(req, hs.id)
}

// Sign keys the HMAC as Verify does. A secret that is not "whsec_<base64>"
// (see ValidateSecret) is used as raw bytes, and the result will not verify.
func (standardWebhooks) Sign(body []byte, secret, eventID string, now time.Time) http.Header {
	ts := strconv.FormatInt(now.Unix(), 10)
	key, ok := standardKey(secret)
	if !ok {
		key = []byte(secret)
	}
	sum := sumSHA256(key, []byte(eventID), dot, []byte(ts), dot, body)
	h := http.Header{}
	if eventID != "" {
		h.Set(swIDHeader, eventID)
	}
	h.Set(swTimestampHeader, ts)
	h.Set(swSignatureHeader, swSignatureVersion+swSignatureVersionSep+base64.StdEncoding.EncodeToString(sum))
	return h
}

// DefaultWindow is 76h: a sender retries a delivery under the same
// webhook-id (with a fresh timestamp and signature) until its schedule
// ends, about 75h35m after the first attempt in the spec's example retry
// schedule, 27h35m in Svix's; a window shorter than the schedule would run
// a late retry of a delivery stored but answered too late for the sender
// (its time-out) a second time. The signed timestamp bounds replays by
// anyone else.
func (standardWebhooks) DefaultWindow() time.Duration { return 76 * time.Hour }

func (standardWebhooks) CredentialHeaders() []string {
	return []string{swSignatureHeader, svixSignatureHeader}
}

// GenerateSecret returns "whsec_" + base64 of 32 random bytes.
func (standardWebhooks) GenerateSecret() (string, error) { return generateBase64(swSecretPrefix) }

func (p standardWebhooks) tolerance() time.Duration { return p.skew }

func (p standardWebhooks) withTolerance(d time.Duration) Profile { p.skew = d; return p }

func (standardWebhooks) usableSecret(secret string) bool {
	_, ok := standardKey(secret)
	return ok
}

// IsStandardSecret reports whether secret is a Standard Webhooks secret
// as their libraries and the standard-webhooks Secret format give it:
// "whsec_" and base64. (A bare base64 secret verifies too, but so many other
// secrets are base64 — hex is — that the prefix is what marks one.)
func IsStandardSecret(secret string) bool {
	if !strings.HasPrefix(secret, swSecretPrefix) {
		return false
	}
	_, ok := standardKey(secret)
	return ok
}

// standardKey decodes a "whsec_<base64>" secret into its key bytes. Like the
// reference libraries it also takes the base64 without the prefix, and
// base64 without padding.
func standardKey(secret string) ([]byte, bool) {
	enc := strings.TrimPrefix(secret, swSecretPrefix)
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	return key, err == nil && len(key) > 0
}

// parseStandardSignatures returns the decoded signatures of the v1 entries in
// a space-separated "v1,<base64> v1,<base64>" list, skipping entries of other
// versions and entries that do not decode to 32 bytes.
func parseStandardSignatures(v string) [][]byte {
	var sigs [][]byte
	for _, entry := range strings.Fields(v) {
		version, enc, ok := strings.Cut(entry, swSignatureVersionSep)
		if !ok || version != swSignatureVersion {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		sigs = append(sigs, sig)
	}
	return sigs
}

package signature

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

const (
	genericName            = "generic"
	genericTimestampHeader = "X-Timestamp"
	genericEventIDHeader   = "X-Event-Id"
	genericSignatureHeader = "X-Signature"
	sha256Prefix           = "sha256="
)

// generic is Orloj's scheme: HMAC-SHA256 over timestamp + "." + body.
//
// X-Event-Id is not signed, so within the tolerance a captured delivery can
// be resent under a fresh event id; the skew check is what bounds that. A
// webhook may name another header for the id (WithEventIDHeader): idHeader,
// "" for X-Event-Id.
type generic struct {
	skew     time.Duration
	idHeader string
}

func (generic) Name() string { return genericName }

func (p generic) Verify(req Request, secrets []string, now time.Time) (string, error) {
	sigValue := req.Header.Get(genericSignatureHeader)
	ts := req.Header.Get(genericTimestampHeader)
	if sigValue == "" || ts == "" {
		return "", fmt.Errorf("%w: need headers %s and %s",
			ErrSignatureMissing, genericSignatureHeader, genericTimestampHeader)
	}
	sig, ok := parsePrefixedHex(sigValue, sha256Prefix)
	if !ok {
		return "", fmt.Errorf("%w: header %s is not sha256=<hex>", ErrSignatureInvalid, genericSignatureHeader)
	}
	unix, ok := parseUnix(ts)
	if !ok {
		return "", fmt.Errorf("%w: header %s is not unix seconds", ErrSignatureInvalid, genericTimestampHeader)
	}
	if err := verifyHMAC(secrets, rawKey, [][]byte{sig}, []byte(ts), dot, req.Body); err != nil {
		return "", fmt.Errorf("generic: %w", err)
	}
	if err := checkSkew(unix, now, p.skew); err != nil {
		return "", err
	}
	return requireEventID(req, p.eventIDHeader())
}

func (p generic) Sign(body []byte, secret, eventID string, now time.Time) http.Header {
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set(genericTimestampHeader, ts)
	if eventID != "" {
		h.Set(p.eventIDHeader(), eventID)
	}
	h.Set(genericSignatureHeader, sha256Prefix+hex.EncodeToString(sumSHA256([]byte(secret), []byte(ts), dot, body)))
	return h
}

// DefaultWindow is 24h, Orloj's default for the generic profile: the signed
// timestamp already stops replays beyond the tolerance.
func (generic) DefaultWindow() time.Duration { return 24 * time.Hour }

func (generic) CredentialHeaders() []string { return []string{genericSignatureHeader} }

func (generic) GenerateSecret() (string, error) { return generateHex("") }

func (p generic) tolerance() time.Duration { return p.skew }

func (p generic) withTolerance(d time.Duration) Profile { p.skew = d; return p }

func (p generic) eventIDHeader() string { return cmp.Or(p.idHeader, genericEventIDHeader) }

func (p generic) withEventIDHeader(name string) Profile { p.idHeader = name; return p }

// dot separates the timestamp (and id) from the body in signed payloads.
var dot = []byte(".")

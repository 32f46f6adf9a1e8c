package signature

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

const (
	githubName            = "github"
	githubSignatureHeader = "X-Hub-Signature-256"
	githubLegacySigHeader = "X-Hub-Signature" // HMAC-SHA1, still sent by GitHub; stripped, never trusted
	githubEventIDHeader   = "X-Github-Delivery"
)

// github is GitHub's scheme: HMAC-SHA256 over the raw body, hex, "sha256="
// prefix. Nothing time-bound is signed, so replay protection rests entirely
// on deduplicating X-GitHub-Delivery, or the header a webhook names instead
// (WithEventIDHeader): idHeader.
type github struct {
	idHeader string
}

func (github) Name() string { return githubName }

func (p github) Verify(req Request, secrets []string, _ time.Time) (string, error) {
	sigValue := req.Header.Get(githubSignatureHeader)
	if sigValue == "" {
		return "", fmt.Errorf("%w: need header %s", ErrSignatureMissing, githubSignatureHeader)
	}
	sig, ok := parsePrefixedHex(sigValue, sha256Prefix)
	if !ok {
		return "", fmt.Errorf("%w: header %s is not sha256=<hex>", ErrSignatureInvalid, githubSignatureHeader)
	}
	if err := verifyHMAC(secrets, rawKey, [][]byte{sig}, req.Body); err != nil {
		return "", fmt.Errorf("github: %w", err)
	}
	return requireEventID(req, p.eventIDHeader())
}

func (p github) Sign(body []byte, secret, eventID string, _ time.Time) http.Header {
	h := http.Header{}
	if eventID != "" {
		h.Set(p.eventIDHeader(), eventID)
	}
	h.Set(githubSignatureHeader, sha256Prefix+hex.EncodeToString(sumSHA256([]byte(secret), body)))
	return h
}

// DefaultWindow is 72h, GitHub's longest redelivery horizon (Orloj's choice):
// with no signed timestamp the dedup window is the only replay guard.
func (github) DefaultWindow() time.Duration { return 72 * time.Hour }

func (github) CredentialHeaders() []string {
	return []string{githubSignatureHeader, githubLegacySigHeader}
}

func (github) GenerateSecret() (string, error) { return generateHex("") }

func (p github) eventIDHeader() string { return cmp.Or(p.idHeader, githubEventIDHeader) }

func (p github) withEventIDHeader(name string) Profile { p.idHeader = name; return p }

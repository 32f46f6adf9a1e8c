package signature

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

const (
	gitlabName          = "gitlab"
	gitlabTokenHeader   = "X-Gitlab-Token"
	gitlabEventIDHeader = "X-Gitlab-Event-Uuid"
	gitlabIdemHeader    = "Idempotency-Key"
)

// gitlab is GitLab's scheme, which is not an HMAC: X-Gitlab-Token carries the
// shared secret itself. It is compared in constant time over SHA-256 digests,
// so neither the content nor the length of the secret leaks through timing.
// A webhook may name the event id header (WithEventIDHeader): idHeader, ""
// for GitLab's own.
type gitlab struct {
	idHeader string
}

func (gitlab) Name() string { return gitlabName }

func (p gitlab) Verify(req Request, secrets []string, _ time.Time) (string, error) {
	token := req.Header.Get(gitlabTokenHeader)
	if token == "" {
		return "", fmt.Errorf("%w: need header %s", ErrSignatureMissing, gitlabTokenHeader)
	}
	got := sha256.Sum256([]byte(token))
	usable := false
	matched := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		usable = true
		want := sha256.Sum256([]byte(s))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			matched = true
			break
		}
	}
	switch {
	case matched:
	case !usable:
		return "", fmt.Errorf("gitlab: %w", ErrInvalidSecret)
	default:
		return "", fmt.Errorf("gitlab: %w: header %s does not match", ErrSignatureInvalid, gitlabTokenHeader)
	}
	if p.idHeader != "" {
		// The webhook's choice replaces both of GitLab's headers.
		return requireEventID(req, p.idHeader)
	}
	// GitLab (17.4 and later) sends an Idempotency-Key that stays the
	// same when it retries a delivery or a user resends it from the
	// hook's "Recent events"; X-Gitlab-Event-UUID is new on each of
	// these, so it is the event id only where no Idempotency-Key comes
	// (earlier GitLab).
	if id := req.Header.Get(gitlabIdemHeader); id != "" {
		return id, nil
	}
	// X-Gitlab-Event-UUID is shared by the deliveries GitLab makes while
	// handling one request ("recursive webhooks have the same value"): a
	// job's API call that makes GitLab send another hook (a note, a
	// pipeline) sends it under the UUID of the delivery that ran the job.
	// With the body's digest, those are told apart; the same delivery
	// captured and sent again is still one event.
	uuid, err := requireEventID(req, gitlabEventIDHeader)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(req.Body)
	return uuid + ":" + hex.EncodeToString(sum[:8]), nil
}

// Sign ignores body and now: the token does not depend on them.
func (p gitlab) Sign(_ []byte, secret, eventID string, _ time.Time) http.Header {
	h := http.Header{}
	switch {
	case eventID == "":
	case p.idHeader != "":
		h.Set(p.idHeader, eventID)
	default:
		h.Set(gitlabEventIDHeader, eventID)
		h.Set(gitlabIdemHeader, eventID)
	}
	h.Set(gitlabTokenHeader, secret)
	return h
}

// DefaultWindow is 72h: nothing time-bound is signed, and users can resend
// a recent event by hand from the hook's "Recent events" page days later.
func (gitlab) DefaultWindow() time.Duration { return 72 * time.Hour }

func (gitlab) CredentialHeaders() []string { return []string{gitlabTokenHeader} }

func (gitlab) GenerateSecret() (string, error) { return generateHex("") }

func (p gitlab) withEventIDHeader(name string) Profile { p.idHeader = name; return p }

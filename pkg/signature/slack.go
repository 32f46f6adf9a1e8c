package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

const (
	slackName            = "slack"
	slackSignatureHeader = "X-Slack-Signature"
	slackTimestampHeader = "X-Slack-Request-Timestamp"
	slackPrefix          = "v0="
	slackEventIDField    = "event_id"
	// slackSignatureIDPrefix marks an event id derived from the signature,
	// so that it can never be taken for an Events API event_id ("Ev…").
	slackSignatureIDPrefix = "v0sig:"
)

// slack is Slack's scheme: X-Slack-Signature "v0=<hex>" over
// "v0:" + X-Slack-Request-Timestamp + ":" + body. Events API deliveries carry
// "event_id" in their JSON body, the same across Slack's retries, and that is
// the event id. Deliveries without one (slash commands and interactivity
// payloads, form-encoded) get "v0sig:" + the first 32 lowercase hex digits
// of SHA-256 of the verified signature (38 bytes) as theirs.
//
// That id is what makes dedup cover replays: a captured slash command sent
// again within the tolerance carries the same timestamp, body and so
// signature, and is a duplicate instead of a new run. Slack retries neither
// slash commands nor interactivity, and each real request has a fresh
// timestamp and trigger_id, so two real requests never share it. The id is
// a hash of the signature rather than the signature itself because the
// event id is stored, shown and given to the job, while the signature is a
// credential header, stripped before the delivery is stored.
type slack struct {
	skew time.Duration
}

func (slack) Name() string { return slackName }

func (p slack) Verify(req Request, secrets []string, now time.Time) (string, error) {
	sigValue := req.Header.Get(slackSignatureHeader)
	ts := req.Header.Get(slackTimestampHeader)
	if sigValue == "" || ts == "" {
		return "", fmt.Errorf("%w: need headers %s and %s",
			ErrSignatureMissing, slackSignatureHeader, slackTimestampHeader)
	}
	sig, ok := parsePrefixedHex(sigValue, slackPrefix)
	if !ok {
		return "", fmt.Errorf("%w: header %s is not v0=<hex>", ErrSignatureInvalid, slackSignatureHeader)
	}
	unix, ok := parseUnix(ts)
	if !ok {
		return "", fmt.Errorf("%w: header %s is not unix seconds", ErrSignatureInvalid, slackTimestampHeader)
	}
	if err := verifyHMAC(secrets, rawKey, [][]byte{sig}, slackBase(ts), req.Body); err != nil {
		return "", fmt.Errorf("slack: %w", err)
	}
	if err := checkSkew(unix, now, p.skew); err != nil {
		return "", err
	}
	if id, ok := jsonStringField(req.Body, slackEventIDField); ok {
		return id, nil
	}
	return slackSignatureID(sig), nil
}

// slackSignatureID is the event id of a delivery without an event_id,
// derived from its verified signature (the decoded bytes, so that the case
// of the header's hex digits cannot make a replay look new). 128 bits of the
// hash are plenty to keep two requests apart within a dedup window.
func slackSignatureID(sig []byte) string {
	sum := sha256.Sum256(sig)
	return slackSignatureIDPrefix + hex.EncodeToString(sum[:16])
}

// SlackChallenge returns the challenge of a Slack Events API URL
// verification request ({"type": "url_verification", "challenge": ...}),
// which Slack sends, signed, when an app's request URL is set, and which it
// expects echoed back.
func SlackChallenge(body []byte) (string, bool) {
	if t, ok := jsonStringField(body, "type"); !ok || t != "url_verification" {
		return "", false
	}
	ch, ok := jsonStringField(body, "challenge")
	return ch, ok && ch != ""
}

// Sign ignores eventID: Slack's event id is the body's "event_id" field, or
// derived from the signature.
func (slack) Sign(body []byte, secret, _ string, now time.Time) http.Header {
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set(slackTimestampHeader, ts)
	h.Set(slackSignatureHeader, slackPrefix+hex.EncodeToString(sumSHA256([]byte(secret), slackBase(ts), body)))
	return h
}

// DefaultWindow is 1h: Slack retries a failed event three times within a few
// minutes (almost immediately, after 1 minute, after 5 minutes), and the
// signed timestamp already rejects anything older than the tolerance.
func (slack) DefaultWindow() time.Duration { return time.Hour }

func (slack) CredentialHeaders() []string { return []string{slackSignatureHeader} }

func (slack) GenerateSecret() (string, error) { return generateHex("") }

func (p slack) tolerance() time.Duration { return p.skew }

func (p slack) withTolerance(d time.Duration) Profile { p.skew = d; return p }

// slackBase returns "v0:<ts>:", the part of Slack's basestring before the body.
func slackBase(ts string) []byte {
	return []byte("v0:" + ts + ":")
}

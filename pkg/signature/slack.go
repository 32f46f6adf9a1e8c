package signature

import (
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
)

// slack is Slack's scheme: X-Slack-Signature "v0=<hex>" over
// "v0:" + X-Slack-Request-Timestamp + ":" + body. Events API deliveries carry
// "event_id" in their JSON body, the same across Slack's retries; slash
// commands and interactivity payloads (form-encoded) carry none, and then
// Verify returns "" and the ingress gives the delivery its own id.
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
	id, _ := jsonStringField(req.Body, slackEventIDField)
	return id, nil
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

// Sign ignores eventID: Slack's event id is the body's "event_id" field.
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

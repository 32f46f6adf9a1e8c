package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// keyFunc turns a configured secret into HMAC key bytes; false means the
// secret is unusable for the profile and is skipped.
type keyFunc func(secret string) ([]byte, bool)

// rawKey uses the secret's bytes as they are, as GitHub, Stripe, Slack and
// Shopify do. An empty secret is unusable: an HMAC under an empty key proves
// nothing.
func rawKey(secret string) ([]byte, bool) {
	return []byte(secret), secret != ""
}

// sumSHA256 returns HMAC-SHA256 under key of the concatenated parts, without
// copying the body into a joined buffer.
func sumSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// verifyHMAC reports, as an error, whether any candidate signature equals
// HMAC-SHA256 of parts under any usable secret. Every comparison is constant
// time; returning at the first match only reveals which one matched.
func verifyHMAC(secrets []string, key keyFunc, candidates [][]byte, parts ...[]byte) error {
	usable := false
	for _, s := range secrets {
		k, ok := key(s)
		if !ok {
			continue
		}
		usable = true
		want := sumSHA256(k, parts...)
		for _, c := range candidates {
			if hmac.Equal(want, c) {
				return nil
			}
		}
	}
	if !usable {
		return ErrInvalidSecret
	}
	return ErrSignatureInvalid
}

// parsePrefixedHex parses "<prefix><64 hex digits>", the form of generic and
// github ("sha256=") and slack ("v0=") signatures. It returns the 32 digest
// bytes, or false for anything else.
func parsePrefixedHex(v, prefix string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok || len(rest) != hex.EncodedLen(sha256.Size) {
		return nil, false
	}
	sum, err := hex.DecodeString(rest)
	if err != nil {
		return nil, false
	}
	return sum, true
}

// maxTimestampDigits keeps ParseInt well inside int64 and rejects absurd
// input early; unix seconds need 10 digits until the year 2286.
const maxTimestampDigits = 18

// parseUnix parses a unix-seconds timestamp made only of ASCII digits: no
// sign, space or fraction, so the string that was signed and the number that
// is checked cannot disagree.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > maxTimestampDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// checkSkew returns ErrTimestampOutOfTolerance when ts (unix seconds) is more
// than tol away from now in either direction.
func checkSkew(ts int64, now time.Time, tol time.Duration) error {
	if skew := now.Sub(time.Unix(ts, 0)).Abs(); skew > tol {
		if now.Sub(time.UnixMilli(ts)).Abs() <= tol {
			return fmt.Errorf("%w: %w", ErrTimestampOutOfTolerance, ErrTimestampInMilliseconds)
		}
		return fmt.Errorf("%w: signed timestamp is %s from now, tolerance %s",
			ErrTimestampOutOfTolerance, skew.Round(time.Second), tol)
	}
	return nil
}

// jsonStringField returns the string value of a top-level field of body when
// body is a JSON object holding it as a non-empty string. The name must match
// exactly: encoding/json's struct decoding would also accept "ID" for "id".
func jsonStringField(body []byte, name string) (string, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return "", false
	}
	raw, ok := obj[name]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return "", false
	}
	return s, true
}

// requireEventID returns the value of the event id header, or
// ErrMissingEventID naming the header when it is absent or empty.
func requireEventID(req Request, header string) (string, error) {
	id := req.Header.Get(header)
	if id == "" {
		return "", fmt.Errorf("%w: header %s is empty", ErrMissingEventID, header)
	}
	return id, nil
}

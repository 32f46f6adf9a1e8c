package executor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Headers of requests the executor sends (HTTP jobs and callbacks).
const (
	HeaderSignature = "X-Hookrun-Signature"
	HeaderTimestamp = "X-Hookrun-Timestamp"
	HeaderID        = "X-Hookrun-Id"
)

// Sign sets the Hookrun signature headers on h: X-Hookrun-Signature is
// "sha256=" + hex HMAC-SHA256 of body under secret (Workjet's output-channel
// signature), with the timestamp and an id for the receiver's dedup.
func Sign(h http.Header, body []byte, secret, id string, now time.Time) {
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderID, id)
	if secret == "" {
		return
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	h.Set(HeaderSignature, "sha256="+hex.EncodeToString(m.Sum(nil)))
}

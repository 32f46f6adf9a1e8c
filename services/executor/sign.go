package executor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/hookrun/hookrun/pkg/signature"
)

// Headers of requests the executor sends (HTTP jobs and callbacks).
const (
	HeaderSignature = "X-Hookrun-Signature"
	HeaderTimestamp = "X-Hookrun-Timestamp"
	HeaderID        = "X-Hookrun-Id"
)

// standardWebhooks signs as Standard Webhooks (Svix) do.
var standardWebhooks, _ = signature.Lookup("standard-webhooks")

// Sign sets the Hookrun signature headers on h: X-Hookrun-Signature is
// "sha256=" + hex HMAC-SHA256 of body under secret (Workjet's output-channel
// signature), with the timestamp and an id for the receiver's dedup.
//
// Workjet's signature covers the body only, so a captured request could be
// sent again later. With a Standard Webhooks secret ("whsec_<base64>", as a
// Secret of format standard-webhooks generates) the request is therefore
// also signed as Standard Webhooks specify (webhook-id, webhook-timestamp,
// webhook-signature "v1,<base64>" over id.timestamp.body): a receiver that
// checks that signature and the timestamp's age, as Svix's and Standard
// Webhooks' libraries do, refuses replays.
func Sign(h http.Header, body []byte, secret, id string, now time.Time) {
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderID, id)
	if secret == "" {
		return
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	h.Set(HeaderSignature, "sha256="+hex.EncodeToString(m.Sum(nil)))
	if signature.IsStandardSecret(secret) {
		for k, vs := range standardWebhooks.Sign(body, secret, id, now) {
			if _, set := h[k]; !set { // an HTTP job's own headers win
				h[k] = vs
			}
		}
	}
}

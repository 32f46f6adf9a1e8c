package executor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
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
	SignAll(h, body, []string{secret}, id, now)
}

// SignAll is Sign with every value of a secret that is valid now, the
// current first, then those replaced but still in their grace
// (catalog.SecretValues). X-Hookrun-Signature is the current value's: a
// header of one signature, as Workjet's and GitHub's are. Standard
// Webhooks' webhook-signature carries one "v1,…" for each Standard
// Webhooks value, space-separated, as their specification asks of a
// sender whose secret is being rotated: a receiver that has not taken the
// new value yet still verifies. The webhook-* headers are Hookrun's: an
// HTTP job's own webhook-id or webhook-timestamp would not be what was
// signed, so they are replaced.
func SignAll(h http.Header, body []byte, secrets []string, id string, now time.Time) {
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderID, id)
	if len(secrets) == 0 || secrets[0] == "" {
		return
	}
	m := hmac.New(sha256.New, []byte(secrets[0]))
	m.Write(body)
	h.Set(HeaderSignature, "sha256="+hex.EncodeToString(m.Sum(nil)))
	if !signature.IsStandardSecret(secrets[0]) {
		return
	}
	var sigs []string
	for _, s := range secrets {
		if !signature.IsStandardSecret(s) {
			continue
		}
		sh := standardWebhooks.Sign(body, s, id, now)
		for k, vs := range sh {
			if http.CanonicalHeaderKey(k) == "Webhook-Signature" {
				sigs = append(sigs, vs...)
			} else {
				h[http.CanonicalHeaderKey(k)] = vs
			}
		}
	}
	h.Set("Webhook-Signature", strings.Join(sigs, " "))
}

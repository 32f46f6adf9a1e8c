package signature

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
)

const (
	shopifyName            = "shopify"
	shopifySignatureHeader = "X-Shopify-Hmac-Sha256"
	shopifyEventIDHeader   = "X-Shopify-Webhook-Id"
	shopifyEventHeader     = "X-Shopify-Event-Id"
	shopifyTopicHeader     = "X-Shopify-Topic"
	// Shopify's Events deliveries (developer preview in 2026) name their
	// headers without the X- prefix, and have their duplicates recognised
	// by Shopify-Webhook-Id ("Verify Events deliveries").
	shopifyEventsSignatureHeader = "Shopify-Hmac-Sha256"
	shopifyEventsIDHeader        = "Shopify-Webhook-Id"
)

// shopify is Shopify's scheme: X-Shopify-Hmac-Sha256 is the base64
// HMAC-SHA256 of the raw body, with no prefix and no timestamp, so replay
// protection rests on deduplicating the event: X-Shopify-Event-Id (with the
// topic), which Shopify names for recognising duplicates, else
// X-Shopify-Webhook-Id, or the header a webhook names instead
// (WithEventIDHeader): idHeader. An Events delivery (Shopify-Hmac-Sha256,
// no X- prefix) is named by its Shopify-Webhook-Id.
type shopify struct {
	idHeader string
}

func (shopify) Name() string { return shopifyName }

func (p shopify) Verify(req Request, secrets []string, _ time.Time) (string, error) {
	sigHeader := shopifySignatureHeader
	sigValue := req.Header.Get(sigHeader)
	events := false
	if sigValue == "" {
		if v := req.Header.Get(shopifyEventsSignatureHeader); v != "" {
			sigHeader, sigValue, events = shopifyEventsSignatureHeader, v, true
		}
	}
	if sigValue == "" {
		return "", fmt.Errorf("%w: need header %s (or %s)", ErrSignatureMissing, shopifySignatureHeader, shopifyEventsSignatureHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(sigValue)
	if err != nil {
		return "", fmt.Errorf("%w: header %s is not base64", ErrSignatureInvalid, sigHeader)
	}
	if err := verifyHMAC(secrets, rawKey, [][]byte{sig}, req.Body); err != nil {
		return "", fmt.Errorf("shopify: %w", err)
	}
	if events && p.idHeader == "" {
		return requireEventID(req, shopifyEventsIDHeader)
	}
	if p.idHeader == "" {
		// "The same X-Shopify-Event-Id across more than one webhook
		// indicates a duplicate" (Shopify, "Ignore duplicate webhooks"):
		// a webhook delivery's own X-Shopify-Webhook-Id is not promised to
		// stay the same for every delivery of one event. The topic keeps
		// apart deliveries of one event to several topics, should Shopify
		// send such.
		if id := req.Header.Get(shopifyEventHeader); id != "" {
			if topic := req.Header.Get(shopifyTopicHeader); topic != "" {
				return id + ":" + topic, nil
			}
			return id, nil
		}
	}
	return requireEventID(req, p.eventIDHeader())
}

func (p shopify) Sign(body []byte, secret, eventID string, _ time.Time) http.Header {
	h := http.Header{}
	if eventID != "" {
		h.Set(p.eventIDHeader(), eventID)
	}
	h.Set(shopifySignatureHeader, base64.StdEncoding.EncodeToString(sumSHA256([]byte(secret), body)))
	return h
}

// DefaultWindow is 48h, covering Shopify's retry schedule (at most 48 hours
// in its older documentation, a few hours in the newer).
func (shopify) DefaultWindow() time.Duration { return 48 * time.Hour }

func (shopify) CredentialHeaders() []string {
	return []string{shopifySignatureHeader, shopifyEventsSignatureHeader}
}

func (shopify) GenerateSecret() (string, error) { return generateHex("") }

func (p shopify) eventIDHeader() string { return cmp.Or(p.idHeader, shopifyEventIDHeader) }

func (p shopify) withEventIDHeader(name string) Profile { p.idHeader = name; return p }

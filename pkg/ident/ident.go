// Package ident makes Hookrun's identifiers: random ones (deliveries,
// endpoints, resource uids) and derived ones (runs), so that the ingress can
// answer with an executionId at once and a duplicate answers the first one's.
package ident

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
)

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Random returns prefix followed by n random bytes in lower-case base32.
func Random(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + enc.EncodeToString(b)
}

// NewDeliveryID returns a new delivery id (96 random bits).
func NewDeliveryID() string { return Random("dlv_", 12) }

// NewEndpointID returns a new endpoint id: 160 random bits, unguessable, so
// the URL alone can be the credential (Workjet's secret URL).
func NewEndpointID() string { return Random(EndpointPrefix, 20) }

// EndpointPrefix starts every endpoint id.
const EndpointPrefix = "ep_"

// NewUID returns a resource uid.
func NewUID() string { return Random("", 10) }

// RunID derives the run id of an event of a webhook. webhookUID changes when
// a webhook is recreated, so a new webhook of the same name starts afresh;
// replayOf (a delivery id) makes a replay a new run.
func RunID(webhookUID, eventID, replayOf string) string {
	h := sha256.New()
	h.Write([]byte(webhookUID))
	h.Write([]byte{0})
	h.Write([]byte(eventID))
	if replayOf != "" {
		h.Write([]byte{0})
		h.Write([]byte(replayOf))
	}
	return "run_" + enc.EncodeToString(h.Sum(nil)[:16])
}

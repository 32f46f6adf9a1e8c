// Package dedup records which events of a webhook have already triggered a
// run, so each event id triggers at most one inside its window.
//
// A claim records key with its owner, the delivery that claimed it, for the
// webhook's window (see Window). A redelivery of the same delivery after a
// crash finds its own owner and continues (Continued); a different delivery
// with the same event id finds another owner (Duplicate). Two stores satisfy
// the same contract: Redis (production) and NATS KV with per-key TTL
// (`hookrun dev` without Redis).
package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// Result is the outcome of a claim.
type Result int

const (
	// Claimed: this owner is the first; go on.
	Claimed Result = iota + 1
	// Continued: this owner had already claimed it (a redelivery); go on.
	Continued
	// Duplicate: another owner claimed it inside the window.
	Duplicate
)

func (r Result) String() string {
	switch r {
	case Claimed:
		return "claimed"
	case Continued:
		return "continued"
	case Duplicate:
		return "duplicate"
	}
	return "unknown"
}

// Request is one claim of a batch.
type Request struct {
	Key   string
	Owner string
	TTL   time.Duration
}

// Window is the dedup window of webhook w: its own, else its signature
// profile's default, else def (HOOKRUN_DEDUP_WINDOW). The dispatcher claims
// for it and the ingress looks up with it.
func Window(w *resource.Webhook, def time.Duration) time.Duration {
	if w.Spec.DedupWindow > 0 {
		return w.Spec.DedupWindow.D()
	}
	if s := w.Spec.Auth.Signature; s != nil {
		if p, ok := signature.Lookup(s.Profile); ok {
			return p.DefaultWindow()
		}
	}
	return def
}

// Key returns the dedup key of an event of a webhook. The event id is hashed
// so that key size is bounded whatever the sender sends; 96 bits of SHA-256
// keep collisions out of reach for any realistic window.
func Key(webhookUID, eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "d." + webhookUID + "." + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Store is what both implementations provide.
type Store interface {
	// Claim claims key for owner for ttl.
	Claim(ctx context.Context, key, owner string, ttl time.Duration) (Result, error)
	// ClaimBatch claims many keys in one round trip where the store allows.
	ClaimBatch(ctx context.Context, reqs []Request) ([]Result, error)
	// Lookup returns the owner of key, claimed for window, or found=false.
	Lookup(ctx context.Context, key string, window time.Duration) (owner string, found bool, err error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// QueuedWithinWindow reports whether run record r was queued (received,
// for a record without its queue time) within window of now: its
// delivery's dedup claim, made when it was queued, would still be held,
// so the event's deliveries now are that run's duplicates. The dispatcher
// and the ingress (its answer to a duplicate) judge by it alike.
func QueuedWithinWindow(r *message.Run, now time.Time, window time.Duration) bool {
	at := r.WebhookReceivedAt
	if r.QueuedAt != nil {
		at = *r.QueuedAt
	}
	return !at.IsZero() && now.Sub(at) < window
}

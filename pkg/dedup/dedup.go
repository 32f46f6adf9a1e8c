// Package dedup records which events of a webhook have already triggered a
// run, so each event id triggers at most one inside its window.
//
// The claim is `SET key owner NX PX window`, where owner is the delivery
// that claimed it. A redelivery of the same delivery after a crash finds its
// own owner and continues (Continued); a different delivery with the same
// event id finds another owner (Duplicate). Two stores satisfy the same
// contract: Redis (production) and NATS KV with per-key TTL (`hookrun dev`
// without Redis).
package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"time"
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
	// Lookup returns the owner of key, or found=false.
	Lookup(ctx context.Context, key string) (owner string, found bool, err error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

package dedup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV is a Store on a NATS KV bucket with per-key TTL (the bucket needs
// LimitMarkerTTL set; see bus.BucketConfigs). It is meant for `hookrun dev`
// and small installations: claims are made one by one, and JetStream keeps
// per-message TTLs in whole seconds, so a window is rounded up to the next
// second (at least one).
type KV struct{ kv jetstream.KeyValue }

// NewKV returns a KV store over bucket.
func NewKV(kv jetstream.KeyValue) *KV { return &KV{kv: kv} }

// Claim creates key with owner; when it exists, compares the owner.
func (s *KV) Claim(ctx context.Context, key, owner string, ttl time.Duration) (Result, error) {
	// A key can expire between a failed Create and the Get that reads its
	// owner; then the claim is tried again, a bounded number of times.
	for range 3 {
		_, err := s.kv.Create(ctx, key, []byte(owner), jetstream.KeyTTL(kvTTL(ttl)))
		if err == nil {
			return Claimed, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("dedup claim: %w", err)
		}
		prev, found, err := s.Lookup(ctx, key, ttl)
		if err != nil {
			return 0, err
		}
		if !found {
			continue
		}
		if prev == owner {
			return Continued, nil
		}
		return Duplicate, nil
	}
	return 0, errors.New("dedup claim: key keeps expiring under the claim")
}

// kvTTL rounds ttl up to whole seconds, the unit JetStream keeps.
func kvTTL(ttl time.Duration) time.Duration {
	if ttl < time.Second {
		return time.Second
	}
	return (ttl + time.Second - 1).Truncate(time.Second)
}

// ClaimBatch claims one by one (KV has no pipeline).
func (s *KV) ClaimBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	out := make([]Result, len(reqs))
	for i, q := range reqs {
		r, err := s.Claim(ctx, q.Key, q.Owner, q.TTL)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// Lookup returns the owner of key (whatever its window: a KV key carries
// its own TTL).
func (s *KV) Lookup(ctx context.Context, key string, _ time.Duration) (string, bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("dedup lookup: %w", err)
	}
	return string(e.Value()), true, nil
}

// Ping reports whether the bucket answers.
func (s *KV) Ping(ctx context.Context) error {
	_, err := s.kv.Status(ctx)
	return err
}

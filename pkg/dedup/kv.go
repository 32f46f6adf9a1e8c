package dedup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV is a Store on a NATS KV bucket with per-key TTL (the bucket needs
// LimitMarkerTTL set; see bus.BucketConfigs).
type KV struct{ kv jetstream.KeyValue }

// NewKV returns a KV store over bucket.
func NewKV(kv jetstream.KeyValue) *KV { return &KV{kv: kv} }

// Claim creates key with owner; when it exists, compares the owner.
func (s *KV) Claim(ctx context.Context, key, owner string, ttl time.Duration) (Result, error) {
	_, err := s.kv.Create(ctx, key, []byte(owner), jetstream.KeyTTL(ttl))
	if err == nil {
		return Claimed, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("dedup claim: %w", err)
	}
	prev, found, err := s.Lookup(ctx, key)
	if err != nil {
		return 0, err
	}
	if !found {
		// Expired between Create and Get: try once more.
		return s.Claim(ctx, key, owner, ttl)
	}
	if prev == owner {
		return Continued, nil
	}
	return Duplicate, nil
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

// Lookup returns the owner of key.
func (s *KV) Lookup(ctx context.Context, key string) (string, bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(e.Value()), true, nil
}

// Ping reports whether the bucket answers.
func (s *KV) Ping(ctx context.Context) error {
	_, err := s.kv.Status(ctx)
	return err
}

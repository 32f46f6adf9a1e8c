package dedup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store on Redis. It takes a UniversalClient so that a single
// node, Sentinel and Cluster all work.
type Redis struct{ c redis.UniversalClient }

// NewRedis returns a Redis store.
func NewRedis(c redis.UniversalClient) *Redis { return &Redis{c: c} }

// Claim runs `SET key owner NX PX ttl GET`: one round trip that both claims
// and, when the key exists, returns its owner.
func (r *Redis) Claim(ctx context.Context, key, owner string, ttl time.Duration) (Result, error) {
	res, err := r.ClaimBatch(ctx, []Request{{Key: key, Owner: owner, TTL: ttl}})
	if err != nil {
		return 0, err
	}
	return res[0], nil
}

// ClaimBatch pipelines the claims of a batch: one round trip whatever its
// size (go-redis splits the pipeline per node on a Cluster).
func (r *Redis) ClaimBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	cmds := make([]*redis.StatusCmd, len(reqs))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range reqs {
			// PX needs a positive value: a window under a millisecond is one.
			ttl := max(q.TTL, time.Millisecond)
			cmds[i] = p.SetArgs(ctx, q.Key, q.Owner, redis.SetArgs{Mode: "NX", TTL: ttl, Get: true})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dedup claim: %w", err)
	}
	out := make([]Result, len(reqs))
	for i, cmd := range cmds {
		prev, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i] = Claimed
		case err != nil:
			return nil, fmt.Errorf("dedup claim: %w", err)
		case prev == reqs[i].Owner:
			out[i] = Continued
		default:
			out[i] = Duplicate
		}
	}
	return out, nil
}

// Lookup returns the owner of key.
func (r *Redis) Lookup(ctx context.Context, key string) (string, bool, error) {
	v, err := r.c.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

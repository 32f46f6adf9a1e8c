package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisKey is the key of a claim in the plain encoding (a Redis Cluster):
// "d" and 13 bytes (104 bits) of its SHA-256, binary. With its one-byte
// header and terminator the key fits jemalloc's 16-byte class.
func RedisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "d" + string(sum[:13])
}

// RedisOwner is how an owner is stored in Redis: 63 bits of its SHA-256 in
// decimal, which Redis keeps as an integer (inside the value object of a
// plain key, in 8 bytes of a bucket's listpack). Two deliveries collide with
// probability 2^-63.
func RedisOwner(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return strconv.FormatUint(binary.BigEndian.Uint64(sum[:8])>>1, 10)
}

// IsOwner reports whether stored, an owner a Lookup returned from either
// store, is owner.
func IsOwner(stored, owner string) bool {
	return stored == owner || stored == RedisOwner(owner)
}

// Redis is a Store on Redis. It takes a UniversalClient so that a single
// node, Sentinel and Cluster all work.
//
// On a single node or Sentinel, claims are kept in buckets (bucketScript): a
// claim is a 12-byte field and an integer owner in a small hash, about 30
// bytes of Redis memory where a key of its own costs about 115, most of it
// Redis' per-key and expiry bookkeeping. A claim then holds between its
// window and one and a half windows (a bucket expires as a whole).
//
// On a Redis Cluster a bucket's keys would all live on one node, so there
// each claim is a key of its own, `SET key owner NX PX window GET`, held
// exactly its window.
//
// Lookups return the stored owner; compare it with IsOwner.
type Redis struct {
	c         redis.UniversalClient
	bucketed  bool
	minShards int
}

// MinBucketShards is the number of hashes a bucket starts with. A bucket
// whose previous one averaged more than 64 claims per hash gets twice as
// many (and so on), so a hash stays under Redis' 128-entry listpack limit at
// any rate; 4096 keeps a first bucket compact up to about 400k claims.
const MinBucketShards = 4096

// NewRedis returns a Redis store.
func NewRedis(c redis.UniversalClient) *Redis {
	_, cluster := c.(*redis.ClusterClient)
	return &Redis{c: c, bucketed: !cluster, minShards: MinBucketShards}
}

// NewRedisPlain returns a Redis store that keeps each claim as a key of its
// own, as on a Cluster.
func NewRedisPlain(c redis.UniversalClient) *Redis { return &Redis{c: c} }

// bucketScript claims (ARGV[1] "c") or looks up (ARGV[1] "l") keys. ARGV[2]
// is the minimum shard count; then, per key, its window in ms, its selector
// (a uint32), its 12-byte field and, for a claim, its owner.
//
// Time is Redis' own (TIME), so every client agrees on the buckets whatever
// its clock. A window W has buckets of W/2 (w): bucket b holds the claims
// made in [b·w, (b+1)·w), lives until (b+3)·w, and a key is looked for in
// the buckets b, b-1 and b-2 of now, so a claim is seen for at least W and
// at most 1.5·W. Bucket b is "D<W>:<b>", holding its shard count n; shard s
// is the hash "D<W>:<b>:<s>", the key's shard being selector mod n. The
// first claim of a bucket fixes n: the previous bucket's n, doubled while its
// first hashes average over 64 entries, halved (not under the minimum) while
// under 16.
var bucketScript = redis.NewScript(`
local mode, minShards = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = {}
local function name(pre, x) return pre .. string.format('%d', x) end
local function shards(pre, x, w, create)
  local k = name(pre, x)
  local n = known[k]
  if n == nil then
    local v = redis.call('GET', k)
    n = v and tonumber(v) or false
    known[k] = n
  end
  if n or not create then return n end
  n = minShards
  local p = shards(pre, x - 1, w, false)
  if p then
    local sample = math.min(p, 4)
    local m = 0
    for s = 0, sample - 1 do m = m + redis.call('HLEN', name(pre, x - 1) .. ':' .. s) end
    m = m / sample
    n = p
    while m > 64 and n < 16777216 do n = n * 2; m = m / 2 end
    while m < 16 and n > minShards do n = n / 2; m = m * 2 end
    if n < minShards then n = minShards end
  end
  redis.call('SET', k, n, 'PXAT', (x + 3) * w)
  known[k] = n
  return n
end
local res = {}
local i = 3
while i <= #ARGV do
  local W = tonumber(ARGV[i])
  local sel, f = tonumber(ARGV[i + 1]), ARGV[i + 2]
  local w = math.max(1, math.floor(W / 2))
  local b = math.floor(now / w)
  local pre = 'D' .. ARGV[i] .. ':'
  local found = false
  for x = b, b - 2, -1 do
    local n = shards(pre, x, w, false)
    if n then
      local v = redis.call('HGET', name(pre, x) .. ':' .. string.format('%d', sel % n), f)
      if v then found = v; break end
    end
  end
  if mode == 'l' then
    res[#res + 1] = found
    i = i + 3
  else
    local o = ARGV[i + 3]
    if not found then
      local k = name(pre, b) .. ':' .. string.format('%d', sel % shards(pre, b, w, true))
      redis.call('HSET', k, f, o)
      if redis.call('HLEN', k) == 1 then redis.call('PEXPIREAT', k, (b + 3) * w) end
      res[#res + 1] = 1
    elseif found == o then
      res[#res + 1] = 2
    else
      res[#res + 1] = 3
    end
    i = i + 4
  end
end
return res
`)

// bucketArgs appends a key's window, selector and field to args.
func bucketArgs(args []any, key string, window time.Duration) []any {
	sum := sha256.Sum256([]byte(key))
	ms := max(window.Milliseconds(), 1)
	return append(args, strconv.FormatInt(ms, 10), strconv.FormatUint(uint64(binary.BigEndian.Uint32(sum[:4])), 10), string(sum[4:16]))
}

// Claim claims key for owner for ttl; see ClaimBatch.
func (r *Redis) Claim(ctx context.Context, key, owner string, ttl time.Duration) (Result, error) {
	res, err := r.ClaimBatch(ctx, []Request{{Key: key, Owner: owner, TTL: ttl}})
	if err != nil {
		return 0, err
	}
	return res[0], nil
}

// ClaimBatch claims a batch in one round trip: one script call in buckets,
// else a pipeline of `SET NX PX GET` (go-redis splits it per node on a
// Cluster).
func (r *Redis) ClaimBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if !r.bucketed {
		return r.claimPlain(ctx, reqs)
	}
	args := make([]any, 0, 2+4*len(reqs))
	args = append(args, "c", r.minShards)
	for _, q := range reqs {
		args = append(bucketArgs(args, q.Key, q.TTL), RedisOwner(q.Owner))
	}
	vals, err := bucketScript.Run(ctx, r.c, nil, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("dedup claim: %w", err)
	}
	if len(vals) != len(reqs) {
		return nil, fmt.Errorf("dedup claim: %d answers to %d claims", len(vals), len(reqs))
	}
	out := make([]Result, len(reqs))
	for i, v := range vals {
		out[i] = Result(v) // the script answers 1, 2, 3: Claimed, Continued, Duplicate
	}
	return out, nil
}

func (r *Redis) claimPlain(ctx context.Context, reqs []Request) ([]Result, error) {
	cmds := make([]*redis.StatusCmd, len(reqs))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range reqs {
			// PX needs a positive value: a window under a millisecond is one.
			ttl := max(q.TTL, time.Millisecond)
			cmds[i] = p.SetArgs(ctx, RedisKey(q.Key), RedisOwner(q.Owner), redis.SetArgs{Mode: "NX", TTL: ttl, Get: true})
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
		case prev == RedisOwner(reqs[i].Owner):
			out[i] = Continued
		default:
			out[i] = Duplicate
		}
	}
	return out, nil
}

// Lookup returns the owner of key, claimed for window.
func (r *Redis) Lookup(ctx context.Context, key string, window time.Duration) (string, bool, error) {
	owners, found, err := r.LookupMany(ctx, []Request{{Key: key, TTL: window}})
	if err != nil {
		return "", false, err
	}
	return owners[0], found[0], nil
}

// LookupMany returns the owners of the requests' keys (each claimed for its
// TTL) in one round trip: owners[i] is "" and found[i] false where a key is
// not claimed.
func (r *Redis) LookupMany(ctx context.Context, reqs []Request) (owners []string, found []bool, err error) {
	var vals []any
	if r.bucketed {
		args := make([]any, 0, 2+3*len(reqs))
		args = append(args, "l", r.minShards)
		for _, q := range reqs {
			args = bucketArgs(args, q.Key, q.TTL)
		}
		vals, err = bucketScript.Run(ctx, r.c, nil, args...).Slice()
	} else {
		rkeys := make([]string, len(reqs))
		for i, q := range reqs {
			rkeys[i] = RedisKey(q.Key)
		}
		vals, err = r.c.MGet(ctx, rkeys...).Result()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("dedup lookup: %w", err)
	}
	owners, found = make([]string, len(reqs)), make([]bool, len(reqs))
	for i, v := range vals {
		if i >= len(reqs) {
			break
		}
		switch s := v.(type) {
		case string:
			owners[i], found[i] = s, true
		case int64: // an owner Redis kept as an integer
			owners[i], found[i] = strconv.FormatInt(s, 10), true
		}
	}
	return owners, found, nil
}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

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
	nowMS     func() int64 // tests only: the time the script uses instead of Redis' TIME
}

// MinBucketShards is the least number of hashes a bucket's first level
// has; a busy bucket adds levels, and the next one starts with as many
// hashes as the previous one's claims need (see bucketScript).
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
// is the minimum shard count, ARGV[3] the time in ms ("": Redis' TIME; set
// by tests only); then, per key, its window in ms, its selector (a uint32),
// its 12-byte field and, for a claim, its owner.
//
// Time is Redis' own (TIME), so every client agrees on the buckets whatever
// its clock. A window W has buckets of W/2 (w): bucket b holds the claims
// made in [b·w, (b+1)·w) and lives until (b+3)·w; a key is looked for in
// the buckets b+1 (a clock stepped back), b, b-1 and b-2 of now, so a claim
// is seen for at least W and at most 1.5·W.
//
// Bucket b is "D<W>:<b>", holding its levels: shard counts, oldest first,
// comma-separated. Shard s of level n is the hash "D<W>:<b>:<n>:<s>", a
// key's shard being its selector mod n; a key is looked for in every level
// and claimed in the last. The first claim of a bucket sets its first level
// from the previous bucket's claims (about 48 per hash, the minimum at
// least); a hash past 100 entries adds a level 16 times larger, so hashes
// stay under Redis' 128-entry listpack limit at any rate.
//
// The hash "Dw" registers the windows in use, each with the time its last
// claim expires. A key not found under its own window is looked for under
// every other registered one: a claim holds for the window it was made
// with even when the webhook's window has changed since (or two processes
// disagree on it), as a key with that TTL would.
var bucketScript = redis.NewScript(`
local mode, minShards = ARGV[1], math.max(1, tonumber(ARGV[2]) or 1)
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(x) return string.format('%d', x) end
local cache = {}
local function levels(pre, x)
  local k = pre .. fmt(x)
  local l = cache[k]
  if l == nil then
    l = false
    local v = redis.call('GET', k)
    if v then
      l = {}
      for n in string.gmatch(v, '%d+') do l[#l + 1] = tonumber(n) end
    end
    cache[k] = l
  end
  return l, k
end
local function shard(bk, n, sel) return bk .. ':' .. fmt(n) .. ':' .. fmt(sel % n) end
local function span(W)
  local w = math.max(1, math.floor(tonumber(W) / 2))
  return w, math.floor(now / w), 'D' .. W .. ':'
end
local function lookupIn(W, sel, f)
  local w, b, pre = span(W)
  for x = b + 1, b - 2, -1 do
    local l, bk = levels(pre, x)
    if l then
      for j = #l, 1, -1 do
        local v = redis.call('HGET', shard(bk, l[j], sel), f)
        if v then return v end
      end
    end
  end
  return false
end
local reg
local function lookup(W, sel, f)
  local v = lookupIn(W, sel, f)
  if v then return v end
  if reg == nil then
    reg = {}
    local all = redis.call('HGETALL', 'Dw')
    for j = 1, #all, 2 do
      if (tonumber(all[j + 1]) or 0) > now then
        reg[#reg + 1] = all[j]
      elseif mode == 'c' then
        redis.call('HDEL', 'Dw', all[j])
      end
    end
  end
  for _, o in ipairs(reg) do
    if o ~= W then
      v = lookupIn(o, sel, f)
      if v then return v end
    end
  end
  return false
end
local registered = {}
local function claim(W, sel, f, o)
  local w, b, pre = span(W)
  local expiry = (b + 3) * w
  if not registered[W] then
    registered[W] = true
    local cur = tonumber(redis.call('HGET', 'Dw', W) or '')
    if not cur or cur < expiry then redis.call('HSET', 'Dw', W, fmt(expiry)) end
    if reg then -- already read by this call: later keys of the batch must see W too
      local known = false
      for _, o in ipairs(reg) do known = known or o == W end
      if not known then reg[#reg + 1] = W end
    end
  end
  local l, bk = levels(pre, b)
  if not l then
    local n = minShards
    local p, pk = levels(pre, b - 1)
    if p then
      local total = 0
      for j = 1, #p do
        local s, m = math.min(p[j], 4), 0
        for i = 0, s - 1 do m = m + redis.call('HLEN', pk .. ':' .. fmt(p[j]) .. ':' .. fmt(i)) end
        total = total + p[j] * m / s
      end
      while n * 48 < total and n < 16777216 do n = n * 2 end
    end
    l = {n}
    cache[bk] = l
    redis.call('SET', bk, fmt(n), 'PXAT', expiry)
  end
  local n = l[#l]
  local k = shard(bk, n, sel)
  redis.call('HSET', k, f, o)
  local len = redis.call('HLEN', k)
  if len == 1 then redis.call('PEXPIREAT', k, expiry) end
  if len > 100 and n < 16777216 then
    l[#l + 1] = n * 16
    local parts = {}
    for j = 1, #l do parts[j] = fmt(l[j]) end
    redis.call('SET', bk, table.concat(parts, ','), 'PXAT', expiry)
  end
end
local res = {}
local i = 4
while i <= #ARGV do
  local W, sel, f = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local found = lookup(W, sel, f)
  if mode == 'l' then
    res[#res + 1] = found
    i = i + 3
  else
    local o = ARGV[i + 3]
    if not found then
      claim(W, sel, f, o)
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

// now is the script's time argument: empty, for Redis' own clock, but in
// tests.
func (r *Redis) now() string {
	if r.nowMS == nil {
		return ""
	}
	return strconv.FormatInt(r.nowMS(), 10)
}

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
	args := make([]any, 0, 3+4*len(reqs))
	args = append(args, "c", r.minShards, r.now())
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
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	var vals []any
	if r.bucketed {
		args := make([]any, 0, 3+3*len(reqs))
		args = append(args, "l", r.minShards, r.now())
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
	if len(vals) != len(reqs) {
		return nil, nil, fmt.Errorf("dedup lookup: %d answers to %d keys", len(vals), len(reqs))
	}
	owners, found = make([]string, len(reqs)), make([]bool, len(reqs))
	for i, v := range vals {
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

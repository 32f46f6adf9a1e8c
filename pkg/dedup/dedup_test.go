package dedup_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// stores returns both implementations on real servers.
func stores(t *testing.T) map[string]dedup.Store {
	t.Helper()
	_, js := testenv.StartNATS(t).Connect()
	kv, err := js.KeyValue(context.Background(), bus.BucketDedup)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]dedup.Store{"redis": dedup.NewRedis(testenv.Redis(t)), "kv": dedup.NewKV(kv)}
}

func TestStore_ClaimContinueDuplicate(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := dedup.Key(ident.NewUID(), "evt-1")
			steps := []struct {
				owner string
				want  dedup.Result
			}{
				{"dlv_a", dedup.Claimed},   // first delivery of the event
				{"dlv_a", dedup.Continued}, // the same delivery, redelivered after a crash
				{"dlv_b", dedup.Duplicate}, // another delivery of the same event
			}
			for _, st := range steps {
				got, err := s.Claim(ctx, key, st.owner, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if got != st.want {
					t.Fatalf("claim by %s = %v, want %v", st.owner, got, st.want)
				}
			}
			owner, found, err := s.Lookup(ctx, key)
			if err != nil || !found || !dedup.IsOwner(owner, "dlv_a") || dedup.IsOwner(owner, "dlv_b") {
				t.Fatalf("lookup = %q %v %v, want dlv_a", owner, found, err)
			}
			if _, found, _ := s.Lookup(ctx, dedup.Key(ident.NewUID(), "never")); found {
				t.Fatal("lookup of an unknown key found an owner")
			}
		})
	}
}

func TestStore_ClaimBatchMixesOutcomes(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			uid := ident.NewUID()
			if _, err := s.Claim(ctx, dedup.Key(uid, "seen"), "dlv_old", time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Claim(ctx, dedup.Key(uid, "mine"), "dlv_2", time.Hour); err != nil {
				t.Fatal(err)
			}
			reqs := []dedup.Request{
				{Key: dedup.Key(uid, "new"), Owner: "dlv_1", TTL: time.Hour},
				{Key: dedup.Key(uid, "mine"), Owner: "dlv_2", TTL: time.Hour},
				{Key: dedup.Key(uid, "seen"), Owner: "dlv_3", TTL: time.Hour},
				{Key: dedup.Key(uid, "new"), Owner: "dlv_4", TTL: time.Hour}, // same event later in the batch
			}
			got, err := s.ClaimBatch(ctx, reqs)
			if err != nil {
				t.Fatal(err)
			}
			want := []dedup.Result{dedup.Claimed, dedup.Continued, dedup.Duplicate, dedup.Duplicate}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("batch = %v, want %v", got, want)
			}
		})
	}
}

func TestStore_ClaimExpiresWithItsWindow(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := dedup.Key(ident.NewUID(), "evt")
			window := 200 * time.Millisecond
			if name == "kv" {
				window = time.Second // JetStream's TTL unit
			}
			if r, _ := s.Claim(ctx, key, "dlv_a", window); r != dedup.Claimed {
				t.Fatalf("first claim = %v", r)
			}
			if r, _ := s.Claim(ctx, key, "dlv_b", window); r != dedup.Duplicate {
				t.Fatalf("claim inside the window = %v, want duplicate", r)
			}
			testenv.Eventually(t, 5*time.Second, func() error {
				r, err := s.Claim(ctx, key, "dlv_b", window)
				if err != nil {
					return err
				}
				if r != dedup.Claimed {
					return fmt.Errorf("claim after the window = %v, want claimed", r)
				}
				return nil
			})
		})
	}
}

func TestRedis_ClaimSetsTheWindowAsTTL(t *testing.T) {
	c := testenv.Redis(t)
	s := dedup.NewRedis(c)
	ctx := context.Background()
	for _, window := range []time.Duration{24 * time.Hour, 72 * time.Hour, 1500 * time.Millisecond} {
		key := dedup.Key(ident.NewUID(), "evt")
		t.Cleanup(func() { c.Del(context.Background(), key) })
		if _, err := s.Claim(ctx, key, "dlv", window); err != nil {
			t.Fatal(err)
		}
		ttl, err := c.PTTL(ctx, dedup.RedisKey(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl > window || ttl < window-2*time.Second {
			t.Fatalf("PTTL = %s, want about %s", ttl, window)
		}
	}
}

func TestRedis_UnreachableIsAnError(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	s := dedup.NewRedis(c)
	ctx := context.Background()
	if _, err := s.ClaimBatch(ctx, []dedup.Request{{Key: "k", Owner: "o", TTL: time.Second}}); err == nil {
		t.Fatal("claim against an unreachable Redis succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping of an unreachable Redis succeeded")
	}
}

func TestKey_IsBoundedAndSubjectSafe(t *testing.T) {
	uid := ident.NewUID()
	short, long := dedup.Key(uid, "a"), dedup.Key(uid, strings.Repeat("x", 100_000))
	if len(short) != len(long) || len(long) > 64 {
		t.Fatalf("key lengths %d and %d, want equal and small", len(short), len(long))
	}
	if dedup.Key(uid, "a") != short || dedup.Key(uid, "b") == short || dedup.Key(ident.NewUID(), "a") == short {
		t.Fatal("keys must be stable per (webhook, event) and differ otherwise")
	}
	for _, tok := range strings.Split(long, ".") {
		if !bus.SafeToken(tok) {
			t.Fatalf("key %q is not a valid KV key", long)
		}
	}
}

// The Redis encoding keeps a claim small: a 14-byte key and an owner Redis
// stores as an integer. Measured on the Redis under test, a claim with its
// expiry costs well under the 160 bytes of the readable encoding.
func TestRedis_ClaimIsCompact(t *testing.T) {
	k := dedup.RedisKey(dedup.Key(ident.NewUID(), "evt-1"))
	if len(k) != 14 {
		t.Fatalf("Redis key is %d bytes, want 14", len(k))
	}
	o := dedup.RedisOwner(ident.NewDeliveryID())
	if _, err := strconv.ParseInt(o, 10, 64); err != nil || o[0] == '0' {
		t.Fatalf("Redis owner %q is not a canonical int64 (Redis would store it as a string)", o)
	}
	if dedup.RedisOwner("dlv_a") == dedup.RedisOwner("dlv_b") {
		t.Fatal("distinct owners encode alike")
	}

	rdb := testenv.Redis(t)
	ctx := context.Background()
	s := dedup.NewRedis(rdb)
	key := dedup.Key(ident.NewUID(), "probe") // a fresh webhook uid: the Redis may be shared
	if res, err := s.Claim(ctx, key, "dlv_probe", time.Hour); err != nil || res != dedup.Claimed {
		t.Fatalf("claim: %v %v", res, err)
	}
	enc, err := rdb.ObjectEncoding(ctx, dedup.RedisKey(key)).Result()
	if err != nil || enc != "int" {
		t.Fatalf("owner stored with encoding %q (%v), want int", enc, err)
	}
}

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
	rdb := testenv.Redis(t)
	return map[string]dedup.Store{"redis": dedup.NewRedis(rdb), "redis-plain": dedup.NewRedisPlain(rdb), "kv": dedup.NewKV(kv)}
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
			owner, found, err := s.Lookup(ctx, key, time.Hour)
			if err != nil || !found || !dedup.IsOwner(owner, "dlv_a") || dedup.IsOwner(owner, "dlv_b") {
				t.Fatalf("lookup = %q %v %v, want dlv_a", owner, found, err)
			}
			if _, found, _ := s.Lookup(ctx, dedup.Key(ident.NewUID(), "never"), time.Hour); found {
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

// A claim holds for the window it was made with, whatever window another
// delivery of the event is claimed with (a webhook's window edited, or two
// processes disagreeing on it).
func TestStore_ClaimHoldsWhateverWindowTheNextClaimUses(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := dedup.Key(ident.NewUID(), "evt")
			for _, st := range []struct {
				owner  string
				window time.Duration
				want   dedup.Result
			}{
				{"dlv_a", 24 * time.Hour, dedup.Claimed},
				{"dlv_b", 72 * time.Hour, dedup.Duplicate},
				{"dlv_a", time.Hour, dedup.Continued},
			} {
				if got, err := s.Claim(ctx, key, st.owner, st.window); err != nil || got != st.want {
					t.Fatalf("claim by %s for %s = %v %v, want %v", st.owner, st.window, got, err, st.want)
				}
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

// A claim is held at least its window, and (in buckets) at most half a
// window longer; a plain key exactly its window. The window is long enough
// that the slack a loaded machine needs stays under half a window: a claim
// held a whole window too long still fails.
func TestRedis_ClaimIsHeldForItsWindowAndNotMuchLonger(t *testing.T) {
	rdb := testenv.Redis(t)
	window := 3 * time.Second
	const slack = time.Second
	for name, c := range map[string]struct {
		s       *dedup.Redis
		longest time.Duration
	}{
		"buckets":    {dedup.NewRedis(rdb), window * 3 / 2},
		"plain keys": {dedup.NewRedisPlain(rdb), window},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			key := dedup.Key(ident.NewUID(), "evt")
			start := time.Now()
			if r, err := c.s.Claim(ctx, key, "dlv", window); err != nil || r != dedup.Claimed {
				t.Fatalf("claim = %v %v", r, err)
			}
			for {
				_, found, err := c.s.Lookup(ctx, key, window)
				if err != nil {
					t.Fatal(err)
				}
				held := time.Since(start)
				if !found {
					if held < window {
						t.Fatalf("claim gone after %s, inside its window %s", held, window)
					}
					t.Logf("held %s", held)
					return
				}
				if held > c.longest+slack {
					t.Fatalf("claim still held after %s, want at most %s", held, c.longest)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
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

// The owner is an integer Redis stores without a string allocation.
func TestRedisOwner_IsACanonicalInt64(t *testing.T) {
	o := dedup.RedisOwner(ident.NewDeliveryID())
	if _, err := strconv.ParseInt(o, 10, 64); err != nil || o[0] == '0' {
		t.Fatalf("Redis owner %q is not a canonical int64 (Redis would store it as a string)", o)
	}
	if dedup.RedisOwner("dlv_a") == dedup.RedisOwner("dlv_b") {
		t.Fatal("distinct owners encode alike")
	}
	if k := dedup.RedisKey(dedup.Key(ident.NewUID(), "evt-1")); len(k) != 14 {
		t.Fatalf("plain Redis key is %d bytes, want 14", len(k))
	}
}

// In buckets a claim costs well under 100 bytes of Redis memory (the
// performance target; a key of its own costs about 115). Measured with
// MEMORY USAGE over every key of a window no other test uses.
func TestRedis_ClaimInBucketsIsCompact(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	s := dedup.NewRedis(rdb)
	// A window of its own: its buckets hold this test's claims only.
	window := 3*time.Hour + time.Duration(time.Now().UnixNano()%1_000_000)*time.Millisecond
	// Registered first: a failure half-way leaves no claims behind.
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, fmt.Sprintf("D%d:*", window.Milliseconds()), 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.HDel(ctx, "Dw", fmt.Sprint(window.Milliseconds()))
	})
	const n = 50_000
	uid := ident.NewUID()
	for i := 0; i < n; i += 1000 {
		reqs := make([]dedup.Request, 1000)
		for j := range reqs {
			reqs[j] = dedup.Request{Key: dedup.Key(uid, fmt.Sprint("evt-", i+j)), Owner: ident.NewDeliveryID(), TTL: window}
		}
		res, err := s.ClaimBatch(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range res {
			if r != dedup.Claimed {
				t.Fatalf("claim %d = %v", i+j, r)
			}
		}
	}
	var bytes, keys int64
	iter := rdb.Scan(ctx, 0, fmt.Sprintf("D%d:*", window.Milliseconds()), 1000).Iterator()
	for iter.Next(ctx) {
		m, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		bytes, keys = bytes+m, keys+1
		if enc, _ := rdb.ObjectEncoding(ctx, iter.Val()).Result(); enc == "hashtable" {
			t.Errorf("bucket hash %q is a hashtable: too many claims in one hash", iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	per := float64(bytes) / n
	t.Logf("%d claims in %d keys: %d bytes, %.1f per claim", n, keys, bytes, per)
	if per >= 100 {
		t.Fatalf("%.1f bytes of Redis memory per claim, want under 100", per)
	}
}

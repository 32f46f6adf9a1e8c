package dedup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A bucket's shard count follows the previous bucket's claims, up past a
// busy one and back down to the minimum after a quiet one, and a claim is
// found in every bucket that still counts, whatever their shard counts, then
// expires with its bucket.
func TestBuckets_ShardCountFollowsTheRateAndClaimsHoldAcrossBuckets(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	ctx := context.Background()
	r := &Redis{c: rdb, bucketed: true, minShards: 4}
	// A window of its own (2 s and some ms): no other test shares its buckets.
	window := 2*time.Second + time.Duration(time.Now().UnixNano()%1000)*time.Millisecond
	w := window / 2
	prefix := fmt.Sprintf("D%d:", window.Milliseconds())
	t.Cleanup(func() {
		iter := rdb.Scan(context.Background(), 0, prefix+"*", 100).Iterator()
		for iter.Next(context.Background()) {
			rdb.Del(context.Background(), iter.Val())
		}
	})
	// nextBucket waits for the start of the next bucket by Redis' clock
	// and returns its number.
	nextBucket := func() int64 {
		t.Helper()
		now, err := rdb.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		b := now.UnixMilli() / w.Milliseconds()
		time.Sleep(time.Duration((b+1)*w.Milliseconds()-now.UnixMilli())*time.Millisecond + 20*time.Millisecond)
		return b + 1
	}
	shards := func(b int64) string {
		t.Helper()
		v, _ := rdb.Get(ctx, fmt.Sprintf("%s%d", prefix, b)).Result()
		return v
	}
	claim := func(keys []string, owner func(int) string, want Result) {
		t.Helper()
		reqs := make([]Request, len(keys))
		for i, k := range keys {
			reqs[i] = Request{Key: k, Owner: owner(i), TTL: window}
		}
		res, err := r.ClaimBatch(ctx, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for i, got := range res {
			if got != want {
				t.Fatalf("claim %d of %d = %v, want %v", i, len(keys), got, want)
			}
		}
	}
	uid := ident.NewUID()
	busy := make([]string, 1000)
	for i := range busy {
		busy[i] = Key(uid, fmt.Sprint("busy-", i))
	}
	first := func(i int) string { return fmt.Sprint("dlv-", i) }
	other := func(i int) string { return fmt.Sprint("other-", i) }

	b := nextBucket()
	claim(busy, first, Claimed)
	if got := shards(b); got != "4" {
		t.Fatalf("first bucket has %q shards, want the minimum 4", got)
	}

	b = nextBucket()
	claim([]string{Key(uid, "quiet-0")}, first, Claimed)
	// 1000 claims in 4 shards: 250 each, halved twice to 62.5 with 16.
	if got := shards(b); got != "16" {
		t.Fatalf("bucket after 1000 claims in 4 shards has %q shards, want 16", got)
	}
	claim(busy, first, Continued)
	claim(busy, other, Duplicate)

	b = nextBucket()
	claim([]string{Key(uid, "quiet-1")}, first, Claimed)
	if got := shards(b); got != "4" {
		t.Fatalf("bucket after a quiet one has %q shards, want the minimum 4", got)
	}
	claim(busy, other, Duplicate) // two buckets on: still inside 1.5 windows

	nextBucket() // three buckets on: the busy bucket has expired
	claim(busy, other, Claimed)
}

package dedup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// bucketEnv is a bucketed store on the test Redis whose script runs on a
// clock the test sets (ms), for a window no other test uses.
type bucketEnv struct {
	t      *testing.T
	r      *Redis
	now    int64
	window time.Duration
}

// fakeClockDB is the Redis database of the bucketEnv tests. The script
// prunes the windows' registry ("Dw", shared by every store of a database)
// by its caller's clock: a test's clock hours ahead unregisters the windows
// of the other tests and packages using the same Redis, whose claims under
// a changed window are then no longer found. In a database of their own,
// and run one at a time (the tests that move the clock forward are not
// parallel), they unregister nobody else's windows.
const fakeClockDB = 15

func newBucketEnv(t *testing.T, minShards int) *bucketEnv {
	rdb := testenv.RedisDB(t, fakeClockDB)
	e := &bucketEnv{t: t, r: &Redis{c: rdb, bucketed: true, minShards: minShards}}
	e.r.nowMS = func() int64 { return e.now }
	// An hour and some ms: a family of buckets of its own. The clock starts
	// at a bucket's start, now: the keys' expiry times (PXAT) stay in the
	// future however far the test moves the clock within a few windows.
	e.window = time.Hour + time.Duration(time.Now().UnixNano()%1_000_000)*time.Millisecond
	e.now = time.Now().UnixMilli() / e.w() * e.w()
	e.forget(e.window)
	return e
}

// forget removes, at the end of the test, the buckets of window and its
// registration, for every window the test claims under.
func (e *bucketEnv) forget(window time.Duration) {
	rdb := e.r.c
	ms := window.Milliseconds()
	e.t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, fmt.Sprintf("D%d:*", ms), 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.HDel(ctx, "Dw", fmt.Sprint(ms))
	})
}

// w is the bucket width in ms.
func (e *bucketEnv) w() int64 { return e.window.Milliseconds() / 2 }

// bucket is the current bucket's number.
func (e *bucketEnv) bucket() int64 { return e.now / e.w() }

// levels is the current bucket's record of its shard counts.
func (e *bucketEnv) levels() string {
	v, _ := e.r.c.Get(context.Background(), fmt.Sprintf("D%d:%d", e.window.Milliseconds(), e.bucket())).Result()
	return v
}

func (e *bucketEnv) claim(keys []string, owner func(int) string, window time.Duration, want Result) {
	e.t.Helper()
	for lo := 0; lo < len(keys); lo += 100 {
		reqs := make([]Request, 0, 100)
		for i := lo; i < min(lo+100, len(keys)); i++ {
			reqs = append(reqs, Request{Key: keys[i], Owner: owner(i), TTL: window})
		}
		res, err := e.r.ClaimBatch(context.Background(), reqs)
		if err != nil {
			e.t.Fatal(err)
		}
		for i, got := range res {
			if got != want {
				e.t.Fatalf("claim %d of %d under %s = %v, want %v", lo+i, len(keys), window, got, want)
			}
		}
	}
}

func keys(prefix string, n int) []string {
	uid := ident.NewUID()
	out := make([]string, n)
	for i := range out {
		out[i] = Key(uid, fmt.Sprint(prefix, i))
	}
	return out
}

func owner(name string) func(int) string {
	return func(i int) string { return fmt.Sprint(name, "-", i) }
}

// A busy bucket adds levels so that no hash outgrows Redis' compact
// encoding; the next bucket starts with as many hashes as that load needs;
// a claim is found in every bucket that still counts, whatever their
// levels, and no longer once its bucket is three buckets old.
//
// Not parallel: its clock ends 1.5 h ahead (see fakeClockDB).
func TestBuckets_LevelsFollowTheLoadAndClaimsHoldForTheirWindow(t *testing.T) {
	e := newBucketEnv(t, 4)
	ctx := context.Background()
	busy := keys("busy-", 1000)
	first, other := owner("dlv"), owner("other")

	e.claim(busy, first, e.window, Claimed)
	lv := e.levels()
	if !strings.HasPrefix(lv, "4,") {
		t.Fatalf("busy bucket's levels %q, want the minimum 4 and more", lv)
	}
	iter := e.r.c.Scan(ctx, 0, fmt.Sprintf("D%d:%d:*", e.window.Milliseconds(), e.bucket()), 1000).Iterator()
	for iter.Next(ctx) {
		if enc, _ := e.r.c.ObjectEncoding(ctx, iter.Val()).Result(); enc != "listpack" {
			t.Errorf("hash %q is a %s, want a listpack", iter.Val(), enc)
		}
	}
	e.claim(busy, first, e.window, Continued)
	e.claim(busy, other, e.window, Duplicate)

	e.now += e.w() // the next bucket
	e.claim(keys("quiet-", 1), first, e.window, Claimed)
	switch lv := e.levels(); lv {
	case "16", "32", "64": // ~1000 claims at ~48 per hash, estimated from 4 hashes per level
	default:
		t.Fatalf("bucket after 1000 claims has levels %q, want one level of 16 to 64", lv)
	}
	e.claim(busy, first, e.window, Continued)
	e.claim(busy, other, e.window, Duplicate)

	e.now += 2*e.w() - 1 // the last ms of the busy bucket's life: a window and a half after its start
	e.claim(busy, other, e.window, Duplicate)
	e.now++ // three buckets on: no longer looked at
	e.claim(busy, other, e.window, Claimed)
}

// A Redis clock stepped back (a failover to a replica behind, an NTP step)
// still finds claims made in the bucket after its now. Not parallel: its
// clock ends 1.5 h ahead (see fakeClockDB).
func TestBuckets_ClockSteppedBackStillFindsNewerClaims(t *testing.T) {
	e := newBucketEnv(t, 4)
	k := keys("step-", 10)
	e.now += e.w() // bucket b+1
	e.claim(k, owner("a"), e.window, Claimed)
	e.now -= 10 // back into bucket b
	e.claim(k, owner("b"), e.window, Duplicate)
	e.claim(k, owner("a"), e.window, Continued)
	// A claim made on the stepped-back clock must not shorten the window's
	// registration: the newer claims are still found under another window
	// until their own bucket expires.
	e.claim(keys("behind-", 1), owner("a"), e.window, Claimed)
	other := e.window + time.Minute
	e.forget(other)
	e.now = (e.bucket()+3)*e.w() + 5 // the claims of bucket b+1 still count, those of b no longer
	e.claim(k, owner("b"), other, Duplicate)
}

// A claim holds for the window it was made with, whatever window a later
// delivery of the event is claimed or looked up with (the webhook's window
// edited, or two processes disagreeing on it), as a key with a TTL would.
// Not parallel: it relies on the first window's registration, which a
// parallel test's clock hours ahead would prune, and its own clock ends
// 1.5 h ahead (see fakeClockDB).
func TestBuckets_ClaimHoldsAcrossAChangedWindow(t *testing.T) {
	e := newBucketEnv(t, 4)
	k := keys("edit-", 10)
	longer := e.window + 90*time.Minute
	e.forget(longer)
	e.claim(k, owner("a"), e.window, Claimed)
	e.claim(k, owner("b"), longer, Duplicate)
	e.claim(k, owner("a"), longer, Continued)
	owners, found, err := e.r.LookupMany(context.Background(), []Request{{Key: k[0], TTL: longer}})
	if err != nil || !found[0] || !IsOwner(owners[0], "a-0") {
		t.Fatalf("look-up under the other window: %q %v %v, want a-0", owners, found, err)
	}
	// Once the claims under the first window have expired, the event is
	// claimed anew under the new one.
	e.now += 3 * e.w()
	e.claim(k, owner("b"), longer, Claimed)
}

// Two deliveries of one event in one batch under different windows (the
// webhook's window edited while both were on their way): one claim only,
// even when the first window was not registered before the batch.
func TestBuckets_OneBatchTwoWindowsClaimsOnce(t *testing.T) {
	t.Parallel()
	e := newBucketEnv(t, 4)
	other := e.window + time.Minute
	e.forget(other)
	k := keys("batch-", 1)[0]
	res, err := e.r.ClaimBatch(context.Background(), []Request{
		{Key: k, Owner: "a", TTL: e.window},
		{Key: k, Owner: "b", TTL: other},
		{Key: k, Owner: "a", TTL: other},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res) != fmt.Sprint([]Result{Claimed, Duplicate, Continued}) {
		t.Fatalf("batch = %v, want claimed, duplicate, continued", res)
	}
}

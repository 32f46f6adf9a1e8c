package ingress

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// countingRedis counts the round trips of a real Redis store.
type countingRedis struct {
	*dedup.Redis
	trips atomic.Int64
}

func (c *countingRedis) LookupMany(ctx context.Context, reqs []dedup.Request) ([]string, []bool, error) {
	c.trips.Add(1)
	return c.Redis.LookupMany(ctx, reqs)
}

func TestLookupBatcher_CoalescesConcurrentLookupsAndAnswersEachRight(t *testing.T) {
	rdb := testenv.Redis(t)
	for name, s := range map[string]*dedup.Redis{"buckets": dedup.NewRedis(rdb), "plain keys": dedup.NewRedisPlain(rdb)} {
		t.Run(name, func(t *testing.T) { testLookupBatcher(t, s) })
	}
}

func testLookupBatcher(t *testing.T, s *dedup.Redis) {
	ctx := context.Background()
	prefix := fmt.Sprintf("lb-test-%d-", time.Now().UnixNano())
	var claims []dedup.Request
	for i := 0; i < 200; i += 2 { // even keys are claimed, by "o<i>"
		claims = append(claims, dedup.Request{Key: fmt.Sprintf("%s%d", prefix, i), Owner: fmt.Sprintf("o%d", i), TTL: time.Hour})
	}
	if _, err := s.ClaimBatch(ctx, claims); err != nil {
		t.Fatal(err)
	}
	store := &countingRedis{Redis: s}
	b := newLookupBatcher(store)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = b.run(rctx) }()
	testenv.Eventually(t, 2*time.Second, func() error {
		if !b.running.Load() {
			return fmt.Errorf("batcher not running")
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := b.start(fmt.Sprintf("%s%d", prefix, i), time.Hour).wait(ctx)
			owner, found, err := r.owner, r.found, r.err
			switch {
			case err != nil:
				errs <- err
			case i%2 == 0 && (!found || !dedup.IsOwner(owner, fmt.Sprintf("o%d", i)) || dedup.IsOwner(owner, fmt.Sprintf("o%d", i+2))):
				errs <- fmt.Errorf("key %d: %q %v", i, owner, found)
			case i%2 == 1 && found:
				errs <- fmt.Errorf("key %d found but absent", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := store.trips.Load(); n >= 200 || n == 0 {
		t.Errorf("%d round trips for 200 concurrent look-ups: not batched", n)
	}
	t.Logf("200 look-ups in %d round trips", store.trips.Load())
}

// startBatcher runs a batcher over store with the given linger until the test ends.
func startBatcher(t *testing.T, store dedup.Store, linger time.Duration) *lookupBatcher {
	t.Helper()
	b := newLookupBatcher(store)
	b.linger = linger
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 2*time.Second, func() error {
		if !b.running.Load() {
			return fmt.Errorf("batcher not running")
		}
		return nil
	})
	return b
}

func TestLookupBatcher_GathersUntilALookupIsWaitedFor(t *testing.T) {
	rdb := testenv.Redis(t)
	store := &countingRedis{Redis: dedup.NewRedis(rdb)}
	prefix := fmt.Sprintf("lb-gather-%d-", time.Now().UnixNano())
	if _, err := store.ClaimBatch(context.Background(), []dedup.Request{{Key: prefix + "7", Owner: "o7", TTL: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	b := startBatcher(t, store, time.Hour)
	var ps []*pendingLookup
	for i := 0; i < 50; i++ {
		ps = append(ps, b.start(fmt.Sprintf("%s%d", prefix, i), time.Hour))
	}
	time.Sleep(30 * time.Millisecond) // their publishes are on the wire
	if n := store.trips.Load(); n != 0 {
		t.Fatalf("%d round trips before any look-up was waited for", n)
	}
	// One request's publish is done: its wait sends the whole batch.
	if r := ps[7].wait(context.Background()); r.err != nil || !r.found || !dedup.IsOwner(r.owner, "o7") {
		t.Fatalf("look-up 7: %+v", r)
	}
	for i, p := range ps {
		if i == 7 {
			continue
		}
		r := p.wait(context.Background())
		if r.err != nil || r.found {
			t.Errorf("look-up %d: %+v", i, r)
		}
	}
	if n := store.trips.Load(); n != 1 {
		t.Errorf("%d round trips for 50 look-ups gathered together, want 1", n)
	}
}

func TestLookupBatcher_SendsAfterTheLingerOrWhenFull(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := fmt.Sprintf("lb-linger-%d-", time.Now().UnixNano())

	t.Run("linger", func(t *testing.T) {
		store := &countingRedis{Redis: dedup.NewRedis(rdb)}
		b := startBatcher(t, store, 20*time.Millisecond)
		p := b.start(prefix+"a", time.Hour)
		testenv.Eventually(t, 2*time.Second, func() error {
			if store.trips.Load() != 1 || len(p.res) != 1 {
				return fmt.Errorf("%d round trips, answered %v", store.trips.Load(), len(p.res) == 1)
			}
			return nil
		})
	})
	t.Run("full", func(t *testing.T) {
		store := &countingRedis{Redis: dedup.NewRedis(rdb)}
		b := startBatcher(t, store, time.Hour)
		var ps []*pendingLookup
		for i := 0; i < maxLookupBatch; i++ {
			ps = append(ps, b.start(fmt.Sprintf("%sf%d", prefix, i), time.Hour))
		}
		testenv.Eventually(t, 2*time.Second, func() error {
			if n := store.trips.Load(); n != 1 {
				return fmt.Errorf("%d round trips", n)
			}
			for i, p := range ps {
				if len(p.res) != 1 {
					return fmt.Errorf("look-up %d not answered", i)
				}
			}
			return nil
		})
	})
}

func TestLookupBatcher_LingersAQuarterOfTheRecentPublishTime(t *testing.T) {
	b := newLookupBatcher(nil)
	if got := b.lingerNow(); got != 0 {
		t.Errorf("linger before any publish = %v, want 0 (send at once)", got)
	}
	for i := 0; i < 200; i++ {
		b.observePublish(600 * time.Microsecond)
	}
	if got := b.lingerNow(); got < 145*time.Microsecond || got > 150*time.Microsecond {
		t.Errorf("linger after publishes of 600µs = %v, want about 150µs", got)
	}
	for i := 0; i < 200; i++ {
		b.observePublish(time.Second)
	}
	if got := b.lingerNow(); got != lookupLinger {
		t.Errorf("linger after slow publishes = %v, want the bound %v", got, lookupLinger)
	}
}

// A Redis answering later than the look-up's 50 ms keeps its connection:
// the waiters give up, the command does not (go-redis, with context
// deadlines honoured, closes a connection whose command passed its
// deadline), so a latency spike does not become a dial per look-up.
func TestLookupBatcher_SlowRedisKeepsItsConnections(t *testing.T) {
	direct, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	upstream := direct.Addr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if err != nil {
						return
					}
					time.Sleep(80 * time.Millisecond) // every answer late
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	direct.Addr, direct.ContextTimeoutEnabled = ln.Addr().String(), true
	slow := redis.NewClient(direct)
	defer slow.Close()
	b := newLookupBatcher(dedup.NewRedis(slow))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.run(ctx) }()
	testenv.Eventually(t, 2*time.Second, func() error {
		if !b.running.Load() {
			return fmt.Errorf("batcher not running")
		}
		return nil
	})
	timedOut := 0
	for i := range 15 {
		if r := b.start(fmt.Sprintf("slow-%d", i), time.Hour).wait(ctx); r.err != nil {
			timedOut++
		}
		time.Sleep(100 * time.Millisecond) // the late answer comes in
	}
	if timedOut == 0 {
		t.Fatal("no look-up timed out: the proxy does not delay")
	}
	if n := conns.Load(); n > 3 {
		t.Fatalf("%d connections to Redis for 15 look-ups answered late; want the same few reused", n)
	}
}

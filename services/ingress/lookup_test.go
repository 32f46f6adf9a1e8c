package ingress

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

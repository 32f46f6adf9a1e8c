package ingress

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hookrun/hookrun/pkg/dedup"
)

// manyLooker is a dedup store that can look many keys up in one round trip.
type manyLooker interface {
	LookupMany(ctx context.Context, keys []string) ([]string, []bool, error)
}

// lookupBatcher coalesces the read-only dedup look-ups of concurrent
// requests: while one batch is on the wire the next one gathers, so under
// load hundreds of requests share one Redis round trip instead of paying
// one each (the profile showed a GET per request costing a quarter of the
// ingress' CPU).
type lookupBatcher struct {
	store   dedup.Store
	many    manyLooker
	reqs    chan lookupReq
	running atomic.Bool
}

type lookupReq struct {
	key string
	res chan lookupRes
}

type lookupRes struct {
	owner string
	found bool
	err   error
}

const maxLookupBatch = 512

func newLookupBatcher(store dedup.Store) *lookupBatcher {
	b := &lookupBatcher{store: store, reqs: make(chan lookupReq, 4096)}
	b.many, _ = store.(manyLooker)
	return b
}

// run serves look-ups until ctx ends.
func (b *lookupBatcher) run(ctx context.Context) error {
	b.running.Store(true)
	defer b.running.Store(false)
	keys := make([]string, 0, maxLookupBatch)
	waiters := make([]chan lookupRes, 0, maxLookupBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-b.reqs:
			keys, waiters = append(keys[:0], r.key), append(waiters[:0], r.res)
		}
	drain:
		for len(keys) < maxLookupBatch {
			select {
			case r := <-b.reqs:
				keys, waiters = append(keys, r.key), append(waiters, r.res)
			default:
				break drain
			}
		}
		lctx, cancel := context.WithTimeout(ctx, dedupLookupTimeout)
		b.lookup(lctx, keys, waiters)
		cancel()
	}
}

func (b *lookupBatcher) lookup(ctx context.Context, keys []string, waiters []chan lookupRes) {
	if b.many != nil {
		owners, found, err := b.many.LookupMany(ctx, keys)
		for i, w := range waiters {
			if err != nil {
				w <- lookupRes{err: err}
			} else {
				w <- lookupRes{owner: owners[i], found: found[i]}
			}
		}
		return
	}
	for i, w := range waiters {
		owner, found, err := b.store.Lookup(ctx, keys[i])
		w <- lookupRes{owner: owner, found: found, err: err}
	}
}

// Lookup queues a look-up and waits for its batch, at most the look-up
// timeout: a slow store means "not seen", never a slow answer.
func (b *lookupBatcher) Lookup(ctx context.Context, key string) (string, bool, error) {
	if !b.running.Load() { // used without Run (e.g. the handler alone in tests)
		return b.store.Lookup(ctx, key)
	}
	res := make(chan lookupRes, 1)
	t := time.NewTimer(dedupLookupTimeout)
	defer t.Stop()
	select {
	case b.reqs <- lookupReq{key: key, res: res}:
	case <-t.C:
		return "", false, context.DeadlineExceeded
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	select {
	case r := <-res:
		return r.owner, r.found, r.err
	case <-t.C:
		return "", false, context.DeadlineExceeded
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

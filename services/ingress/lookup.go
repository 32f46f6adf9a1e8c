package ingress

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hookrun/hookrun/pkg/dedup"
)

// manyLooker is a dedup store that can look many keys up in one round trip.
type manyLooker interface {
	LookupMany(ctx context.Context, reqs []dedup.Request) ([]string, []bool, error)
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
	dedup.Request // the key and its window
	res           chan lookupRes
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
	keys := make([]dedup.Request, 0, maxLookupBatch)
	waiters := make([]chan lookupRes, 0, maxLookupBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-b.reqs:
			keys, waiters = append(keys[:0], r.Request), append(waiters[:0], r.res)
		}
	drain:
		for len(keys) < maxLookupBatch {
			select {
			case r := <-b.reqs:
				keys, waiters = append(keys, r.Request), append(waiters, r.res)
			default:
				break drain
			}
		}
		lctx, cancel := context.WithTimeout(ctx, dedupLookupTimeout)
		b.lookup(lctx, keys, waiters)
		cancel()
	}
}

func (b *lookupBatcher) lookup(ctx context.Context, keys []dedup.Request, waiters []chan lookupRes) {
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
		owner, found, err := b.store.Lookup(ctx, keys[i].Key, keys[i].TTL)
		w <- lookupRes{owner: owner, found: found, err: err}
	}
}

// pendingLookup is a look-up on its way: queued for a batch, or answered.
type pendingLookup struct {
	res      chan lookupRes
	deadline time.Time
}

// start queues a look-up of key, claimed for window, and returns at once, so that a request goes
// on (to its publish) while the look-up is on the wire, without a goroutine
// of its own; wait takes the answer. A full queue answers "not seen" at
// once, as a slow store does after the look-up timeout.
func (b *lookupBatcher) start(key string, window time.Duration) *pendingLookup {
	p := &pendingLookup{res: make(chan lookupRes, 1), deadline: time.Now().Add(dedupLookupTimeout)}
	if !b.running.Load() { // used without Run (e.g. the handler alone in tests)
		ctx, cancel := context.WithDeadline(context.Background(), p.deadline)
		defer cancel()
		owner, found, err := b.store.Lookup(ctx, key, window)
		p.res <- lookupRes{owner: owner, found: found, err: err}
		return p
	}
	select {
	case b.reqs <- lookupReq{Request: dedup.Request{Key: key, TTL: window}, res: p.res}:
	default:
		p.res <- lookupRes{err: errLookupQueueFull}
	}
	return p
}

var errLookupQueueFull = errors.New("dedup look-up queue full")

// wait returns the look-up's answer, or an error once the look-up timeout
// (counted from start) has passed or ctx has ended: a slow store means "not
// seen", never a slow answer.
func (p *pendingLookup) wait(ctx context.Context) lookupRes {
	select {
	case r := <-p.res: // the usual case: answered while the publish was on the wire
		return r
	default:
	}
	t := time.NewTimer(time.Until(p.deadline))
	defer t.Stop()
	select {
	case r := <-p.res:
		return r
	case <-t.C:
		return lookupRes{err: context.DeadlineExceeded}
	case <-ctx.Done():
		return lookupRes{err: ctx.Err()}
	}
}

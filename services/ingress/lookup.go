package ingress

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrun/hookrun/pkg/dedup"
)

// manyLooker is a dedup store that can look many keys up in one round trip.
type manyLooker interface {
	LookupMany(ctx context.Context, reqs []dedup.Request) ([]string, []bool, error)
}

// lookupBatcher coalesces the read-only dedup look-ups of concurrent
// requests into one Redis round trip. A request starts its look-up before
// its publish and needs the answer only after JetStream's ack, so a batch
// is not sent at once: it gathers until one of its requests waits for its
// answer (its publish is done), it is full, or a quarter of the recent
// publish time has passed (at most lookupLinger): sent then, its answer is
// usually back before the publishes it rides beside end. Under load a batch
// then holds the look-ups of many requests whose publishes are on the wire,
// instead of the one or two a batch held when it was sent as soon as the
// previous one came back; a round trip costs Redis and the ingress about
// the same CPU whatever its size.
type lookupBatcher struct {
	store   dedup.Store
	many    manyLooker
	running atomic.Bool
	linger  time.Duration // fixed (tests); 0: a quarter of the recent publish time
	publish atomic.Int64  // the recent publish time (ns), a moving average

	mu      sync.Mutex
	batch   []lookupReq // gathering: not sent yet
	gen     uint64      // counts the batches taken; a look-up records the one it joined
	firstAt time.Time   // when the gathering batch got its first look-up
	needed  bool        // a look-up of the gathering batch is waited for
	wake    chan struct{}
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

const (
	// maxLookupBatch bounds the keys of one round trip (a Lua script
	// holds Redis while it runs); a larger gathered batch is sent in parts.
	maxLookupBatch = 512
	// maxLookupQueue bounds the gathered look-ups; beyond it a look-up is
	// answered "not seen" at once.
	maxLookupQueue = 4096
	// lookupLinger bounds how long a batch gathers when no request waits
	// for it yet.
	lookupLinger = 2 * time.Millisecond
)

func newLookupBatcher(store dedup.Store) *lookupBatcher {
	b := &lookupBatcher{store: store, wake: make(chan struct{}, 1)}
	b.many, _ = store.(manyLooker)
	return b
}

// observePublish feeds the time a publish took into the average the
// linger follows (a moving average over about the last 16 publishes; a lost
// update between concurrent callers only delays it).
func (b *lookupBatcher) observePublish(d time.Duration) {
	old := b.publish.Load()
	b.publish.Store(old + (int64(d)-old)/16)
}

// lingerNow is how long a batch gathers unless waited for or full.
func (b *lookupBatcher) lingerNow() time.Duration {
	if b.linger > 0 {
		return b.linger
	}
	return min(time.Duration(b.publish.Load()/4), lookupLinger)
}

func (b *lookupBatcher) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run serves look-ups until ctx ends.
func (b *lookupBatcher) run(ctx context.Context) error {
	b.running.Store(true)
	defer b.failGathered(ctx)
	defer b.running.Store(false)
	var spare []lookupReq
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b.mu.Lock()
		n := len(b.batch)
		var wait time.Duration
		if n > 0 && !b.needed && n < maxLookupBatch {
			wait = b.lingerNow() - time.Since(b.firstAt)
		}
		if n == 0 || wait > 0 {
			b.mu.Unlock()
			if n > 0 {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-b.wake:
			case <-timer.C:
			}
			timer.Stop()
			continue
		}
		batch := b.batch
		b.batch, spare = spare[:0], nil
		b.gen++
		b.needed = false
		b.mu.Unlock()

		for rest := batch; len(rest) > 0; {
			part := rest[:min(len(rest), maxLookupBatch)]
			// The waiters give up at their own deadline (wait); the
			// command is given longer, so that a Redis answering late
			// keeps its connection: go-redis closes one whose command
			// passed its deadline, and a dial per look-up would pile
			// connections on a Redis already slow.
			lctx, cancel := context.WithTimeout(ctx, lookupCommandTimeout)
			b.lookup(lctx, part)
			cancel()
			rest = rest[len(part):]
		}
		clear(batch) // the answered channels
		spare = batch[:0]
	}
}

// failGathered answers what was gathered when run ends.
func (b *lookupBatcher) failGathered(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.batch {
		r.res <- lookupRes{err: ctx.Err()}
	}
	b.batch = nil
	b.gen++
}

func (b *lookupBatcher) lookup(ctx context.Context, reqs []lookupReq) {
	if b.many != nil {
		keys := make([]dedup.Request, len(reqs))
		for i, r := range reqs {
			keys[i] = r.Request
		}
		owners, found, err := b.many.LookupMany(ctx, keys)
		for i, r := range reqs {
			if err != nil {
				r.res <- lookupRes{err: err}
			} else {
				r.res <- lookupRes{owner: owners[i], found: found[i]}
			}
		}
		return
	}
	for _, r := range reqs {
		owner, found, err := b.store.Lookup(ctx, r.Key, r.TTL)
		r.res <- lookupRes{owner: owner, found: found, err: err}
	}
}

// pendingLookup is a look-up on its way: gathering, sent, or answered.
type pendingLookup struct {
	b        *lookupBatcher
	gen      uint64 // the batch it joined
	res      chan lookupRes
	deadline time.Time
}

// start queues a look-up of key, claimed for window, and returns at once, so that a request goes
// on (to its publish) while the look-up gathers with others, without a
// goroutine of its own; wait takes the answer. A full queue answers "not
// seen" at once, as a slow store does after the look-up timeout.
func (b *lookupBatcher) start(key string, window time.Duration) *pendingLookup {
	p := &pendingLookup{b: b, res: make(chan lookupRes, 1), deadline: time.Now().Add(dedupLookupTimeout)}
	if !b.running.Load() { // used without Run (e.g. the handler alone in tests)
		ctx, cancel := context.WithDeadline(context.Background(), p.deadline)
		defer cancel()
		owner, found, err := b.store.Lookup(ctx, key, window)
		p.res <- lookupRes{owner: owner, found: found, err: err}
		return p
	}
	b.mu.Lock()
	if len(b.batch) >= maxLookupQueue {
		b.mu.Unlock()
		p.res <- lookupRes{err: errLookupQueueFull}
		return p
	}
	b.batch = append(b.batch, lookupReq{Request: dedup.Request{Key: key, TTL: window}, res: p.res})
	n := len(b.batch)
	if n == 1 {
		b.firstAt = time.Now()
	}
	p.gen = b.gen
	b.mu.Unlock()
	if n == 1 || n == maxLookupBatch {
		b.kick() // a new batch to time, or a full one to send
	}
	return p
}

// need has the batch gen sent now if it is still gathering.
func (b *lookupBatcher) need(gen uint64) {
	b.mu.Lock()
	kick := gen == b.gen && len(b.batch) > 0 && !b.needed
	if kick {
		b.needed = true
	}
	b.mu.Unlock()
	if kick {
		b.kick()
	}
}

var errLookupQueueFull = errors.New("dedup look-up queue full")

// wait returns the look-up's answer, or an error once the look-up timeout
// (counted from start) has passed or ctx has ended: a slow store means "not
// seen", never a slow answer.
func (p *pendingLookup) wait(ctx context.Context) lookupRes {
	select {
	case r := <-p.res: // answered while the publish was on the wire
		return r
	default:
	}
	if p.b != nil {
		p.b.need(p.gen)
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

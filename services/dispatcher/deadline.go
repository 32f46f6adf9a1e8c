package dispatcher

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// decideAll decides the batch's deliveries one after another until half
// of the batch's deadline (an eighth of AckWait from the batch's start) is
// spent, so that the rest of it is left for storing what was decided. A
// delivery not decided by then (its filter cut off, or not started) is
// handed back undecided, to come again in another batch; the decided ones
// go on. Before, a batch of costly filters missed its deadline as a whole,
// came back whole and missed it again, for ever.
//
// Deliveries that have come before go first, so a delivery handed back is
// decided early in its next batch. One whose filter is cut off after
// running for half of the time for deciding by itself, maxDecideMisses
// times, will never fit: its run fails with why, instead of coming back
// for ever.
func (d *Dispatcher) decideAll(ctx context.Context, items []*item, start time.Time, leader *leaderRecords) {
	budget := d.cfg.AckWait / 8
	dctx, cancel := context.WithDeadline(ctx, start.Add(budget))
	defer cancel()
	order := items
	if slices.ContainsFunc(items, func(it *item) bool { return it.redelivered }) {
		order = slices.Clone(items)
		slices.SortStableFunc(order, func(a, b *item) int { return cmp.Compare(b.delivered, a.delivered) })
	}
	// Soon again when this batch decided some (its time went on deciding:
	// the rest are decided next time); after the usual second when the
	// claims or resume took it all (Redis or NATS slow: no hurry).
	var retry time.Duration
	for _, it := range order {
		if it.outcome != "" || it.failed {
			continue
		}
		if dctx.Err() != nil {
			it.failed, it.retryIn = true, retry
			continue
		}
		retry = undecidedRetry
		began := time.Now()
		if d.decide(dctx, it, leader) {
			if it.redelivered {
				d.misses.forget(it.d.ID)
			}
			continue
		}
		it.failed, it.retryIn = true, undecidedRetry
		if time.Since(began) < budget/2 {
			continue // cut off with little of the time left: not its own fault
		}
		if n := d.misses.add(it.d.ID, began); n >= maxDecideMisses {
			d.misses.forget(it.d.ID)
			it.failed, it.retryIn = false, 0
			it.outcome, it.err = outcomeFailed, fmt.Errorf("deciding this delivery takes too long: its webhook's filter was still being evaluated when the dispatcher's time for it ran out (%s, an eighth of HOOKRUN_DISPATCH_ACK_WAIT), %d times; simplify the filter or raise HOOKRUN_DISPATCH_ACK_WAIT", budget.Round(time.Millisecond), n)
		}
	}
}

// undecidedRetry is how soon a delivery handed back undecided comes again:
// nothing is wrong with it, the batch only ran out of time.
const undecidedRetry = 10 * time.Millisecond

// maxDecideMisses is how many times a delivery's filter may outlast, by
// itself, the time for deciding before its run fails.
const maxDecideMisses = 3

// misses counts, per delivery, the times its filter outlasted the time for
// deciding by itself. It is this process' count (a delivery that goes to
// another dispatcher starts again there), held only while the delivery is
// handed back: a delivery decided is forgotten, and a count not added to
// for missForget (the delivery was decided elsewhere) is dropped.
type misses struct {
	mu sync.Mutex
	m  map[string]miss
}

type miss struct {
	n    int
	last time.Time
}

// missForget is how long a count is kept without a miss added to it.
const missForget = 10 * time.Minute

// add counts a miss of delivery id at now and returns its count.
func (c *misses) add(id string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]miss{}
	}
	for k, v := range c.m {
		if now.Sub(v.last) > missForget {
			delete(c.m, k)
		}
	}
	m := c.m[id]
	m.n, m.last = m.n+1, now
	c.m[id] = m
	return m.n
}

// forget drops delivery id's count.
func (c *misses) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

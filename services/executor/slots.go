package executor

import (
	"context"
	"time"
)

// The per-instance cap (MaxConcurrent) is a counting semaphore: x.slots
// holds one token per run in hand. A slot is taken before a run is fetched
// in a batch, or as it arrives from an idle job's long poll, and given back
// when the run's handling ends (after its ack or hand-back).

// takeSlot takes a free slot if there is one.
func (x *Executor) takeSlot() bool {
	select {
	case x.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// takeSlots waits for a free slot, then takes as many more as are free, up
// to max. It returns 0 only when ctx ends first.
func (x *Executor) takeSlots(ctx context.Context, max int) int {
	select {
	case x.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < max && x.takeSlot() {
		n++
	}
	return n
}

// releaseSlots gives back n slots.
func (x *Executor) releaseSlots(n int) {
	for ; n > 0; n-- {
		<-x.slots
	}
}

// waitFreeSlot waits until a slot is free, without taking it. It reports
// false when ctx ends first.
func (x *Executor) waitFreeSlot(ctx context.Context) bool {
	if x.takeSlots(ctx, 1) == 0 {
		return false
	}
	x.releaseSlots(1)
	return true
}

// freeSlots is the number of slots free now (at least 1: it sizes a poll).
func (x *Executor) freeSlots() int {
	return max(1, cap(x.slots)-len(x.slots))
}

// runnerIdle is how long a goroutine that ran a run waits for another
// before it ends.
const runnerIdle = 10 * time.Second

// goRun runs f, a run's handling, on a goroutine that ran one before and
// is waiting for another, else on a new one that then waits so. A run's
// goroutine grows its stack (JSON encoding, the NATS client) to tens of
// KiB: a fresh goroutine per run copied its stack up again every time,
// about 4% of the executor's CPU at 800 runs/s (docs/BENCHMARKS.md).
// Waiting goroutines are at most as many as runs went at once, and end
// after runnerIdle without one.
func (x *Executor) goRun(f func()) {
	select {
	case x.idleRunners <- f:
	default:
		go x.runner(f)
	}
}

func (x *Executor) runner(f func()) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		f = nil // what the run held is not kept while waiting
		idle.Reset(runnerIdle)
		select {
		case f = <-x.idleRunners:
		case <-idle.C:
			return
		}
	}
}

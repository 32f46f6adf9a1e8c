package executor

import "context"

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

package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The shared consumer deleted under a running dispatcher (an operator's
// `nats consumer rm`) is made again, and the dispatcher is not ready while
// it is missing; deliveries stored meanwhile are dispatched once it is
// back. It starts after the deliveries known done, not at the stream's
// first delivery (dispatching every retained delivery again would run
// those past their dedup window again). Before, the dispatcher went on
// pulling from the deleted consumer, dispatching nothing, ready.
func TestDispatcher_DeletedConsumerIsMadeAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("consumer", nil)
	var refuse atomic.Bool
	r := e.start(func(d *Dispatcher) {
		d.consumerEvery = 50 * time.Millisecond
		d.consumerFault = func() error {
			if refuse.Load() {
				return errors.New("injected: consumer not created")
			}
			return nil
		}
	})
	first := e.deliver(w, "evt-1", `{}`)
	want(t, "first outcome", e.outcome(first).Status, message.DeliveryDispatched)
	e.allAcked()
	testenv.Eventually(t, 5*time.Second, func() error {
		if f := r.d.ackFloor.Load(); f == nil || f.seq < 1 {
			return errors.New("the ack floor has not been read since the first delivery")
		}
		return r.health.Ready(context.Background())
	})

	refuse.Store(true)
	ctx := context.Background()
	if err := e.js.DeleteConsumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := r.health.Ready(ctx); err == nil {
			return errors.New("ready without its consumer")
		}
		return nil
	})
	second := e.deliver(w, "evt-2", `{}`)
	refuse.Store(false)
	want(t, "outcome of a delivery stored while the consumer was missing", e.outcome(second).Status, message.DeliveryDispatched)
	testenv.Eventually(t, 5*time.Second, func() error { return r.health.Ready(ctx) })

	c, err := e.js.Consumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	if cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq != 2 {
		t.Fatalf("consumer made again with deliver policy %v from %d, want from sequence 2 (after the first delivery, done)", cfg.DeliverPolicy, cfg.OptStartSeq)
	}
	// A dispatcher started now takes the consumer as it is (JetStream
	// refuses to change where a consumer starts).
	other := e.start(nil)
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := other.health.Ready(ctx); err != nil {
			return fmt.Errorf("a second dispatcher: %w", err)
		}
		return nil
	})
	runs := e.runsPerID()
	want(t, "runs", len(runs), 2)
}

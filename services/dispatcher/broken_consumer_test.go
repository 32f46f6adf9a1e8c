package dispatcher

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The dispatcher consumer whose files the server lost (nats-server keeps
// one made again while it still removed the files of the one deleted
// before it: it delivers, but every update of it fails) is deleted and
// made afresh by a dispatcher that starts, after the ack floor it had
// reached. Before, the dispatcher retried the update for ever, never
// ready.
func TestDispatcher_AConsumerWhoseFilesWereLostIsMadeAfresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("lostfiles", nil)
	r := e.start(nil)
	first := e.deliver(w, "evt-1", `{}`)
	want(t, "first outcome", e.outcome(first).Status, message.DeliveryDispatched)
	e.allAcked()
	r.stop()

	dir := e.nats.ConsumerDir(bus.StreamDeliveries, bus.ConsumerDispatcher)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	second := e.deliver(w, "evt-2", `{}`)

	other := e.start(nil)
	ctx := context.Background()
	testenv.Eventually(t, 15*time.Second, func() error { return other.health.Ready(ctx) })
	want(t, "outcome of a delivery stored while no dispatcher ran", e.outcome(second).Status, message.DeliveryDispatched)
	c, err := e.js.Consumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	if cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq != 2 {
		t.Fatalf("consumer made afresh with deliver policy %v from %d, want from sequence 2 (after the first delivery, done)", cfg.DeliverPolicy, cfg.OptStartSeq)
	}
	if _, err := os.Stat(filepath.Join(dir, "meta.inf")); err != nil {
		t.Fatalf("the consumer made afresh has no files: %v", err)
	}
	want(t, "runs", len(e.runsPerID()), 2)
}

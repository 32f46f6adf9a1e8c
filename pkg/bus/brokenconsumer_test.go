package bus_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// Only nats-server's failure to write a consumer that exists because its
// files are gone deletes it: a refused update (such as a changed start,
// also a 500), a failure to write for another reason (a full disk),
// another error or a consumer that is not there deletes nothing. The floor returned is the
// one the consumer deleted had.
func TestDropBrokenConsumer_DeletesOnlyAConsumerTheServerCannotWrite(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := jetstream.ConsumerConfig{Durable: "probe", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: bus.StatusSubject("default", "x")}
	if _, err := js.CreateConsumer(ctx, bus.StreamStatus, cfg); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	for range 2 {
		ack, err := js.Publish(ctx, bus.StatusSubject("default", "x"), []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if acked == 0 {
			acked = ack.Sequence
		}
	}
	c, err := js.Consumer(ctx, bus.StreamStatus, "probe")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	exists := func() bool {
		_, err := js.Consumer(ctx, bus.StreamStatus, "probe")
		return err == nil
	}

	changed := cfg
	changed.DeliverPolicy = jetstream.DeliverNewPolicy
	_, refused := js.CreateOrUpdateConsumer(ctx, bus.StreamStatus, changed)
	if refused == nil {
		t.Fatal("changing where a consumer starts was not refused")
	}
	full := &jetstream.APIError{Code: 500, ErrorCode: jetstream.JSErrCodeConsumerCreate, Description: "write /data/jetstream/$G/streams/STATUS/obs/probe/meta.inf.tmp: no space left on device"}
	for _, err := range []error{refused, full, errors.New("nats: timeout"), context.DeadlineExceeded} {
		if _, ok := bus.DropBrokenConsumer(ctx, js, bus.StreamStatus, "probe", err); ok || !exists() {
			t.Fatalf("deleted on %v", err)
		}
	}

	// The server loses the consumer's files: an update fails (500).
	dir := n.ConsumerDir(bus.StreamStatus, "probe")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	_, broken := js.CreateOrUpdateConsumer(ctx, bus.StreamStatus, cfg)
	if broken == nil {
		t.Fatal("the update of a consumer whose files are gone succeeded")
	}
	if _, ok := bus.DropBrokenConsumer(ctx, js, bus.StreamStatus, "absent", broken); ok {
		t.Fatal("reported a consumer that is not there deleted")
	}
	floor, ok := bus.DropBrokenConsumer(ctx, js, bus.StreamStatus, "probe", broken)
	if !ok || exists() {
		t.Fatalf("a consumer the server cannot write was not deleted (%v)", broken)
	}
	if floor.Seq != acked || floor.Created.IsZero() {
		t.Fatalf("floor %+v, want sequence %d (the message acked) and a creation time", floor, acked)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamStatus, cfg); err != nil {
		t.Fatalf("made afresh: %v", err)
	}
}

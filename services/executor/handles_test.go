package executor

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The direct-read fast path is for the first delivery of a run's only
// request: a redelivery, or a copy stored under a "#n" id, reads from the
// leader.
func TestFirstDelivery_OnlyTheFirstDeliveryOfTheOriginalRequest(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subject := bus.RunSubject("default", "first")
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamRuns, jetstream.ConsumerConfig{
		Durable: "first", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	next := func() jetstream.Msg {
		t.Helper()
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	publish := func(id string) {
		t.Helper()
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte("{}")}, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	publish("run_a:dlv_a")
	m := next()
	if !firstDelivery(m) {
		t.Fatal("first delivery of the original request: not first")
	}
	_ = m.Nak()
	if m = next(); firstDelivery(m) {
		t.Fatal("a redelivery taken for a first delivery")
	}
	_ = m.Ack()
	publish("run_a:dlv_a#2")
	if m = next(); firstDelivery(m) {
		t.Fatal("a #2 copy taken for the original request")
	}
	_ = m.Ack()
}

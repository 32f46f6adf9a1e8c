package service

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hookrun/hookrun/pkg/testenv"
)

func TestConsumerLag_ReportsBacklogAndForgetsAConsumer(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	const stream, consumer = "LAGTEST", "lagtest"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"lagtest.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: consumer, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := js.Publish(ctx, "lagtest.x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}

	// The server counts a consumer's pending messages after the publish is
	// acked, not before: ask until it has (a busy machine takes a moment).
	var info *jetstream.ConsumerInfo
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if info = ReportConsumerOnce(ctx, js, stream, consumer); info != nil && info.NumPending == 3 {
			break
		}
	}
	if info == nil || info.NumPending != 3 {
		t.Fatalf("ReportConsumerOnce = %+v, want the info with 3 pending", info)
	}
	if got := testutil.ToFloat64(mConsumerPending.WithLabelValues(stream, consumer)); got != 3 {
		t.Fatalf("pending gauge = %v, want 3", got)
	}
	if info := ReportConsumerOnce(ctx, js, stream, "no-such-consumer"); info != nil {
		t.Fatalf("a missing consumer reported %+v, want nil", info)
	}

	ForgetConsumer(stream, consumer)
	for name, g := range map[string]*prometheus.GaugeVec{
		"pending":     mConsumerPending,
		"ack pending": mConsumerAckPending,
		"redelivered": mConsumerRedelivered,
	} {
		if n := testutil.CollectAndCount(g); n != 0 {
			t.Errorf("%s: %d series left after ForgetConsumer, want none", name, n)
		}
	}
}

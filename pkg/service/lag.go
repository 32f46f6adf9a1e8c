package service

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	mConsumerPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_consumer_pending_messages",
		Help: "Messages in a stream not yet delivered to a consumer (JetStream consumer info num_pending).",
	}, []string{"stream", "consumer"})
	mConsumerAckPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_consumer_ack_pending_messages",
		Help: "Messages delivered to a consumer and not yet acked (num_ack_pending).",
	}, []string{"stream", "consumer"})
	mConsumerRedelivered = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_consumer_redelivered_messages",
		Help: "Messages delivered more than once and not yet acked (num_redelivered).",
	}, []string{"stream", "consumer"})
)

// ReportConsumerLag polls a consumer's info every interval and exports its
// backlog, until ctx ends.
func ReportConsumerLag(ctx context.Context, js jetstream.JetStream, stream, consumer string, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ReportConsumerOnce(ctx, js, stream, consumer)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ReportConsumerOnce exports one consumer's backlog now and returns the
// info it was read from, or nil when the consumer did not answer (its
// series then keep their last values), so a caller can derive its own
// gauges without asking JetStream again.
func ReportConsumerOnce(ctx context.Context, js jetstream.JetStream, stream, consumer string) *jetstream.ConsumerInfo {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := js.Consumer(cctx, stream, consumer)
	if err != nil {
		return nil
	}
	info, err := c.Info(cctx)
	if err != nil {
		return nil
	}
	mConsumerPending.WithLabelValues(stream, consumer).Set(float64(info.NumPending))
	mConsumerAckPending.WithLabelValues(stream, consumer).Set(float64(info.NumAckPending))
	mConsumerRedelivered.WithLabelValues(stream, consumer).Set(float64(info.NumRedelivered))
	return info
}

// ForgetConsumer deletes a consumer's backlog series, for a consumer this
// process no longer reports (a deleted job's): a gauge left behind would
// show its last backlog forever.
func ForgetConsumer(stream, consumer string) {
	mConsumerPending.DeleteLabelValues(stream, consumer)
	mConsumerAckPending.DeleteLabelValues(stream, consumer)
	mConsumerRedelivered.DeleteLabelValues(stream, consumer)
}

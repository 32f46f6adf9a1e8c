package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	mDeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_dispatcher_deliveries_total",
		Help: "Deliveries handled, by webhook and outcome (dispatched, duplicate, filtered, failed, rejected).",
	}, []string{"webhook", "outcome"})
	mDedupSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookrun_dispatcher_dedup_duration_seconds",
		Help:    "Time of one batch of dedup claims.",
		Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	mUnconfirmedDuplicates = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrun_dispatcher_unconfirmed_duplicates_total",
		Help: "Run requests JetStream answered as duplicates of a message it does not hold (a write lost with its leader); each is stored again under the next message id.",
	})
	mHandedBack = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrun_dispatcher_deliveries_handed_back_total",
		Help: "Deliveries NAKed to come again: a publish failed, their batch ran out of time before they were decided, their webhook or job is not in this dispatcher's configuration yet, their run's status could not be read, or an earlier delivery of the same event still has its run in flight.",
	})
	mDedupErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrun_dispatcher_dedup_errors_total",
		Help: "Batches handed back because the dedup store did not answer.",
	})
	mBatchSize = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookrun_dispatcher_batch_size",
		Help:    "Deliveries per fetched batch.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200},
	})
	mPaused = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "hookrun_dispatcher_paused",
		Help: "1 while the dispatcher holds off because the dedup store does not answer.",
	})
	mAcceptToDispatch = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "hookrun_dispatcher_accept_to_dispatch_seconds",
		Help: "Time from the ingress accepting a delivery to its run request being stored.",
		// Milliseconds when the dispatchers keep up; minutes while a backlog
		// drains (a Redis outage, a dispatcher down): up to 10 minutes, so
		// p99 stays measurable instead of pinned at the top bucket.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120, 600},
	})
)

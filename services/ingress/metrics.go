package ingress

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// unknownWebhook labels requests to endpoints that match no webhook, so a
// scan of random ids cannot blow up label cardinality.
const unknownWebhook = "_unknown"

// slowBuckets serve the answer and publish times: fine below a second,
// and past the publish timeout (5 s by default; an answer after two of them
// and a duplicate's confirmation can take up to 4 of them and 1 s), so
// that a p99 in a JetStream stall reads its length, not the last bucket's.
var slowBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30}

var (
	mRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_ingress_requests_total",
		Help: "Webhook deliveries answered, by webhook (namespace/name) and HTTP status code.",
	}, []string{"webhook", "code"})
	mAuthFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_ingress_auth_failures_total",
		Help: "Deliveries refused by authentication, by webhook and reason (the error code).",
	}, []string{"webhook", "reason"})
	mDuplicates = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_ingress_duplicates_total",
		Help: "Accepted deliveries answered duplicate=true, by webhook.",
	}, []string{"webhook"})
	mPublishRetries = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrun_ingress_publish_retries_total",
		Help: "Deliveries published a second time under the same message id because JetStream's ack did not come in time (a write that landed is then answered as a duplicate of itself).",
	})
	mUnconfirmedDuplicates = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrun_ingress_unconfirmed_duplicates_total",
		Help: "Publishes JetStream answered as duplicates of a message it does not hold (a clustered write lost mid-way), stored again under their own message id.",
	})
	mRequestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookrun_ingress_request_duration_seconds",
		Help:    "Time to answer a delivery, by webhook.",
		Buckets: slowBuckets,
	}, []string{"webhook"})
	mPublishSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookrun_ingress_publish_duration_seconds",
		Help:    "Time from publishing a delivery to JetStream's ack, or to giving up on it (HOOKRUN_PUBLISH_TIMEOUT).",
		Buckets: slowBuckets,
	})
	mInflight = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "hookrun_ingress_inflight_requests",
		Help: "Deliveries being handled now.",
	})
	mPendingBodyBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "hookrun_ingress_pending_body_bytes",
		Help: "Bytes of authenticated deliveries' bodies being stored now (bounded by HOOKRUN_MAX_PENDING_BYTES).",
	})
	mOverloaded = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrun_ingress_overloaded_total",
		Help: "Deliveries answered 503 because the bodies being stored had reached HOOKRUN_MAX_PENDING_BYTES (JetStream slow or stalled, or more load than it takes).",
	})
	mBodyBytes = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookrun_ingress_body_bytes",
		Help:    "Size of accepted delivery bodies.",
		Buckets: prometheus.ExponentialBuckets(64, 4, 8),
	})
)

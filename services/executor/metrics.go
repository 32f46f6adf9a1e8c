package executor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

var (
	mRuns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_executor_runs_total",
		Help: "Runs ended, by job (namespace/name) and final status.",
	}, []string{"job", "status"})
	mRunSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookrun_executor_run_duration_seconds",
		Help:    "Run duration from start to end, by job.",
		Buckets: latencyBuckets,
	}, []string{"job"})
	mRunning = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_executor_running_runs",
		Help: "Runs executing now on this executor, by job.",
	}, []string{"job"})
	mCapacity = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "hookrun_executor_capacity_runs",
		Help: "This executor's cap on concurrent runs (HOOKRUN_EXECUTOR_MAX_CONCURRENT).",
	})
	mAcceptToStart = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookrun_executor_accept_to_start_seconds",
		Help:    "End-to-end latency from the ingress accepting a delivery to its run starting, by job.",
		Buckets: latencyBuckets,
	}, []string{"job"})
	mAcceptToFinish = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookrun_executor_accept_to_finish_seconds",
		Help:    "End-to-end latency from the ingress accepting a delivery to its run finishing, by job.",
		Buckets: latencyBuckets,
	}, []string{"job"})
	mRetries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_executor_retries_total",
		Help: "Failed runs scheduled for another attempt, by job.",
	}, []string{"job"})
	mCallbacks = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_executor_callbacks_total",
		Help: "Callback deliveries, by outcome (success, retry, failed).",
	}, []string{"outcome"})
)

package executor

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/service"
)

// latencyBuckets serve the run duration and both accept → start/finish
// latencies: milliseconds for a short job that starts at once, up to a day
// for a job at its longest timeout (24 h) or a run whose retries back off
// for hours. Sixteen buckets, fine below a second and about ×5 above it.
var latencyBuckets = []float64{.0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120, 600, 3600, 21600, 86400}

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
	mQueued = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrun_executor_queued_runs",
		Help: "Runs waiting in the job's consumer, not yet handed to any executor (its num_pending), by job.",
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
		Help: "Callback deliveries, by outcome (success, retry, failed, dropped).",
	}, []string{"outcome"})
)

// Callback outcomes: the values of hookrun_executor_callbacks_total's label.
const (
	callbackSuccess = "success"
	callbackRetry   = "retry"
	callbackFailed  = "failed"
	// callbackDropped: not sent, its webhook disabled, deleted or without
	// a callback now; not a receiver's failure (HookrunCallbacksFailing).
	callbackDropped = "dropped"
)

// initCallbackSeries creates every callbacks series at 0. A counter series
// born at 1 has no earlier sample for increase() to grow from, so without
// this the first callback given up would never fire HookrunCallbacksFailing.
func initCallbackSeries() {
	for _, outcome := range []string{callbackSuccess, callbackRetry, callbackFailed, callbackDropped} {
		mCallbacks.WithLabelValues(outcome)
	}
}

// reportBacklog exports, on the executor's periodic tick, the backlog of
// every job consumer it fetches from, the job's queued runs derived from
// it, and the backlog of the callbacks consumer. It also deletes the
// running series of deleted jobs whose last run has ended.
func (x *Executor) reportBacklog(ctx context.Context, workers map[string]*jobWorkers) {
	live := make(map[string]bool, len(workers))
	for consumer, w := range workers {
		live[w.job] = true
		if info := service.ReportConsumerOnce(ctx, x.js, bus.StreamRuns, consumer); info != nil {
			mQueued.WithLabelValues(w.job).Set(float64(info.NumPending))
		}
	}
	service.ReportConsumerOnce(ctx, x.js, bus.StreamStatus, bus.ConsumerCallbacks)
	sweepRunning(live)
}

// forgetJob deletes the series of a deleted job (namespace/name) and of its
// consumer, so dashboards do not show its last values forever.
func forgetJob(consumer, job string) {
	mQueued.DeleteLabelValues(job)
	service.ForgetConsumer(bus.StreamRuns, consumer)
	goneJobs.Lock()
	goneJobs.m[job] = true
	goneJobs.Unlock()
	sweepRunning(nil)
}

// goneJobs are deleted jobs whose running series is still to be deleted.
// A run in hand goes on after its job is deleted, and deleting the series
// under it would bring it back at -1 when the run ends; so the series goes
// once it is back to 0 (at once, or on a later tick).
var goneJobs = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// sweepRunning deletes the running series of gone jobs that run nothing
// now; a job that came back (in live) keeps its series.
func sweepRunning(live map[string]bool) {
	goneJobs.Lock()
	defer goneJobs.Unlock()
	for job := range goneJobs.m {
		if live[job] {
			delete(goneJobs.m, job)
			continue
		}
		var m dto.Metric
		if err := mRunning.WithLabelValues(job).Write(&m); err == nil && m.GetGauge().GetValue() == 0 {
			mRunning.DeleteLabelValues(job)
			delete(goneJobs.m, job)
		}
	}
}

// countEndsOf makes the job's series of every final status, at 0, before
// its first run ends: a series created by its first increment starts at 1,
// and increase() has no earlier sample to see it grow from, so a job's
// first failure on each executor went uncounted by HookrunRunsFailing.
func countEndsOf(job string) {
	for _, s := range []string{message.StatusSucceeded, message.StatusFailed, message.StatusTimedOut, message.StatusCancelled} {
		mRuns.WithLabelValues(job, s)
	}
}

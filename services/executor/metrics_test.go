package executor

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// series reads the series name{labels} (exactly those labels) from the
// default registry, without creating it as WithLabelValues would.
func series(t *testing.T, name string, labels map[string]string) (*dto.Metric, bool) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue series
				}
			}
			return m, true
		}
	}
	return nil, false
}

// gauge is series' gauge value.
func gauge(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	m, ok := series(t, name, labels)
	return m.GetGauge().GetValue(), ok
}

// counter is series' counter value.
func counter(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	m, ok := series(t, name, labels)
	return m.GetCounter().GetValue(), ok
}

// Runs waiting in a job's consumer show as hookrun_executor_queued_runs, the
// callbacks consumer's backlog is exported beside the jobs', and a deleted
// job leaves none of its series behind once drained: its runs still queued
// show until they have ended (failed), its running series until the run it
// had in hand has ended.
func TestExecutor_JobSeriesFollowTheQueueAndGoWithTheJob(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	x := e.start(nil)
	const name = "series-gone"
	jobLabel, consumer := "default/"+name, bus.JobConsumer("default", name)
	job := e.script(name, `while [ ! -f "$OUT/release" ]; do sleep 0.05; done; echo done`, func(j *resource.Job) {
		j.Spec.Concurrency = 1
	})
	for i := 0; i < 3; i++ {
		e.submit(job, fmt.Sprintf(`{"n":%d}`, i))
	}

	byJob := map[string]string{"job": jobLabel}
	lag := func(stream, consumer string) map[string]string {
		return map[string]string{"stream": stream, "consumer": consumer}
	}
	backlog := []string{"hookrun_consumer_pending_messages", "hookrun_consumer_ack_pending_messages", "hookrun_consumer_redelivered_messages"}

	// One run holds the job's only slot, two wait undelivered. The gauges
	// are set on the executor's 5 s tick.
	testenv.Eventually(t, 20*time.Second, func() error {
		running, _ := gauge(t, "hookrun_executor_running_runs", byJob)
		queued, okQ := gauge(t, "hookrun_executor_queued_runs", byJob)
		pending, okP := gauge(t, "hookrun_consumer_pending_messages", lag(bus.StreamRuns, consumer))
		if running != 1 || !okQ || queued != 2 || !okP || pending != 2 {
			return fmt.Errorf("running %v, queued %v (%v), consumer pending %v (%v); want 1, 2, 2", running, queued, okQ, pending, okP)
		}
		for _, m := range backlog {
			if _, ok := gauge(t, m, lag(bus.StreamStatus, bus.ConsumerCallbacks)); !ok {
				return fmt.Errorf("no %s for the callbacks consumer", m)
			}
		}
		return nil
	})

	kv, err := e.js.KeyValue(context.Background(), bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey("default", name)); err != nil {
		t.Fatal(err)
	}
	// While the run in hand goes on, the two queued runs wait for the slot
	// and still show: the deleted job drains (they end failed), it does
	// not hide them.
	x.jobGoneFromCatalog(t, job)
	x.waitPasses(t, 1) // the gauges set again since
	if v, ok := gauge(t, "hookrun_executor_queued_runs", byJob); !ok || v != 2 {
		t.Fatalf("queued series of the deleted job while its runs wait: %v (present %v), want 2", v, ok)
	}
	// The run in hand goes on, and its series with it: deleting it now
	// would bring it back at -1 when the run ends.
	if v, ok := gauge(t, "hookrun_executor_running_runs", byJob); !ok || v != 1 {
		t.Fatalf("running series of the deleted job while its run goes on: %v (present %v), want 1", v, ok)
	}

	if err := os.WriteFile(e.out+"/release", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Drained (the queued runs ended as failed), every series goes.
	testenv.Eventually(t, 25*time.Second, func() error {
		if v, ok := gauge(t, "hookrun_executor_running_runs", byJob); ok {
			return fmt.Errorf("hookrun_executor_running_runs of the deleted job is still %v", v)
		}
		if v, ok := gauge(t, "hookrun_executor_queued_runs", byJob); ok {
			return fmt.Errorf("hookrun_executor_queued_runs of the deleted job is still %v", v)
		}
		for _, m := range backlog {
			if v, ok := gauge(t, m, lag(bus.StreamRuns, consumer)); ok {
				return fmt.Errorf("%s of the deleted job's consumer is still %v", m, v)
			}
		}
		return nil
	})
	// A pass after that did not bring them back.
	x.waitPasses(t, 1)
	if v, ok := gauge(t, "hookrun_executor_queued_runs", byJob); ok {
		t.Errorf("hookrun_executor_queued_runs of the deleted job came back: %v", v)
	}
	if v, ok := gauge(t, "hookrun_consumer_pending_messages", lag(bus.StreamRuns, consumer)); ok {
		t.Errorf("the deleted job's consumer backlog came back: %v", v)
	}
}

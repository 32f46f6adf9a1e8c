package executor

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A job's run counters exist, at 0, once an executor fetches its runs:
// HookrunRunsFailing's increase() sees the first failure grow 0 → 1 (a
// series born at 1 by that failure is invisible to it).
func TestExecutor_AJobsRunCountersStartAtZero(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("counted", `exit 0`)
	e.start(nil)
	label := job.Metadata.Namespace + "/" + job.Metadata.Name
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := e.js.Consumer(context.Background(), bus.StreamRuns, bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name))
		return err
	})
	testenv.Eventually(t, 5*time.Second, func() error {
		for _, status := range []string{message.StatusFailed, message.StatusTimedOut, message.StatusSucceeded} {
			if v, ok := runsCounted(label, status); !ok || v != 0 {
				return &missingSeries{status: status}
			}
		}
		return nil
	})
}

type missingSeries struct{ status string }

func (m *missingSeries) Error() string { return "no series at 0 for status " + m.status }

// runsCounted reads hookrun_executor_runs_total{job, status} without
// making the series (WithLabelValues would).
func runsCounted(job, status string) (float64, bool) {
	ch := make(chan prometheus.Metric, 256)
	go func() { mRuns.Collect(ch); close(ch) }()
	var v float64
	found := false
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["job"] == job && labels["status"] == status {
			v, found = d.GetCounter().GetValue(), true
		}
	}
	return v, found
}

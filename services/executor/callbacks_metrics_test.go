package executor

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// counterSeries reads the series name{label=value} from the default
// registry without creating it, and whether it exists.
func counterSeries(t *testing.T, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// An executor exports every callbacks series from its start, at 0: the
// first callback given up must be an increase Prometheus sees, or
// HookrunCallbacksFailing cannot fire for it.
func TestExecutor_CallbackSeriesExistFromTheStart(t *testing.T) {
	e := newXEnv(t)
	e.start(nil)
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, outcome := range []string{"success", "retry", "failed"} {
			if _, ok := counterSeries(t, "hookrun_executor_callbacks_total", "outcome", outcome); !ok {
				return fmt.Errorf("hookrun_executor_callbacks_total{outcome=%q} does not exist", outcome)
			}
		}
		return nil
	})
}

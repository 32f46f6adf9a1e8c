package executor

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// An executor exports every callbacks series from its start, at 0: the
// first callback given up must be an increase Prometheus sees, or
// HookrunCallbacksFailing cannot fire for it.
func TestExecutor_CallbackSeriesExistFromTheStart(t *testing.T) {
	e := newXEnv(t)
	e.start(nil)
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, outcome := range []string{"success", "retry", "failed", "dropped"} {
			if _, ok := counter(t, "hookrun_executor_callbacks_total", map[string]string{"outcome": outcome}); !ok {
				return fmt.Errorf("hookrun_executor_callbacks_total{outcome=%q} does not exist", outcome)
			}
		}
		return nil
	})
}

package executor

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// What the keys SSE stream (GET /v1/runs/{id}/events) relies on to show
// every attempt of a retried run: the status that ends an attempt — the
// retry's "queued", or the final one — carries that attempt's output, and
// each attempt's live lines are numbered from 1 and published after its
// "running" is stored and before the status that ends it.
func TestExecutor_EveryAttemptsOutputReachesTheEventStream(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("fails-thrice", `echo "start $HOOKRUN_RUN_ATTEMPT"; echo "tick $HOOKRUN_RUN_ATTEMPT"; exit 1`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 2, resource.Duration(100*time.Millisecond)
	})

	// A watcher's view of the live lines: "<attempt>:<number> <text>".
	var mu sync.Mutex
	var lines []string
	var sub *nats.Subscription
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		var err error
		sub, err = e.nc.Subscribe(bus.OutputSubject(rr.ID), func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			if d := m.Header.Get(bus.HeaderDelivery); d != rr.DeliveryID {
				t.Errorf("line of delivery %q, want %q", d, rr.DeliveryID)
			}
			lines = append(lines, m.Header.Get(bus.HeaderAttempt)+":"+m.Header.Get(bus.HeaderLine)+" "+strings.TrimSuffix(string(m.Data), "\n"))
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer sub.Unsubscribe()
	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusFailed)

	var got []string
	for _, h := range e.history(rr) {
		got = append(got, fmt.Sprintf("%s/%d %q", h.Status, h.Attempt, h.Output))
	}
	wantHistory := []string{
		`queued/0 ""`,
		`running/1 ""`,
		`queued/1 "start 1\ntick 1\n"`,
		`running/2 ""`,
		`queued/2 "start 2\ntick 2\n"`,
		`running/3 ""`,
		`failed/3 "start 3\ntick 3\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(wantHistory, "\n") {
		t.Fatalf("statuses:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantHistory, "\n  "))
	}
	wantLines := []string{"1:1 start 1", "1:2 tick 1", "2:1 start 2", "2:2 tick 2", "3:1 start 3", "3:2 tick 3"}
	testenv.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(lines, "|") != strings.Join(wantLines, "|") {
			return fmt.Errorf("live lines %q, want %q", lines, wantLines)
		}
		return nil
	})
}

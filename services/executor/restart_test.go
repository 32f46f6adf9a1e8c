package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// ledger reads "<run id> <attempt>" lines a job appended: run id -> attempts.
func readLedger(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if id, att, ok := strings.Cut(l, " "); ok {
			seen[id] = append(seen[id], att)
		}
	}
	return seen
}

func ledgerJob(e *xenv, name string) (*resource.Job, string) {
	ledger := filepath.Join(e.out, name+".ledger")
	return e.script(name, `echo "$HOOKRUN_RUN_ID $HOOKRUN_RUN_ATTEMPT" >> "`+ledger+`"`, func(j *resource.Job) { j.Spec.Concurrency = 32 }), ledger
}

func TestExecutor_NATSRestartUnderLoadRunsEachOnce(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job, ledger := ledgerJob(e, "ledger")
	nc, js := e.connect()
	e.startWith(nc, js, func(c *Config) { c.MaxConcurrent = 32; c.AckWait = 3 * time.Second }, nil)
	var mu sync.Mutex
	var rrs []message.RunRequest
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 600 {
			if rr, err := e.trySubmit(job, "{}"); err == nil {
				mu.Lock()
				rrs = append(rrs, rr)
				mu.Unlock()
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	time.Sleep(700 * time.Millisecond)
	e.nats.Stop()
	time.Sleep(time.Second)
	e.nats.Start()
	<-done
	for _, rr := range rrs {
		want(t, "status", e.final(rr, 30*time.Second).Status, message.StatusSucceeded)
	}
	seen := readLedger(t, ledger)
	for id, atts := range seen {
		if len(atts) > 1 {
			t.Errorf("%s ran %d times: attempts %v", id, len(atts), atts)
		}
	}
	want(t, "runs executed", len(seen), len(rrs))
}

// A run whose start stalls past its AckWait (NATS stalling between fetch
// and start) has been handed to another executor meanwhile: the stalled
// executor must not start it too.
func TestExecutor_StalledStartIsNotRunTwice(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.AckWait = time.Second
	job, ledger := ledgerJob(e, "stall")
	var once sync.Once
	stalled := make(chan struct{})
	e.startWith(e.nc, e.js, nil, func(x *Executor) {
		x.beforeStart = func(string) {
			once.Do(func() {
				close(stalled)
				time.Sleep(2 * e.conf.AckWait)
			})
		}
	})
	rr := e.submit(job, "{}")
	<-stalled
	e.start(nil) // gets the run once its AckWait lapses
	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	time.Sleep(2 * e.conf.AckWait) // the stalled executor wakes up meanwhile
	want(t, "executions", len(readLedger(t, ledger)[rr.ID]), 1)
	want(t, "final statuses", finals(e.history(rr)), 1)
}

// A run that ends while NATS is down keeps its result: the executor
// retries the final status until NATS is back (however long that takes)
// rather than handing the run back to be run again.
func TestExecutor_FinalStatusWaitsOutANATSOutage(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	ledger := filepath.Join(e.out, "outage.ledger")
	job := e.script("outage", `sleep 1; echo "$HOOKRUN_RUN_ID $HOOKRUN_RUN_ATTEMPT" >> "`+ledger+`"`)
	nc, js := e.connect()
	e.startWith(nc, js, func(c *Config) { c.AckWait = 3 * time.Second }, func(x *Executor) {
		x.statusRetry = 50 * time.Millisecond
	})
	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusRunning, 1)
	e.nats.Stop()
	// The job ends after 1 s, with NATS away; the outage outlasts a dozen
	// tries a second apart.
	time.Sleep(13 * time.Second)
	if len(readLedger(t, ledger)[rr.ID]) != 1 {
		t.Fatal("the job did not run while NATS was down")
	}
	e.nats.Start()
	r := e.final(rr, 30*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 1)
	time.Sleep(2 * 3 * time.Second) // a redelivery, had the run been handed back, would run by now
	want(t, "executions", len(readLedger(t, ledger)[rr.ID]), 1)
	want(t, "final statuses", finals(e.history(rr)), 1)
}

// An executor cut off while its run went on (a partition) may come back
// after another executor took the run over and stored a newer status. Its
// final status must not overwrite that newer attempt: it is stored only
// right after its own "running".
func TestExecutor_FinalStatusDoesNotOverwriteATakeOver(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.AckWait = 20 * time.Second
	ledger := filepath.Join(e.out, "takeover.ledger")
	job := e.script("takeover", `sleep 3; echo "$HOOKRUN_RUN_ID $HOOKRUN_RUN_ATTEMPT" >> "`+ledger+`"`)
	e.start(nil)
	rr := e.submit(job, "{}")
	r := e.waitStatus(rr, message.StatusRunning, 1)
	// Another executor has taken the run over and started attempt 2.
	now := time.Now().UTC()
	r.Attempt, r.StartedAt = 2, &now
	if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if len(readLedger(t, ledger)[rr.ID]) == 0 {
			return errors.New("attempt 1 has not ended yet")
		}
		return nil
	})
	time.Sleep(time.Second) // attempt 1's final status would be stored by now
	cur, err := runstatus.Get(context.Background(), e.js, rr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Status != message.StatusRunning || cur.Attempt != 2 {
		t.Fatalf("the run is %s (attempt %d): attempt 1's result overwrote attempt 2", cur.Status, cur.Attempt)
	}
	want(t, "final statuses", finals(e.history(rr)), 0)
}

// A run that outlives its statuses in STATUS (a job longer than
// HOOKRUN_RETENTION) still stores its final status, and is acked: not
// retried for ever against a "running" that is no longer there, holding
// its job's slot, and run again on the next start.
func TestExecutor_FinalStatusStoredWhenTheRunsStatusAgedOut(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("aged", `sleep 2`)
	e.start(nil)
	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusRunning, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(bus.StatusSubject(rr.Namespace, rr.ID))); err != nil {
		t.Fatal(err)
	}
	r := e.final(rr, 15*time.Second)
	want(t, "final status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 1)
	e.waitRunsAcked()
}

// A retry copy whose run's status has aged out (a backoff longer than
// HOOKRUN_RETENTION) runs as the attempt it was scheduled for, not as
// attempt 1 again: the job's retries stay bounded.
func TestExecutor_RetryCopyWithoutStatusKeepsItsAttempt(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("agedretry", `exit 3`, func(j *resource.Job) { j.Spec.Retries = 2 })
	e.start(nil)
	rr := message.RunRequest{
		Schema: message.SchemaRunRequest, ID: ident.RunID(ident.NewUID(), "evt-aged", ""), Namespace: job.Metadata.Namespace,
		Job: job.Metadata.Name, Webhook: "hook", DeliveryID: ident.NewDeliveryID(), EventID: "evt-aged",
		Args: map[string]string{}, Payload: []byte(`{}`), ReceivedAt: time.Now().UTC(), QueuedAt: time.Now().UTC(),
	}
	b, _ := json.Marshal(rr)
	m := nats.NewMsg(bus.RunSubject(rr.Namespace, rr.Job))
	m.Data = b
	m.Header.Set(bus.HeaderSchema, message.SchemaRunRequest)
	m.Header.Set(bus.HeaderRetryAttempt, "3") // the copy for attempt 3; no status left
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	r := e.final(rr, 15*time.Second)
	want(t, "final status", r.Status, message.StatusFailed)
	want(t, "attempt", r.Attempt, 3)
	want(t, "retry scheduled", r.RetryAt == nil, true)
}

// An attempt its executor's shutdown or death stopped (a "running" status
// the run is taken over from) does not use up the job's retries: with
// retries 1, the attempts after it still get their one retry. Past three
// such attempts they count, and past ten the run is given up, so that one
// that kills its executor every time ends.
func TestExecutor_InterruptedAttemptsDoNotUseUpRetries(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	cases := []struct {
		interrupted, wantAttempt int
		rr                       message.RunRequest
		wantError                string
	}{{interrupted: 1, wantAttempt: 3}, {interrupted: 5, wantAttempt: 6},
		// The eleventh is not started: the run is given up.
		{interrupted: 11, wantAttempt: 12, wantError: "given up: an executor stopped (shut down, or died: out of memory?) during 11 of its attempts"}}
	for i := range cases {
		tc := &cases[i]
		job := e.script(fmt.Sprintf("flaky-%d", tc.interrupted), `exit 1`, func(j *resource.Job) {
			j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(100*time.Millisecond)
		})
		tc.rr = e.submit(job, `{}`)
		// As an executor that started attempt tc.interrupted and died wrote it.
		now := time.Now().UTC()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := runstatus.Publish(ctx, e.js, &message.Run{Kind: message.KindRun, ID: tc.rr.ID, Namespace: tc.rr.Namespace, Webhook: tc.rr.Webhook,
			Job: tc.rr.Job, DeliveryID: tc.rr.DeliveryID, Status: message.StatusRunning, Attempt: tc.interrupted, Interrupted: tc.interrupted - 1, StartedAt: &now})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	e.start(nil)
	for _, tc := range cases {
		r := e.final(tc.rr, 15*time.Second)
		want(t, "final status", r.Status, message.StatusFailed)
		want(t, fmt.Sprintf("final attempt after %d interrupted", tc.interrupted), r.Attempt, tc.wantAttempt)
		if tc.wantError != "" {
			want(t, "error", r.Error, tc.wantError)
		}
		if tc.interrupted == 1 {
			// Its first retry waits the first backoff: the interrupted
			// attempt does not double it.
			var retried []string
			for _, h := range e.history(tc.rr) {
				if h.RetryAt != nil {
					retried = append(retried, h.Error)
				}
			}
			if len(retried) != 1 || !strings.HasSuffix(retried[0], "retrying in 100ms") {
				t.Errorf("retries after an interrupted attempt: %q, want one retrying in 100ms", retried)
			}
		}
	}
}

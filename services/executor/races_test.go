package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// Runs still queued in RUNS when their job is deleted must still reach a
// final state (the dispatcher's resume comment: "A job deleted since is
// left to the executor, which fails the run with why").
func TestExecutor_QueuedRunsOfADeletedJobEndFailed(t *testing.T) {
	e := newXEnv(t)
	e.start(nil)
	job := e.script("deljob", `while [ ! -f "$OUT/release" ]; do sleep 0.05; done`, func(j *resource.Job) { j.Spec.Concurrency = 1 })
	first := e.submit(job, `{"n":1}`)
	second := e.submit(job, `{"n":2}`)
	e.waitStatus(first, message.StatusRunning, 1)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey("default", "deljob")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(e.out+"/release", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.final(first, 10*time.Second)
	r := e.final(second, 15*time.Second)
	want(t, "status of the run queued when its job was deleted", r.Status, message.StatusFailed)
	want(t, "why", strings.Contains(r.Error, "no longer exists"), true)
}

// keys cancels a run it read as queued (mark, cancel message, "cancelled"
// status) just as an executor, having read no mark, is about to store
// "running". The run must end with one final status (one callback).
func TestExecutor_CancelWhileStartingEndsOnce(t *testing.T) {
	e := newXEnv(t)
	srv := newRecorder(t, 0, 200)
	var once sync.Once
	var rrp *message.RunRequest
	ready := make(chan struct{})
	e.startWith(e.nc, e.js, nil, func(x *Executor) {
		x.beforeStart = func(id string) {
			once.Do(func() {
				<-ready
				e.cancelRun(*rrp, true)            // keys: queued -> cancelled
				time.Sleep(300 * time.Millisecond) // the cancel message arrives
			})
		}
	})
	job := e.script("cancel-race", `sleep 0.2`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URL: srv.srv.URL + "/cb"}
	})
	rrp = &rr
	close(ready)
	e.final(rr, 10*time.Second)
	time.Sleep(3 * time.Second) // let the callbacks go out
	h := e.history(rr)
	var sts []string
	for _, r := range h {
		sts = append(sts, r.Status)
	}
	t.Logf("history: %s; callbacks: %d", strings.Join(sts, " -> "), len(srv.got()))
	want(t, "final statuses", finals(h), 1)
	want(t, "callbacks", len(srv.got()), 1)
}

// An event sent again after its (short) dedup window reuses the run id. The
// dispatcher now waits for the first delivery's run to end before storing
// the second's "queued"; should a later delivery's status still come over a
// running one (records of an earlier release), the first delivery's job
// must not run a second time when its request comes back.
func TestExecutor_RequestOfAnEarlierDeliveryIsNotRunAgain(t *testing.T) {
	e := newXEnv(t)
	e.start(nil)
	job := e.script("rerun", `echo "$HOOKRUN_ARG_WEBHOOK_PAYLOAD" >> "$OUT/runs"; while [ ! -f "$OUT/release" ]; do sleep 0.05; done`,
		func(j *resource.Job) { j.Spec.Concurrency = 1 })
	d1 := e.submit(job, "d1")
	e.waitStatus(d1, message.StatusRunning, 1)
	d2 := e.submit(job, "d2", func(rr *message.RunRequest) { rr.ID = d1.ID })
	if err := os.WriteFile(e.out+"/release", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// d2 shares d1's run id: d1's final status is not d2's. Once d2's is
	// stored and RUNS holds no request (none can come back), the ledger of
	// executions is complete.
	var r *message.Run
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, h := range e.history(d2) {
			if message.Final(h.Status) && h.DeliveryID == d2.DeliveryID {
				r = &h
				return nil
			}
		}
		return fmt.Errorf("no final status of delivery %s yet", d2.DeliveryID)
	})
	e.waitRunsAcked()
	b, _ := os.ReadFile(e.out + "/runs")
	got := strings.Fields(string(b))
	t.Logf("executions: %v; final: %s of delivery %s (d1 %s, d2 %s)", got, r.Status, r.DeliveryID, d1.DeliveryID, d2.DeliveryID)
	want(t, "executions", strings.Join(got, ","), "d1,d2")
}

// A retry that falls due after its job was deleted and its queue drained
// still ends: moved into RUNS, it is drained too (failed), not left queued.
func TestExecutor_RetryOfADeletedJobEndsFailed(t *testing.T) {
	e := newXEnv(t)
	e.start(nil)
	job := e.script("delretry", `exit 3`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(8*time.Second)
	})
	rr := e.submit(job, `{}`)
	e.waitStatus(rr, message.StatusQueued, 1) // failed once, its retry scheduled
	kv, err := e.js.KeyValue(context.Background(), bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey("default", "delretry")); err != nil {
		t.Fatal(err)
	}
	r := e.final(rr, 25*time.Second)
	want(t, "status of the retry of a deleted job", r.Status, message.StatusFailed)
	want(t, "why", strings.Contains(r.Error, "no longer exists"), true)
}

// A run that keys cancelled while it was queued is counted cancelled in
// hookrun_executor_runs_total when its request ends, as every other run.
func TestExecutor_RunCancelledWhileQueuedIsCounted(t *testing.T) {
	e := newXEnv(t)
	labels := map[string]string{"job": "default/cancelcount", "status": message.StatusCancelled}
	before, _ := counter(t, "hookrun_executor_runs_total", labels) // the process' (go test -count)
	job := e.script("cancelcount", `true`)
	rr := e.submit(job, "{}")
	e.cancelRun(rr, true)
	e.start(nil)
	e.final(rr, 10*time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if v, _ := counter(t, "hookrun_executor_runs_total", labels); v != before+1 {
			return fmt.Errorf("runs_total cancelled = %v, %v before", v, before)
		}
		return nil
	})
}

// A job deleted while no executor ran: the executor that starts later finds
// its consumer holding runs and drains it (they end failed), rather than
// leaving them queued for ever.
func TestExecutor_DeletedJobsQueueIsDrainedByALaterExecutor(t *testing.T) {
	e := newXEnv(t)
	first := e.startWith(e.nc, e.js, nil, nil)
	job := e.script("gone-before", `true`, func(j *resource.Job) { j.Spec.Concurrency = 1 })
	testenv.Eventually(t, 10*time.Second, func() error { // its consumer exists
		_, err := e.js.Consumer(context.Background(), bus.StreamRuns, bus.JobConsumer("default", "gone-before"))
		return err
	})
	first.stop()
	rr := e.submit(job, `{}`)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey("default", "gone-before")); err != nil {
		t.Fatal(err)
	}
	e.start(nil)
	r := e.final(rr, 20*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "why", strings.Contains(r.Error, "no longer exists"), true)
}

// A job deleted before any executor made its consumer (none was running,
// or each one's catalog was behind) leaves its queued run on a subject no
// consumer reads: an executor starting later gives it one, and the run
// ends failed as of a job that no longer exists, instead of staying
// queued for ever.
func TestExecutor_RunOfAJobDeletedBeforeItHadAConsumerEnds(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("never-fetched", `true`)
	rr := e.submit(job, `{}`)
	e.deleteJob(job)
	if _, err := e.js.Consumer(context.Background(), bus.StreamRuns, bus.JobConsumer("default", "never-fetched")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the job's consumer: %v, want none before an executor starts", err)
	}
	e.start(nil)
	r := e.final(rr, 30*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "why", strings.Contains(r.Error, "no longer exists"), true)
}

// An executor whose catalog does not hold a job (here: it cannot read the
// stored record; in production, its watch lags behind the executor that
// made the job's consumer right after the job was created) asks the
// bucket's leader before it drains the job's queue: the runs of a job that
// exists are not failed as "no longer exists".
func TestExecutor_JobThisCatalogLacksButTheBucketHasIsNotDrained(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, bus.ConfigKey("default", "fresh"), []byte(`{"not a job the catalog reads`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.CreateOrUpdateConsumer(ctx, bus.StreamRuns, jetstream.ConsumerConfig{
		Durable: bus.JobConsumer("default", "fresh"), FilterSubject: bus.RunSubject("default", "fresh"), AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	job := &resource.Job{Metadata: resource.Meta{Namespace: "default", Name: "fresh"}}
	rr := e.submit(job, `{}`)
	x := e.start(nil)
	// Two whole scans of orphaned consumers: a drain started by the first
	// would have failed the run by the end of the second.
	x.waitPasses(t, 2)
	r, err := runstatus.Get(ctx, e.js, rr.ID)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "status", r.Status, message.StatusQueued)
}

// A cancel that reaches the executor after it read no cancel mark, and
// before the command starts, keeps the command from starting at all: the
// run ends cancelled, with no exit code, and the job's first line never ran.
func TestExecutor_CancelJustBeforeTheStartRunsNothing(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	var rrp atomic.Pointer[message.RunRequest]
	e.startWith(e.nc, e.js, nil, func(x *Executor) {
		x.beforeStart = func(id string) {
			if rr := rrp.Load(); rr != nil && rr.ID == id {
				// Only the cancel message: the mark was read (absent)
				// before it was written.
				if err := e.nc.Publish(bus.CancelSubject(id), []byte(id)); err != nil {
					t.Error(err)
				}
				time.Sleep(300 * time.Millisecond) // it arrives
			}
		}
	})
	job := e.script("cancel-before-start", `touch "$OUT/started"`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) { rrp.Store(rr) })
	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusCancelled)
	if r.ExitCode != nil {
		t.Fatalf("the command started after its run was cancelled (exit code %d)", *r.ExitCode)
	}
	if _, err := os.Stat(e.out + "/started"); err == nil {
		t.Fatal("the command ran after its run was cancelled")
	}
}

// The dispatcher's request stored twice in RUNS (again after the duplicate
// window, its ack of the delivery lost) has the same copy number: the
// second message does not start the run while the first runs it, on
// another executor with room for both.
func TestExecutor_SameRequestStoredTwiceRunsOnce(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	one := func(c *Config) { c.MaxConcurrent = 1 }
	e.start(one)
	nc2, js2 := e.connect()
	e.startWith(nc2, js2, one, nil)
	job := e.script("twice", `echo "$HOOKRUN_RUN_ATTEMPT" >> "$OUT/starts"; sleep 2`, func(j *resource.Job) { j.Spec.Concurrency = 2 })
	rr := e.submit(job, `{}`)
	e.waitStatus(rr, message.StatusRunning, 1)
	b, _ := json.Marshal(rr)
	m := nats.NewMsg(bus.RunSubject(rr.Namespace, rr.Job))
	m.Data = b
	m.Header.Set(bus.HeaderSchema, message.SchemaRunRequest)
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil { // no message id: past the window
		t.Fatal(err)
	}
	want(t, "status", e.final(rr, 15*time.Second).Status, message.StatusSucceeded)
	e.waitRunsAcked()
	want(t, "starts (attempt numbers)", strings.TrimSpace(e.readFile("starts")), "1")
	for _, h := range e.history(rr) {
		if h.Attempt > 1 {
			t.Errorf("status %s of attempt %d: the second message started the run again", h.Status, h.Attempt)
		}
	}
}

// A "running" record whose request is no longer in RUNS (acked without a
// final status, or removed) does not strand the run: another message of the
// request takes it over as the next attempt.
func TestExecutor_RunningRecordOfARequestGoneIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("orphan", `echo "$HOOKRUN_RUN_ATTEMPT" >> "$OUT/orphan-starts"`)
	rr := e.submit(job, `{}`)
	e.waitRunsLeft(1, "the request")
	// As an executor that ran the request at RUNS sequence 1<<40 wrote it.
	now := time.Now().UTC()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := runstatus.Publish(ctx, e.js, &message.Run{Kind: message.KindRun, ID: rr.ID, Namespace: rr.Namespace, Webhook: rr.Webhook,
		Job: rr.Job, DeliveryID: rr.DeliveryID, Status: message.StatusRunning, Attempt: 1, StartedAt: &now, RequestSeq: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	e.start(nil)
	want(t, "status", e.final(rr, 15*time.Second).Status, message.StatusSucceeded)
	want(t, "starts (attempt numbers)", strings.TrimSpace(e.readFile("orphan-starts")), "2")
}

// A cancel whose core NATS message this executor missed (it was
// reconnecting) still stops the run: its mark is checked while it runs.
func TestExecutor_CancelMarkWithoutItsMessageStopsTheRun(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("long", `sleep 30`)
	rr := e.submit(job, `{}`)
	e.waitStatus(rr, message.StatusRunning, 1)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketCancels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), rr.ID, bus.CancelMark(rr.DeliveryID, time.Now())); err != nil {
		t.Fatal(err)
	}
	r := e.final(rr, 10*time.Second) // AckWait 1.5s: checked every 0.5s
	want(t, "status", r.Status, message.StatusCancelled)
	want(t, "error", r.Error, "cancelled while running")
}

package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A callbacks consumer whose files the server lost (nats-server keeps one
// made again while it still removed the files of the one deleted before
// it: it delivers, but every update of it fails) is deleted and made
// afresh by an executor that starts, after the ack floor it had reached:
// the callback of a status stored meanwhile is sent, the one sent before
// is not sent again. Before, the executor retried the update for ever and
// never became ready (a flaky CI failure of
// TestExecutor_CallbacksConsumerMadeAgainIsTakenAsItIs).
func TestExecutor_ACallbacksConsumerWhoseFilesWereLostIsMadeAfresh(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	sink := newCallbackSink(t)
	r := e.start(nil)
	r.ready(t)
	job := e.script("lostfiles", `echo hi`)
	before := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: sink.url} })
	want(t, "status", e.final(before, 10*time.Second).Status, message.StatusSucceeded)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := sink.count(before.ID); n != 1 {
			return fmt.Errorf("%d callbacks of the first run", n)
		}
		return nil
	})
	r.stop()

	if err := os.RemoveAll(e.nats.ConsumerDir(bus.StreamStatus, bus.ConsumerCallbacks)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	between := &message.Run{Kind: message.KindRun, ID: "run_between", Namespace: "default", Job: "j", DeliveryID: "d", Status: message.StatusSucceeded,
		Attempt: 1, QueuedAt: &now, StartedAt: &now, FinishedAt: &now, Callback: &message.Callback{URL: sink.url}}
	if err := runstatus.Publish(context.Background(), e.js, between); err != nil {
		t.Fatal(err)
	}

	other := e.start(nil)
	other.ready(t)
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := sink.count(between.ID); n != 1 {
			return fmt.Errorf("%d callbacks of the status stored while no executor ran", n)
		}
		return nil
	})
	want(t, "callbacks of the run before the files were lost", sink.count(before.ID), 1)
	if _, err := os.Stat(filepath.Join(e.nats.ConsumerDir(bus.StreamStatus, bus.ConsumerCallbacks), "meta.inf")); err != nil {
		t.Fatalf("the consumer made afresh has no files: %v", err)
	}
}

// A job's consumer whose files the server lost is deleted and made afresh
// by an executor that starts: the run queued while no executor ran (RUNS
// is a work queue, it is still there) is run. Before, every pass of the
// job manager failed to update it, and the job's runs waited for ever.
func TestExecutor_AJobConsumerWhoseFilesWereLostIsMadeAfresh(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	r := e.start(nil)
	r.ready(t)
	job := e.script("lostjobfiles", `echo hi`)
	first := e.submit(job, "{}")
	want(t, "status of the first run", e.final(first, 10*time.Second).Status, message.StatusSucceeded)
	r.stop()

	if err := os.RemoveAll(e.nats.ConsumerDir(bus.StreamRuns, bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name))); err != nil {
		t.Fatal(err)
	}
	second := e.submit(job, "{}")
	e.start(nil)
	want(t, "status of the run queued while no executor ran", e.final(second, 20*time.Second).Status, message.StatusSucceeded)
}

// The consumer of due retries whose files the server lost is made afresh
// as a work-queue consumer must be (from the stream's first message: a
// start after an ack floor is refused on RETRIES), and a failed run's
// retry still runs.
func TestExecutor_ARetriesConsumerWhoseFilesWereLostIsMadeAfresh(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	r := e.start(nil)
	r.ready(t)
	r.stop()

	if err := os.RemoveAll(e.nats.ConsumerDir(bus.StreamRetries, bus.ConsumerRetries)); err != nil {
		t.Fatal(err)
	}
	other := e.start(nil)
	other.ready(t)
	job := e.script("lostretryfiles", `exit 3`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(500*time.Millisecond)
	})
	rr := e.submit(job, "{}")
	got := e.final(rr, 15*time.Second)
	want(t, "status", got.Status, message.StatusFailed)
	want(t, "attempt (the retry ran)", got.Attempt, 2)
}

package executor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// askOwner asks, as an executor about to take run id over does
// (runningElsewhere), whether an executor answers for it.
func askOwner(t *testing.T, nc *nats.Conn, id string) (*nats.Msg, bool) {
	t.Helper()
	m, err := nc.Request(bus.OutputSnapshotSubject(id), nil, time.Second)
	switch {
	case err == nil:
		return m, true
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout):
		return nil, false
	}
	t.Fatal(err)
	return nil, false
}

// A run answers for itself from its "running" on, until its final status
// is stored: while its command is being set up, and once it has ended
// while its final status is stored (which may take long when NATS is
// struggling). Before, it answered only while the command ran, and an
// executor taking it over in either gap ran it a second time.
func TestExecutor_RunAnswersForItselfFromRunningToItsFinalStatus(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	atRunning, atFinal := make(chan string, 1), make(chan string, 1)
	goOn := make(chan struct{})
	e.startWith(e.nc, e.js, nil, func(x *Executor) {
		x.afterRunning = func(id string) { atRunning <- id; <-goOn }
		x.beforeFinal = func(id string) { atFinal <- id; <-goOn }
	})
	job := e.script("answers", `echo hello-from-the-run`)
	rr := e.submit(job, "{}")

	id := <-atRunning
	want(t, "run", id, rr.ID)
	if _, ok := askOwner(t, e.nc, rr.ID); !ok {
		t.Error("no executor answers for the run between its running and its command's start")
	}
	goOn <- struct{}{}

	<-atFinal
	if m, ok := askOwner(t, e.nc, rr.ID); !ok {
		t.Error("no executor answers for the run between its command's end and its final status")
	} else if !strings.Contains(string(m.Data), "hello-from-the-run") {
		t.Errorf("the answer after the command ended lacks its output: %q", m.Data)
	}
	goOn <- struct{}{}

	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, ok := askOwner(t, e.nc, rr.ID); ok {
			return errors.New("an executor still answers for a run that has ended")
		}
		return nil
	})
}

// An operator deletes a job's consumer while a run's command has ended and
// its final status is being stored. The consumer made again hands the run
// out with the "running" its own request wrote: the executor storing its
// final status answers for it, and it does not run twice.
func TestExecutor_ConsumerDeletedWhileAFinalStatusIsStoredRunsItOnce(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("finalgap", `echo "$HOOKRUN_RUN_ID" >> "$OUT/starts"`)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	seam := func(x *Executor) {
		x.beforeFinal = func(string) {
			first := false
			once.Do(func() { first = true })
			if first {
				close(held)
				<-release
			}
		}
	}
	e.startWith(e.nc, e.js, nil, seam)
	nc, js := e.connect()
	e.startWith(nc, js, nil, seam)
	ctx := context.Background()
	name := bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name)
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := e.js.Consumer(ctx, bus.StreamRuns, name)
		return err
	})
	rr := e.submit(job, "{}")
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the run's command did not end")
	}
	if err := e.js.DeleteConsumer(ctx, bus.StreamRuns, name); err != nil {
		t.Fatal(err)
	}
	// The consumer made again hands the run out, and an executor decides.
	testenv.Eventually(t, 30*time.Second, func() error {
		c, err := e.js.Consumer(ctx, bus.StreamRuns, name)
		if err != nil {
			return err
		}
		if c.CachedInfo().Delivered.Consumer == 0 {
			return errors.New("the run is not handed out again yet")
		}
		return nil
	})
	time.Sleep(2 * ownerAsk)
	close(release)

	r := e.final(rr, 30*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 1)
	if starts := strings.Fields(e.readFile("starts")); len(starts) != 1 {
		t.Errorf("the run started %d times: %v", len(starts), starts)
	}
	e.waitRunsAcked()
}

package executor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// consumerGoneFromRuns waits until RUNS has no consumer of that name.
func (e *xenv) consumerGoneFromRuns(name string) {
	e.t.Helper()
	testenv.Eventually(e.t, 20*time.Second, func() error {
		_, err := e.js.Consumer(context.Background(), bus.StreamRuns, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return errors.New("consumer " + name + " is still there")
	})
}

// jobGoneFromCatalog waits until the executor's catalog no longer holds
// job: its manager has been told (a deleted job's loop drains from then).
func (r *xrun) jobGoneFromCatalog(t *testing.T, job *resource.Job) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := r.x.cat.Job(job.Metadata.Namespace, job.Metadata.Name); ok {
			return errors.New("job " + job.Metadata.Name + " still in the executor's catalog")
		}
		return nil
	})
}

// deleteJob deletes job from the jobs bucket, as keys does.
func (e *xenv) deleteJob(job *resource.Job) {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), bus.BucketJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), bus.ConfigKey(job.Metadata.Namespace, job.Metadata.Name)); err != nil {
		e.t.Fatal(err)
	}
}

// A deleted job's consumer is kept once drained, and so is an empty one of
// a deleted job left from before: a run request stored on its subject
// later (a dispatcher resuming a delivery publishes it whatever the job is
// now) would otherwise wait in RUNS for ever.
func TestExecutor_DrainedConsumerOfADeletedJobIsKept(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	leftover := bus.JobConsumer("default", "leftover")
	if _, err := e.js.CreateOrUpdateConsumer(context.Background(), bus.StreamRuns, jetstream.ConsumerConfig{
		Durable: leftover, FilterSubject: bus.RunSubject("default", "leftover"), AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	x := e.start(nil)
	job := e.script("gonejob", `echo hi`)
	want(t, "run", e.final(e.submit(job, "{}"), 10*time.Second).Status, message.StatusSucceeded)
	e.deleteJob(job)
	x.jobGoneFromCatalog(t, job)
	x.waitPasses(t, 2) // the drained loop ended, orphans looked at again
	for _, name := range []string{bus.JobConsumer("default", "gonejob"), leftover} {
		if _, err := e.js.Consumer(context.Background(), bus.StreamRuns, name); err != nil {
			t.Errorf("consumer %s: %v", name, err)
		}
	}
}

// A retry that falls due after its job was deleted and the job's consumer
// deleted by hand still ends: it gets a consumer, drained in turn, rather
// than waiting in RUNS for ever.
func TestExecutor_RetryDueAfterItsJobsConsumerWasDeletedEndsFailed(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("lateretry", `exit 3`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(15*time.Second)
	})
	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusQueued, 1) // failed once, its retry scheduled
	e.deleteJob(job)
	name := bus.JobConsumer("default", "lateretry")
	testenv.Eventually(t, 10*time.Second, func() error {
		err := e.js.DeleteConsumer(context.Background(), bus.StreamRuns, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	})
	e.consumerGoneFromRuns(name)
	r := e.final(rr, 30*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "why", strings.Contains(r.Error, "no longer exists"), true)
	e.waitRunsAcked()
}

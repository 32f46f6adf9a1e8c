package executor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// An operator deletes a job's consumer while two executors run its runs.
// The consumer made again hands out every unacked run at once, each with
// the "running" its own request wrote, as a dead executor's would: the
// executors still running them answer for them, and none runs twice.
func TestExecutor_ConsumerDeletedWhileRunsInFlightRunsNoneTwice(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("recr", `echo "$HOOKRUN_RUN_ID" >> "$OUT/starts"; sleep 8`, func(j *resource.Job) { j.Spec.Concurrency = 4 })
	e.start(nil)
	nc, js := e.connect()
	e.startWith(nc, js, nil, nil)
	ctx := context.Background()
	name := bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name)
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := e.js.Consumer(ctx, bus.StreamRuns, name)
		return err
	})
	var rrs []message.RunRequest
	for range 4 {
		rrs = append(rrs, e.submit(job, "{}"))
	}
	for _, rr := range rrs {
		e.waitStatus(rr, message.StatusRunning, 1)
	}
	if err := e.js.DeleteConsumer(ctx, bus.StreamRuns, name); err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs {
		r := e.final(rr, 40*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 1)
	}
	if starts := strings.Fields(e.readFile("starts")); len(starts) != len(rrs) {
		t.Errorf("%d runs started %d times: %v", len(rrs), len(starts), starts)
	}
	e.waitRunsAcked()
}

// The same for an HTTP job's runs, which have no output so far to answer
// with but answer for themselves all the same.
func TestExecutor_ConsumerDeletedWhileHTTPRunsInFlightRunsNoneTwice(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		time.Sleep(8 * time.Second)
	}))
	t.Cleanup(srv.Close)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "recrhttp"}, Spec: resource.JobSpec{Concurrency: 4, HTTP: &resource.HTTPAction{URL: srv.URL}}})
	e.start(nil)
	nc, js := e.connect()
	e.startWith(nc, js, nil, nil)
	ctx := context.Background()
	name := bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name)
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := e.js.Consumer(ctx, bus.StreamRuns, name)
		return err
	})
	var rrs []message.RunRequest
	for range 4 {
		rrs = append(rrs, e.submit(job, "{}"))
	}
	for _, rr := range rrs {
		e.waitStatus(rr, message.StatusRunning, 1)
	}
	if err := e.js.DeleteConsumer(ctx, bus.StreamRuns, name); err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs {
		r := e.final(rr, 40*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 1)
	}
	want(t, "requests sent", int(hits.Load()), len(rrs))
}

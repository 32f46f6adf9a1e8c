package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// lose takes a durable consumer away from a running executor: an
// operator's `nats consumer rm`, or its stream deleted and laid out again
// by keys, the executor not ready meanwhile.
type lose struct {
	name string
	do   func(e *xenv, r *xrun, stream, consumer string)
}

var losses = []lose{
	{"consumer deleted", func(e *xenv, _ *xrun, stream, consumer string) {
		e.t.Helper()
		if err := e.js.DeleteConsumer(context.Background(), stream, consumer); err != nil {
			e.t.Fatal(err)
		}
	}},
	{"stream deleted and laid out again", func(e *xenv, r *xrun, stream, consumer string) {
		e.t.Helper()
		ctx := context.Background()
		if err := e.js.DeleteStream(ctx, stream); err != nil {
			e.t.Fatal(err)
		}
		// A job's consumer is reported (degraded), the shared ones
		// required (not ready).
		testenv.Eventually(e.t, 15*time.Second, func() error {
			_, reason, degraded := r.readyz(e.t)
			if stream == bus.StreamRuns {
				reason = degraded
			}
			if !strings.Contains(reason, consumer) {
				return fmt.Errorf("readiness without the %s consumer: %q", consumer, reason)
			}
			return nil
		})
		if err := bus.Ensure(ctx, e.js, bus.Options{}); err != nil {
			e.t.Fatal(err)
		}
	}},
}

// ready waits until the executor is ready again.
func (r *xrun) ready(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() error { return r.x.health.Ready(context.Background()) })
}

// A job's consumer that is deleted is made again, as it was: the runs
// queued since run.
func TestExecutor_DeletedJobConsumerIsMadeAgain(t *testing.T) {
	t.Parallel()
	for i, l := range losses {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			r := e.start(nil)
			job := e.script(fmt.Sprintf("lostcons%d", i), `echo hi`, func(j *resource.Job) { j.Spec.Concurrency = 3 })
			want(t, "first run", e.final(e.submit(job, "{}"), 10*time.Second).Status, message.StatusSucceeded)
			name := bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name)
			l.do(e, r, bus.StreamRuns, name)

			rr := e.submit(job, "{}")
			want(t, "run queued after the consumer was lost", e.final(rr, 15*time.Second).Status, message.StatusSucceeded)
			r.ready(t)
			c, err := e.js.Consumer(context.Background(), bus.StreamRuns, name)
			if err != nil {
				t.Fatal(err)
			}
			cfg := c.CachedInfo().Config
			want(t, "MaxAckPending (the job's concurrency)", cfg.MaxAckPending, 3)
			want(t, "AckWait", cfg.AckWait, e.conf.AckWait)
		})
	}
}

// The consumer of due retries that is deleted is made again: a failed
// run's retry still runs.
func TestExecutor_DeletedRetriesConsumerIsMadeAgain(t *testing.T) {
	t.Parallel()
	for i, l := range losses {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			r := e.start(nil)
			testenv.Eventually(t, 10*time.Second, func() error {
				_, err := e.js.Consumer(context.Background(), bus.StreamRetries, bus.ConsumerRetries)
				return err
			})
			l.do(e, r, bus.StreamRetries, bus.ConsumerRetries)
			r.ready(t)

			job := e.script(fmt.Sprintf("retrylost%d", i), `exit 3`, func(j *resource.Job) {
				j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(500*time.Millisecond)
			})
			rr := e.submit(job, "{}")
			got := e.final(rr, 15*time.Second)
			want(t, "status", got.Status, message.StatusFailed)
			want(t, "attempt (the retry ran)", got.Attempt, 2)
		})
	}
}

// callbackSink records the run ids of the callbacks it receives.
type callbackSink struct {
	mu  sync.Mutex
	ids []string
	url string
}

func newCallbackSink(t *testing.T) *callbackSink {
	s := &callbackSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b CallbackBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		s.ids = append(s.ids, b.Run.ID)
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// count is how many callbacks of run id came.
func (s *callbackSink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, got := range s.ids {
		if got == id {
			n++
		}
	}
	return n
}

// The callbacks consumer that is deleted is made again, and goes on where
// the one deleted was (after its ack floor): the callback of a run that
// ends afterwards is sent, and a status stored before is not sent again,
// as a consumer made again from the start of STATUS would.
func TestExecutor_DeletedCallbacksConsumerIsMadeAgain(t *testing.T) {
	t.Parallel()
	for i, l := range losses {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			sink := newCallbackSink(t)
			// A final status with a callback stored before the executor
			// started: its callbacks consumer delivers new statuses only.
			now := time.Now().UTC()
			old := &message.Run{Kind: message.KindRun, ID: "run_before", Namespace: "default", Job: "j", DeliveryID: "d", Status: message.StatusSucceeded,
				Attempt: 1, QueuedAt: &now, StartedAt: &now, FinishedAt: &now, Callback: &message.Callback{URL: sink.url}}
			if err := runstatus.Publish(context.Background(), e.js, old); err != nil {
				t.Fatal(err)
			}
			r := e.start(nil)
			l.do(e, r, bus.StreamStatus, bus.ConsumerCallbacks)
			r.ready(t)

			job := e.script(fmt.Sprintf("cblost%d", i), `echo hi`)
			rr := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: sink.url} })
			want(t, "status", e.final(rr, 10*time.Second).Status, message.StatusSucceeded)
			testenv.Eventually(t, 15*time.Second, func() error {
				if n := sink.count(rr.ID); n != 1 {
					return fmt.Errorf("%d callbacks of the run that ended after the loss", n)
				}
				return nil
			})
			want(t, "callbacks of the status stored before the executor started", sink.count(old.ID), 0)
		})
	}
}

// The callbacks consumer that an executor made again (starting after a
// sequence, not with new statuses only) is taken as it is by an executor
// that starts later: JetStream refuses to change where a consumer starts,
// and the later executor must not retry that for ever.
func TestExecutor_CallbacksConsumerMadeAgainIsTakenAsItIs(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	r := e.start(nil)
	if err := e.js.DeleteConsumer(context.Background(), bus.StreamStatus, bus.ConsumerCallbacks); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		c, err := e.js.Consumer(context.Background(), bus.StreamStatus, bus.ConsumerCallbacks)
		if err != nil {
			return err
		}
		if c.CachedInfo().Config.DeliverPolicy != jetstream.DeliverByStartSequencePolicy {
			return errors.New("not made again yet")
		}
		return nil
	})
	r.ready(t)
	other := e.start(nil)
	other.ready(t)
}

package executor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A job's consumer whose AckWait is shorter than an executor's own (an
// operator's `nats consumer edit`, or an executor of a release that wrote
// its own into it): the executor paces its runs on the consumer's, so that
// none is handed to another executor, and run there again, while it runs.
func TestExecutor_RunsArePacedOnTheConsumersShorterAckWait(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("ackwait", `echo "$HOOKRUN_RUN_ID" >> "$OUT/starts"; sleep 4`, func(j *resource.Job) { j.Spec.Concurrency = 3 })
	e.start(func(c *Config) { c.AckWait = 12 * time.Second })
	ctx := context.Background()
	name := bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name)
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := e.js.Consumer(ctx, bus.StreamRuns, name)
		return err
	})
	// The consumer's AckWait shortened behind the executor's back.
	c, err := e.js.Consumer(ctx, bus.StreamRuns, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	want(t, "the old executor's AckWait in the consumer", cfg.AckWait, 12*time.Second)
	cfg.AckWait = 1500 * time.Millisecond
	if _, err := e.js.CreateOrUpdateConsumer(ctx, bus.StreamRuns, cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // the executor reads its consumers every 5 s

	// Runs the old executor takes, and a newer one beside it that would
	// take any of them handed back.
	var rrs []message.RunRequest
	for range 3 {
		rrs = append(rrs, e.submit(job, "{}"))
	}
	for _, rr := range rrs {
		e.waitStatus(rr, message.StatusRunning, 1)
	}
	nc, js := e.connect()
	e.startWith(nc, js, func(c *Config) { c.AckWait = cfg.AckWait }, nil)
	for _, rr := range rrs {
		r := e.final(rr, 20*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 1)
	}
	starts := strings.Fields(e.readFile("starts"))
	for _, rr := range rrs {
		n := 0
		for _, id := range starts {
			if id == rr.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("run %s started %d times", rr.ID, n)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint("starts: ", starts))
	}
}

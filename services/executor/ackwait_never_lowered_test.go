package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A newer executor with a shorter HOOKRUN_EXECUTOR_ACK_WAIT starts while
// older ones have runs in flight (a rolling change of it): it does not
// lower the AckWait of the job's consumer, which would have NATS hand those
// runs to it at once, before the old executors read the new AckWait, and
// run them a second time.
func TestExecutor_NewerExecutorDoesNotLowerAConsumersAckWait(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("ackwaitlow", `echo "$HOOKRUN_RUN_ID" >> "$OUT/starts"; sleep 8`, func(j *resource.Job) { j.Spec.Concurrency = 4 })
	e.start(func(c *Config) { c.AckWait = 12 * time.Second })
	nc, js := e.connect()
	e.startWith(nc, js, func(c *Config) { c.AckWait = 12 * time.Second }, nil)
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
	time.Sleep(2500 * time.Millisecond) // the runs' last renewal ages
	nc2, js2 := e.connect()
	e.startWith(nc2, js2, func(c *Config) { c.AckWait = 1500 * time.Millisecond }, nil)
	for _, rr := range rrs {
		want(t, "status", e.final(rr, 30*time.Second).Status, message.StatusSucceeded)
	}
	c, err := e.js.Consumer(ctx, bus.StreamRuns, name)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "the consumer's AckWait", c.CachedInfo().Config.AckWait, 12*time.Second)
	if starts := strings.Fields(e.readFile("starts")); len(starts) != len(rrs) {
		t.Errorf("%d runs started %d times: %v", len(rrs), len(starts), starts)
	}
}

package dispatcher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// redisProc is a redis-server of the test's own, so the test can kill it
// and start it again at the same address: a unix socket in the test's
// directory, which no other test (nor another test binary, as a freed TCP
// port could be) can take meanwhile, so the test never flushes or kills
// another's Redis. Its append-only file is synced on every write, as a
// production Redis holding dedup claims should be, so the claims survive
// the restart.
type redisProc struct {
	t   *testing.T
	dir string
	cmd *exec.Cmd
}

func startRedis(t *testing.T) *redisProc {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	// A short directory: a unix socket's path is at most ~100 bytes.
	dir, err := os.MkdirTemp("", "hr-redis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	r := &redisProc{t: t, dir: dir}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisProc) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", "0", "--unixsocket", r.addr(), "--unixsocketperm", "700", "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always")
	testenv.DieWithTest(r.cmd)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: r.addr()})
	defer c.Close()
	testenv.Eventually(r.t, 10*time.Second, func() error { return c.Ping(context.Background()).Err() })
}

// kill stops the server abruptly (SIGKILL), as a crash would.
func (r *redisProc) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *redisProc) addr() string { return filepath.Join(r.dir, "redis.sock") }

func TestDispatcher_RedisStoppedAndStartedMidStream(t *testing.T) {
	t.Parallel()
	rp := startRedis(t)
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: rp.addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rc.Close() })
	e := newEnv(t, "redis", rc)
	w := e.hook("outage", nil)
	r := e.start(nil)

	var all []message.Delivery
	for i := range 15 {
		all = append(all, e.deliver(w, fmt.Sprintf("evt-%02d", i), `{}`))
	}
	for _, d := range all {
		want(t, "outcome before the outage", e.outcome(d).Status, message.DeliveryDispatched)
	}

	rp.kill()
	var during []message.Delivery
	for i := 15; i < 30; i++ {
		during = append(during, e.deliver(w, fmt.Sprintf("evt-%02d", i), `{}`))
	}
	// Copies of events handled before the outage: still duplicates after it.
	var dups []message.Delivery
	for i := range 5 {
		dups = append(dups, e.deliver(w, fmt.Sprintf("evt-%02d", i), `{}`))
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := r.health.Ready(context.Background()); err == nil {
			return fmt.Errorf("ready while Redis is down")
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // a few pause cycles with Redis still away
	for _, d := range during {
		if _, _, err := e.store.Lookup(context.Background(), dedup.Key(w.Metadata.UID, d.EventID), time.Hour); err == nil {
			t.Fatal("Redis answered while killed")
		}
	}
	if got := len(e.runRequests()); got != 15 {
		t.Fatalf("%d run requests while Redis was down, want the 15 from before", got)
	}

	rp.start()
	for _, d := range during {
		want(t, "outcome after the outage", e.outcome(d).Status, message.DeliveryDispatched)
	}
	for _, d := range dups {
		want(t, "copy after the outage", e.outcome(d).Status, message.DeliveryDuplicate)
	}
	testenv.Eventually(t, 5*time.Second, func() error { return r.health.Ready(context.Background()) })
	runs := e.runsPerID()
	want(t, "runs", len(runs), 30)
	for id, n := range runs {
		want(t, "requests of "+id, n, 1)
	}
}

func TestDispatcher_KVStoreSurvivesNATSRestartMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "kv")
	e.conf.BatchSize = 2
	w := e.hook("restart", nil)
	e.start(func(d *Dispatcher) {
		// Slow batches down so that the restart lands mid-stream.
		d.crashAt = func(stage string) bool {
			if stage == stageQueued {
				time.Sleep(30 * time.Millisecond)
			}
			return false
		}
	})

	var all []message.Delivery
	for i := range 30 {
		all = append(all, e.deliver(w, fmt.Sprintf("evt-%02d", i), `{}`))
	}
	e.outcome(all[0])
	e.nats.Restart()
	if _, err := e.js.Stream(context.Background(), "DELIVERIES"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		all = append(all, e.deliver(w, fmt.Sprintf("evt-%02d", i), `{"copy":true}`))
	}
	outcomes := map[string]int{}
	for _, d := range all {
		outcomes[e.outcome(d).Status]++
	}
	want(t, "dispatched", outcomes[message.DeliveryDispatched], 30)
	want(t, "duplicates", outcomes[message.DeliveryDuplicate], 5)
	runs := e.runsPerID()
	want(t, "runs", len(runs), 30)
	for id, n := range runs {
		want(t, "requests of "+id, n, 1)
	}
}

// A batch that stalls past its AckWait (Redis or NATS stalling) may have
// been redelivered and dispatched elsewhere meanwhile: the stalled
// dispatcher must hand it back rather than store "queued" over what
// happened since.
func TestDispatcher_StalledBatchIsHandedBackNotFinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("stall", nil)
	var once sync.Once
	stalled, resume := make(chan struct{}), make(chan struct{})
	e.start(func(d *Dispatcher) {
		d.crashAt = func(stage string) bool {
			if stage == stageClaimed {
				once.Do(func() {
					close(stalled)
					<-resume
				})
			}
			return false
		}
	})
	d := e.deliver(w, "evt-stall", `{}`)
	<-stalled
	// Meanwhile the delivery was dispatched elsewhere and an executor
	// started its run.
	now := time.Now().UTC()
	running := &message.Run{ID: d.RunID, Namespace: d.Namespace, Webhook: d.Webhook, Job: d.Job, DeliveryID: d.ID,
		Status: message.StatusRunning, Attempt: 1, QueuedAt: &now, StartedAt: &now}
	if err := runstatus.Publish(context.Background(), e.js, running); err != nil {
		t.Fatal(err)
	}
	time.Sleep(e.conf.AckWait) // past the batch's deadline
	close(resume)
	want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
	want(t, "run status", e.run(d.RunID).Status, message.StatusRunning)
	h, err := runstatus.History(context.Background(), e.js, "default", d.RunID)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "status events", len(h), 1)
	want(t, "run requests", len(e.runRequests()), 0)
}

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// xenv is one test's world: an embedded NATS, configuration in KV, and
// executors started in-process on a shared working directory.
type xenv struct {
	t    *testing.T
	nats *testenv.NATS
	nc   *nats.Conn
	js   jetstream.JetStream
	cfg  *testenv.Config
	conf Config
	out  string // where test scripts write what they observe
}

func newXEnv(t *testing.T) *xenv {
	t.Helper()
	return newXEnvOn(t, testenv.StartNATS(t))
}

// newXEnvOn is newXEnv on the NATS server n.
func newXEnvOn(t *testing.T, n *testenv.NATS) *xenv {
	t.Helper()
	nc, js := n.Connect()
	e := &xenv{t: t, nats: n, nc: nc, js: js, cfg: testenv.NewConfig(t, js), out: t.TempDir()}
	e.conf = Config{
		Common:          service.Common{HTTPAddr: "127.0.0.1:0"},
		MaxConcurrent:   8,
		WorkDir:         t.TempDir(),
		AckWait:         1500 * time.Millisecond,
		ShutdownGrace:   5 * time.Second,
		KillGrace:       300 * time.Millisecond,
		MaxOutput:       64 << 10,
		CallbackBackoff: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
	}
	return e
}

// xrun is an executor started by start.
type xrun struct {
	x      *Executor
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	passes atomic.Int64 // periodic passes of its job manager ended
}

// waitPasses waits until n whole periodic passes of the executor's job
// manager (every 5 s) have run since the call: a pass already under way
// is not counted.
func (r *xrun) waitPasses(t *testing.T, n int64) {
	t.Helper()
	until := r.passes.Load() + n + 1
	testenv.Eventually(t, time.Duration(n+1)*5*time.Second+20*time.Second, func() error {
		if got := r.passes.Load(); got < until {
			return fmt.Errorf("%d periodic passes of the job manager, waiting for %d", got, until)
		}
		return nil
	})
}

// stop cancels the executor and waits for Run to return (after its
// shutdown grace).
func (r *xrun) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

// start runs an executor with e.conf, changed by mod when not nil. It
// returns once the executor has its callbacks consumer, and is stopped at
// the end of the test.
func (e *xenv) start(mod func(*Config)) *xrun {
	e.t.Helper()
	return e.startWith(e.nc, e.js, mod, nil)
}

// startWith starts an executor on the given connection; seam, when not
// nil, sets test seams before it runs.
func (e *xenv) startWith(nc *nats.Conn, js jetstream.JetStream, mod func(*Config), seam func(*Executor)) *xrun {
	e.t.Helper()
	conf := e.conf
	if mod != nil {
		mod(&conf)
	}
	log := testLogger(e.t)
	x := New(conf, nc, js, catalog.New(js, e.cfg.Box, log), service.NewHealth("executor"), log)
	r := &xrun{x: x, done: make(chan error, 1)}
	x.afterJobsPass = func() { r.passes.Add(1) }
	if seam != nil {
		seam(x)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	addr := make(chan net.Addr, 1)
	go func() { r.done <- x.Run(ctx, func(a net.Addr) { addr <- a }) }()
	e.t.Cleanup(r.stop)
	select {
	case <-addr:
	case err := <-r.done:
		e.t.Fatalf("executor ended at start: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("executor did not start")
	}
	testenv.Eventually(e.t, 10*time.Second, func() error {
		_, err := e.js.Consumer(context.Background(), bus.StreamStatus, bus.ConsumerCallbacks)
		return err
	})
	return r
}

// connect opens a connection configured as the services' own (publishes
// fail at once while disconnected instead of being buffered).
func (e *xenv) connect() (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	nc, err := bus.Connect(bus.ConnectOptions{URL: e.nats.URL, Name: "executor-under-test"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return nc, js
}

// script stores a job running sh -c script, with OUT set to e.out.
func (e *xenv) script(name, script string, mod ...func(*resource.Job)) *resource.Job {
	e.t.Helper()
	j := resource.Job{Metadata: resource.Meta{Name: name}, Spec: resource.JobSpec{
		Command: []string{"/bin/sh", "-c", script},
		Timeout: resource.Duration(30 * time.Second),
		Env:     map[string]string{"OUT": e.out},
	}}
	for _, f := range mod {
		f(&j)
	}
	return e.cfg.Job(j)
}

// submit stores a run request of job as the dispatcher would: the queued
// status first, then the request in RUNS.
func (e *xenv) submit(job *resource.Job, payload string, mod ...func(*message.RunRequest)) message.RunRequest {
	e.t.Helper()
	rr, err := e.trySubmit(job, payload, mod...)
	if err != nil {
		e.t.Fatal(err)
	}
	return rr
}

// trySubmit is submit for a test that expects NATS to be away at times.
func (e *xenv) trySubmit(job *resource.Job, payload string, mod ...func(*message.RunRequest)) (message.RunRequest, error) {
	now := time.Now().UTC()
	event := ident.NewDeliveryID()
	rr := message.RunRequest{
		Schema: message.SchemaRunRequest, ID: ident.RunID(ident.NewUID(), event, ""), Namespace: job.Metadata.Namespace,
		Job: job.Metadata.Name, Webhook: "hook", DeliveryID: ident.NewDeliveryID(), EventID: event,
		Args: map[string]string{}, Payload: []byte(payload), ContentType: "application/json",
		Header:     map[string][]string{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}},
		ReceivedAt: now.Add(-time.Millisecond), Source: "github", QueuedAt: now,
	}
	for _, f := range mod {
		f(&rr)
	}
	if rr.Callback != nil && rr.Webhook == "hook" {
		// A callback is its webhook's (the executor reads it from there at
		// each attempt): a webhook of its own carries it.
		rr.Webhook = "cb-" + strings.ToLower(rr.DeliveryID[len(rr.DeliveryID)-8:])
		cb := rr.Callback
		// Unchecked: a callback URL keys refuses now (a password in it)
		// may be in a record an older release stored.
		w := e.cfg.WebhookUnchecked(resource.Webhook{Metadata: resource.Meta{Name: rr.Webhook, Namespace: rr.Namespace}, Spec: resource.WebhookSpec{
			Job: job.Metadata.Name, Auth: resource.Auth{None: &struct{}{}},
			Callback: &resource.Callback{URL: cb.URL, URLSecretRef: cb.URLSecretRef, SecretRef: cb.SecretRef},
		}})
		rr.ID = ident.RunID(w.Metadata.UID, rr.EventID, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := rr.QueuedAt
	if err := runstatus.Publish(ctx, e.js, &message.Run{Kind: message.KindRun, ID: rr.ID, Namespace: rr.Namespace, Webhook: rr.Webhook,
		Job: rr.Job, DeliveryID: rr.DeliveryID, Status: message.StatusQueued, QueuedAt: &q, Callback: rr.Callback,
		WebhookEventID: rr.EventID, WebhookReceivedAt: rr.ReceivedAt, Replay: rr.Replay}); err != nil {
		return rr, err
	}
	b, _ := json.Marshal(rr)
	m := nats.NewMsg(bus.RunSubject(rr.Namespace, rr.Job))
	m.Data = b
	m.Header.Set(bus.HeaderSchema, message.SchemaRunRequest)
	_, err := e.js.PublishMsg(ctx, m, jetstream.WithMsgID(rr.ID+":"+rr.DeliveryID))
	return rr, err
}

// final waits for the run's final status.
func (e *xenv) final(rr message.RunRequest, within time.Duration) *message.Run {
	e.t.Helper()
	var r *message.Run
	testenv.Eventually(e.t, within, func() error {
		var err error
		r, err = runstatus.Get(context.Background(), e.js, rr.ID)
		if err != nil {
			return err
		}
		if !message.Final(r.Status) {
			return fmt.Errorf("run %s is %s", rr.ID, r.Status)
		}
		return nil
	})
	return r
}

// waitStatus waits until the run has status st (at attempt, when > 0).
func (e *xenv) waitStatus(rr message.RunRequest, st string, attempt int) *message.Run {
	e.t.Helper()
	var r *message.Run
	testenv.Eventually(e.t, 15*time.Second, func() error {
		var err error
		r, err = runstatus.Get(context.Background(), e.js, rr.ID)
		if err != nil {
			return err
		}
		if r.Status != st || (attempt > 0 && r.Attempt != attempt) {
			return fmt.Errorf("run %s is %s (attempt %d)", rr.ID, r.Status, r.Attempt)
		}
		return nil
	})
	return r
}

// history returns the run's status events, oldest first.
func (e *xenv) history(rr message.RunRequest) []message.Run {
	e.t.Helper()
	h, err := runstatus.History(context.Background(), e.js, rr.Namespace, rr.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// finals counts the final status events in a history.
func finals(h []message.Run) int {
	n := 0
	for _, r := range h {
		if message.Final(r.Status) {
			n++
		}
	}
	return n
}

// cancelRun does what keys' POST /v1/runs/{id}/cancel does: the mark in the
// cancels bucket, the core NATS cancel, and for a queued run its cancelled
// status.
func (e *xenv) cancelRun(rr message.RunRequest, storeStatus bool) {
	e.t.Helper()
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, bus.BucketCancels)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(ctx, rr.ID, bus.CancelMark(rr.DeliveryID, time.Now())); err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Publish(bus.CancelSubject(rr.ID), []byte(rr.ID)); err != nil {
		e.t.Fatal(err)
	}
	if storeStatus {
		r, err := runstatus.Get(ctx, e.js, rr.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		now := time.Now().UTC()
		r.Status, r.FinishedAt, r.Error = message.StatusCancelled, &now, "cancelled while queued"
		if err := runstatus.Publish(ctx, e.js, r); err != nil {
			e.t.Fatal(err)
		}
	}
}

// readFile waits for a file a script writes and returns its trimmed text.
func (e *xenv) readFile(name string) string {
	e.t.Helper()
	var s string
	testenv.Eventually(e.t, 15*time.Second, func() error {
		b, err := os.ReadFile(e.out + "/" + name)
		if err != nil || len(b) == 0 || b[len(b)-1] != '\n' {
			return fmt.Errorf("%s not written yet (%v)", name, err)
		}
		s = strings.TrimSpace(string(b))
		return nil
	})
	return s
}

// pidOf reads a pid a script wrote.
func (e *xenv) pidOf(name string) int {
	e.t.Helper()
	pid, err := strconv.Atoi(e.readFile(name))
	if err != nil {
		e.t.Fatal(err)
	}
	return pid
}

// gone reports whether pid has ended (a zombie waiting for its reaper has).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// waitGone waits until pid has ended.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if !gone(pid) {
			return fmt.Errorf("%s (pid %d) still runs", what, pid)
		}
		return nil
	})
}

// runDirs lists the run directories left in dir.
func runDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), runDirPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// testLogger logs warnings and errors into the test's output, and nothing
// once the test is over (a goroutine ending late must not panic it).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done.Load() {
		return len(p), nil
	}
	return w.w.Write(p)
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// waitRunsAcked waits until RUNS holds no run request: the executor acked
// every one it took.
func (e *xenv) waitRunsAcked() {
	e.t.Helper()
	e.waitRunsLeft(0, "not acked")
}

// waitRunsLeft waits until RUNS holds n run requests; why says what more
// would mean.
func (e *xenv) waitRunsLeft(n uint64, why string) {
	e.t.Helper()
	testenv.Eventually(e.t, 10*time.Second, func() error {
		s, err := e.js.Stream(context.Background(), bus.StreamRuns)
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != n {
			return fmt.Errorf("%d run requests left in RUNS, want %d: %s", info.State.Msgs, n, why)
		}
		return nil
	})
}

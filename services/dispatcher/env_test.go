package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// env is one test's world: an embedded NATS, configuration in KV, a dedup
// store, and dispatchers started in-process.
type env struct {
	t     *testing.T
	nats  *testenv.NATS
	nc    *nats.Conn
	js    jetstream.JetStream
	cfg   *testenv.Config
	store dedup.Store
	redis redis.UniversalClient // nil for the KV store
	conf  Config
}

// newEnv builds the world; kind is "redis" or "kv". A Redis client, when
// given, is used instead of a fresh test Redis (subtests share one).
func newEnv(t *testing.T, kind string, rc ...redis.UniversalClient) *env {
	t.Helper()
	return newEnvOn(t, testenv.StartNATS(t), kind, rc...)
}

// newEnvOn is newEnv on a NATS server of the test's (one with other
// options, such as a smaller max_payload).
func newEnvOn(t *testing.T, n *testenv.NATS, kind string, rc ...redis.UniversalClient) *env {
	t.Helper()
	nc, js := n.Connect()
	e := &env{t: t, nats: n, nc: nc, js: js, cfg: testenv.NewConfig(t, js)}
	e.conf = Config{
		Common:        service.Common{HTTPAddr: "127.0.0.1:0"},
		AckWait:       time.Second,
		PauseDelay:    200 * time.Millisecond,
		DefaultWindow: 24 * time.Hour,
	}
	switch kind {
	case "redis", "redis-plain":
		if len(rc) > 0 {
			e.redis = rc[0]
		} else {
			e.redis = testenv.Redis(t)
		}
		e.store = dedup.NewRedis(e.redis)
		if kind == "redis-plain" { // a key per claim, its TTL the window (as on a Cluster)
			e.store = dedup.NewRedisPlain(e.redis)
		}
	case "kv":
		kv, err := js.KeyValue(context.Background(), bus.BucketDedup)
		if err != nil {
			t.Fatal(err)
		}
		e.store = dedup.NewKV(kv)
	default:
		t.Fatalf("unknown store %q", kind)
	}
	return e
}

// running is a dispatcher started by start.
type running struct {
	d      *Dispatcher
	health *service.Health
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop cancels the dispatcher and waits for Run to return.
func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

// start runs a dispatcher on e's connections; seam, if not nil, sets test
// seams before it runs. It is stopped at the end of the test.
func (e *env) start(seam func(*Dispatcher)) *running {
	e.t.Helper()
	return e.startWith(e.js, e.store, seam)
}

func (e *env) startWith(js jetstream.JetStream, store dedup.Store, seam func(*Dispatcher)) *running {
	e.t.Helper()
	log := testLogger(e.t)
	health := service.NewHealth("dispatcher")
	d := New(e.conf, js, catalog.New(js, e.cfg.Box, log), store, health, log)
	if seam != nil {
		seam(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, health: health, cancel: cancel, done: make(chan error, 1)}
	addr := make(chan net.Addr, 1)
	go func() { r.done <- d.Run(ctx, func(a net.Addr) { addr <- a }) }()
	e.t.Cleanup(r.stop)
	select {
	case <-addr:
	case err := <-r.done:
		e.t.Fatalf("dispatcher ended at start: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("dispatcher did not start")
	}
	return r
}

// hook writes a job and a webhook bound to it; mod shapes the webhook.
func (e *env) hook(name string, mod func(*resource.Webhook), job ...resource.Job) *resource.Webhook {
	e.t.Helper()
	j := resource.Job{Metadata: resource.Meta{Name: name + "-job"}, Spec: resource.JobSpec{Command: []string{"true"}}}
	if len(job) > 0 {
		j = job[0]
	}
	e.cfg.Job(j)
	w := resource.Webhook{Metadata: resource.Meta{Name: name}, Spec: resource.WebhookSpec{Job: j.Metadata.Name, Auth: resource.Auth{None: &struct{}{}}}}
	if mod != nil {
		mod(&w)
	}
	return e.cfg.Webhook(w)
}

// deliver publishes a delivery of eventID to DELIVERIES as the ingress
// would, without Nats-Msg-Id so that a duplicate reaches the dispatcher.
func (e *env) deliver(w *resource.Webhook, eventID, body string, mod ...func(*message.Delivery)) message.Delivery {
	e.t.Helper()
	d := message.Delivery{
		Schema: message.SchemaDelivery, ID: ident.NewDeliveryID(), Namespace: w.Metadata.Namespace, Webhook: w.Metadata.Name,
		Job: w.Spec.Job, EventID: eventID, RunID: ident.RunID(w.Metadata.UID, eventID, ""), Method: "POST",
		ContentType: "application/json", Body: []byte(body), ReceivedAt: time.Now().UTC(), Principal: "url",
		Header: map[string][]string{"Content-Type": {"application/json"}},
	}
	for _, f := range mod {
		f(&d)
	}
	b, err := json.Marshal(d)
	if err != nil {
		e.t.Fatal(err)
	}
	m := nats.NewMsg(bus.DeliverySubject(d.Namespace, d.Webhook, d.ID))
	m.Data = b
	m.Header.Set(bus.HeaderSchema, message.SchemaDelivery)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// outcome waits for the delivery's outcome (runstatus.DeliveryOutcome, as
// the keys API reads it) and, for a run still queued, for its run request
// in RUNS: the dispatcher is then done with it but for the ack.
func (e *env) outcome(d message.Delivery) *message.Run {
	e.t.Helper()
	var r *message.Run
	testenv.Eventually(e.t, 15*time.Second, func() error {
		var err error
		if r, err = runstatus.DeliveryOutcome(context.Background(), e.js, &d); err != nil {
			return err
		}
		if r.Status != message.DeliveryDispatched {
			return nil
		}
		if run, err := runstatus.Get(context.Background(), e.js, d.RunID); err != nil || runstatus.OutcomeOf(run) != runstatus.OutcomeQueued {
			return err // the run has moved on: its request was taken
		}
		for _, rr := range e.runRequests() {
			if rr.DeliveryID == d.ID {
				return nil
			}
		}
		return fmt.Errorf("delivery %s dispatched, its run request not in RUNS yet", d.ID)
	})
	return r
}

// crashOnceAt is a crashAt seam that abandons the first batch reaching
// stage, and closes crashed when it does.
func crashOnceAt(stage string, crashed chan struct{}) func(string) bool {
	return func(s string) bool {
		if s != stage {
			return false
		}
		select {
		case <-crashed:
			return false
		default:
			close(crashed)
			return true
		}
	}
}

// allAcked waits until the dispatchers have acked every delivery stored:
// for a test with one delivery in flight, the dispatcher is done with it.
func (e *env) allAcked() {
	e.t.Helper()
	testenv.Eventually(e.t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := e.js.Consumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%d deliveries not yet delivered, %d not acked", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// run returns the run's current status.
func (e *env) run(id string) *message.Run {
	e.t.Helper()
	r, err := runstatus.Get(context.Background(), e.js, id)
	if err != nil {
		e.t.Fatalf("status of %s: %v", id, err)
	}
	return r
}

// runRequests returns every run request stored in RUNS (no executor
// consumes them in these tests).
func (e *env) runRequests() []message.RunRequest {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, bus.StreamRuns)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []message.RunRequest
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		var rr message.RunRequest
		if err := message.Decode(m.Data, message.SchemaRunRequest, &rr); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

// runsPerID counts run requests by run id.
func (e *env) runsPerID() map[string]int {
	out := map[string]int{}
	for _, rr := range e.runRequests() {
		out[rr.ID]++
	}
	return out
}

// dedupTTL is the remaining time of the event's claim, a key of its own in
// a "redis-plain" env (PTTL): the window the dispatcher claimed it for.
func (e *env) dedupTTL(w *resource.Webhook, eventID string) time.Duration {
	e.t.Helper()
	ttl, err := e.redis.PTTL(context.Background(), dedup.RedisKey(dedupKey(w, eventID))).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return ttl
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

// counter reads a deliveries counter.
func deliveriesCount(webhook *resource.Webhook, outcome string) float64 {
	return counterValue(mDeliveries.WithLabelValues(webhook.Metadata.Namespace+"/"+webhook.Metadata.Name, outcome))
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

func dedupKey(w *resource.Webhook, eventID string) string { return dedup.Key(w.Metadata.UID, eventID) }

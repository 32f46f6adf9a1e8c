package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// gatedJS is a JetStream whose webhook status bucket cannot be opened
// until open is closed: a status bucket that does not answer.
type gatedJS struct {
	jetstream.JetStream
	open chan struct{}
}

func (g *gatedJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	if bucket == bus.BucketWebhookStatus {
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.JetStream.KeyValue(ctx, bucket)
}

// countingHandler counts the log records whose message starts with
// prefix, and passes every record on.
type countingHandler struct {
	slog.Handler
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.prefix, h.n}
}

func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(g), h.prefix, h.n}
}

// While the webhook status bucket does not answer, a busy webhook's
// lastDeliveryAt updates take one place in the queue, not one each: more
// deliveries than the queue holds neither push out another webhook's
// lastError nor log a line per update dropped, and once the bucket
// answers, both webhooks show their latest state.
func TestDispatcher_WebhookStatusUpdatesCoalesceWhileTheBucketIsSlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	busy := e.hook("busy", func(w *resource.Webhook) { w.Spec.Filter = "false" }) // cheap: filtered
	broken := e.hook("broken", nil, resource.Job{Metadata: resource.Meta{Name: "strict"}, Spec: resource.JobSpec{
		Command: []string{"true"},
		Args:    []resource.Arg{{Name: "repo", Value: "{{ .body.repository.name }}"}},
	}})
	gate := &gatedJS{JetStream: e.js, open: make(chan struct{})}
	var drops atomic.Int64
	e.start(func(d *Dispatcher) {
		d.status = webhookstatus.NewWriter(gate)
		d.log = slog.New(countingHandler{d.log.Handler(), "webhook status updates are behind", &drops})
	})
	const n = webhookstatus.MaxNotes + 200
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var last time.Time
	for i := range n {
		last = t0.Add(time.Duration(i) * 10 * time.Millisecond)
		e.deliver(busy, fmt.Sprintf("evt-%d", i), `{}`, func(d *message.Delivery) { d.ReceivedAt = last })
	}
	e.allAcked()
	want(t, "broken's outcome", e.outcome(e.deliver(broken, "evt-broken", `{"zen":"ping"}`)).Status, message.DeliveryRejected)
	e.allAcked()
	time.Sleep(100 * time.Millisecond) // the notes are added just after the ack
	if got := drops.Load(); got > 1 {
		t.Errorf("%d log lines about dropped status updates, want at most 1", got)
	}
	close(gate.open)
	wantLastError(t, e, "broken", "cannot resolve the arguments")
	testenv.Eventually(t, 5*time.Second, func() error {
		s, err := webhookstatus.Get(context.Background(), e.js, "default", "busy")
		if err != nil || s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(last) {
			return fmt.Errorf("busy's lastDeliveryAt %v (%v), want the last delivery's %v", s.LastDeliveryAt, err, last)
		}
		return nil
	})
}

// A status update still waiting when its webhook is deleted is not
// written: keys purged the webhook's status, and a webhook made again
// under its name must not show the old one's lastError.
func TestDispatcher_StatusUpdateOfADeletedWebhookIsNotWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	blocker := e.hook("blocker", nil)
	old := e.hook("remade", nil, resource.Job{Metadata: resource.Meta{Name: "strict"}, Spec: resource.JobSpec{
		Command: []string{"true"},
		Args:    []resource.Arg{{Name: "repo", Value: "{{ .body.repository.name }}"}},
	}})
	gate := &gatedJS{JetStream: e.js, open: make(chan struct{})}
	r := e.start(func(d *Dispatcher) { d.status = webhookstatus.NewWriter(gate) })
	// The writer takes blocker's update and waits on the bucket; old's
	// lastError waits behind it.
	e.outcome(e.deliver(blocker, "evt-1", `{}`))
	// (Received 10 s before the new webhook's delivery: not within the
	// writer's one-second throttle of lastDeliveryAt.)
	want(t, "old's outcome", e.outcome(e.deliver(old, "evt-1", `{"zen":"ping"}`, received10sAgo)).Status, message.DeliveryRejected)
	e.allAcked()
	time.Sleep(100 * time.Millisecond) // the notes are added just after the ack
	// keys deletes the webhook (and purges its status); it is made again.
	e.deleteWebhook(old)
	if err := webhookstatus.Clear(context.Background(), e.js, "default", "remade"); err != nil {
		t.Fatal(err)
	}
	made := *old
	made.Metadata.UID, made.Status.EndpointID, made.Spec.Job = "", "", blocker.Spec.Job
	w := e.cfg.Webhook(made)
	e.inCatalog(r, w)
	close(gate.open)
	d := e.deliver(w, "evt-2", `{}`)
	want(t, "new webhook's outcome", e.outcome(d).Status, message.DeliveryDispatched)
	testenv.Eventually(t, 5*time.Second, func() error {
		s, err := webhookstatus.Get(context.Background(), e.js, "default", "remade")
		if err != nil || s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(d.ReceivedAt) {
			return fmt.Errorf("new webhook's lastDeliveryAt %v (%v), want %v", s.LastDeliveryAt, err, d.ReceivedAt)
		}
		return nil
	})
	s, err := webhookstatus.Get(context.Background(), e.js, "default", "remade")
	if err != nil {
		t.Fatal(err)
	}
	if s.LastError != "" {
		t.Fatalf("the webhook made again shows the deleted one's lastError %q", s.LastError)
	}
}

// A note per delivery is on the dispatcher's hot path: merging one into
// its webhook's waiting note allocates nothing.
func TestStatusNotes_AddAllocatesNothing(t *testing.T) {
	s := newStatusNotes()
	log := slog.New(slog.DiscardHandler)
	n := statusNote{ns: "default", name: "gh", uid: "u1", delivered: time.Now()}
	s.add(n, log)
	if a := testing.AllocsPerRun(1000, func() { s.add(n, log) }); a != 0 {
		t.Errorf("add allocates %v times a note", a)
	}
}

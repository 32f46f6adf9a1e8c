package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// putRaw stores value under key of bucket, bypassing validation: a record
// as a newer keys may write it during a rolling upgrade.
func (e *env) putRaw(bucket, key, value string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key, []byte(value)); err != nil {
		e.t.Fatal(err)
	}
}

// unreadableWebhook is a record of webhook name with uid that this release
// cannot decode (spec.job is not a string).
func unreadableWebhook(name, uid string) string {
	return fmt.Sprintf(`{"apiVersion":"hookrun.dev/v1","kind":"Webhook","metadata":{"name":%q,"namespace":"default","uid":%q},"spec":{"job":{"name":"j","version":2}}}`, name, uid)
}

// unreadableJob is a record of job name this release cannot decode
// (spec.command is not a list).
func unreadableJob(name string) string {
	return fmt.Sprintf(`{"apiVersion":"hookrun.dev/v1","kind":"Job","metadata":{"name":%q,"namespace":"default"},"spec":{"command":"echo hi"}}`, name)
}

// connectAs connects to e's secured server as user, as the service does.
func (e *env) connectAs(user string) jetstream.JetStream {
	e.t.Helper()
	nc, err := nats.Connect(e.nats.URL, nats.UserInfo(user, e.nats.Users[user]), nats.CustomInboxPrefix(bus.InboxPrefix(user)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

// stillWaiting checks for dur that d has no outcome and no run request:
// it is handed back, not decided.
func (e *env) stillWaiting(d message.Delivery, dur time.Duration) {
	e.t.Helper()
	for end := time.Now().Add(dur); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		out, err := runstatus.DeliveryOutcome(context.Background(), e.js, &d)
		if err == nil {
			e.t.Fatalf("delivery %s got an outcome while it should wait: %s (%s)", d.ID, out.Status, out.Error)
		}
		if !errors.Is(err, runstatus.ErrNotFound) {
			e.t.Fatal(err)
		}
	}
	for _, rr := range e.runRequests() {
		if rr.DeliveryID == d.ID {
			e.t.Fatalf("delivery %s was dispatched while it should wait", d.ID)
		}
	}
}

// A webhook or job record this dispatcher cannot read (a newer keys wrote
// it, during a rolling upgrade) is dropped by the catalog as if deleted.
// Its deliveries are not rejected for good: the bucket's leader says the
// record is there, and they are handed back until a dispatcher that reads
// it takes them (here: the record made readable again). A record that is
// not there, or is another webhook's under the name, still rejects. The
// dispatcher runs as its own NATS user, allowed the leader reads.
func TestDispatcher_RecordItCannotReadIsWaitedForNotTakenForDeleted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// before breaks the configuration of w (bound to job j) before
		// the dispatcher starts; after, if not nil, mends it.
		before, after func(e *env, w *resource.Webhook, j *resource.Job)
		rejected      string // the rejection's error, "" when it waits then runs
	}{
		{
			name: "webhook unreadable",
			before: func(e *env, w *resource.Webhook, _ *resource.Job) {
				e.putRaw(bus.BucketWebhooks, bus.ConfigKey("default", w.Metadata.Name), unreadableWebhook(w.Metadata.Name, w.Metadata.UID))
			},
			after: func(e *env, w *resource.Webhook, _ *resource.Job) { e.cfg.Webhook(*w) },
		},
		{
			name: "job unreadable",
			before: func(e *env, _ *resource.Webhook, j *resource.Job) {
				e.putRaw(bus.BucketJobs, bus.ConfigKey("default", j.Metadata.Name), unreadableJob(j.Metadata.Name))
			},
			after: func(e *env, _ *resource.Webhook, j *resource.Job) { e.cfg.Job(*j) },
		},
		{
			name:     "webhook deleted",
			before:   func(e *env, w *resource.Webhook, _ *resource.Job) { e.deleteWebhook(w) },
			rejected: "no longer exists",
		},
		{
			name: "webhook made again, unreadable, by a newer release",
			before: func(e *env, w *resource.Webhook, _ *resource.Job) {
				e.putRaw(bus.BucketWebhooks, bus.ConfigKey("default", w.Metadata.Name), unreadableWebhook(w.Metadata.Name, ident.NewUID()))
			},
			rejected: "no longer exists",
		},
		{
			name: "job deleted",
			before: func(e *env, _ *resource.Webhook, j *resource.Job) {
				kv, err := e.js.KeyValue(context.Background(), bus.BucketJobs)
				if err != nil {
					t.Fatal(err)
				}
				if err := kv.Delete(context.Background(), bus.ConfigKey("default", j.Metadata.Name)); err != nil {
					t.Fatal(err)
				}
			},
			rejected: "not found",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOn(t, testenv.StartSecuredNATS(t), "redis")
			w := e.hook("upgrading", nil)
			j := &resource.Job{Metadata: resource.Meta{Name: w.Spec.Job}, Spec: resource.JobSpec{Command: []string{"true"}}} // as e.hook wrote it
			c.before(e, w, j)
			d := e.deliver(w, "evt-1", `{}`, received10sAgo)
			e.startWith(e.connectAs("dispatcher"), e.store, nil)
			if c.rejected != "" {
				out := e.outcome(d)
				want(t, "outcome", out.Status, message.DeliveryRejected)
				if !strings.Contains(out.Error, c.rejected) {
					t.Fatalf("error %q should say %q", out.Error, c.rejected)
				}
			} else {
				e.stillWaiting(d, 2500*time.Millisecond)
				c.after(e, w, j)
				want(t, "outcome once readable", e.outcome(d).Status, message.DeliveryDispatched)
			}
			e.allAcked()
			if v := e.nats.Violations(); len(v) > 0 {
				t.Fatalf("the dispatcher's NATS user was refused: %q", v)
			}
		})
	}
}

// A delivery without a run id (a replay an older keys stored) whose
// webhook is gone has no run id to store its rejection under: it gets a
// record of its own, under its delivery id, and is acked, instead of
// failing to store under an empty subject token and coming back every
// second for ever.
func TestDispatcher_DeliveryWithoutRunIDOfAGoneWebhookGetsItsOwnRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("gone-old-replay", nil)
	e.deleteWebhook(w)
	e.start(nil)
	d := e.deliver(w, "evt-1", `{}`, received10sAgo, func(d *message.Delivery) { d.ReplayOf, d.RunID = ident.NewDeliveryID(), "" })
	out := e.outcome(d)
	want(t, "outcome", out.Status, message.DeliveryRejected)
	want(t, "outcome is the delivery's own record", out.Kind == message.KindDelivery && out.ID == d.ID, true)
	if !strings.Contains(out.Error, "no longer exists") {
		t.Fatalf("error %q", out.Error)
	}
	e.allAcked()
}

// laggingJS is a JetStream whose KV watches hold back the updates of one
// key of one bucket while held is set, as a configuration watch that is
// behind (or down) does: the catalog keeps what it had of the key.
type laggingJS struct {
	jetstream.JetStream
	bucket, key string
	held        atomic.Bool
}

func (j *laggingJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := j.JetStream.KeyValue(ctx, bucket)
	if err != nil || bucket != j.bucket {
		return kv, err
	}
	return &laggingKV{KeyValue: kv, js: j}, nil
}

type laggingKV struct {
	jetstream.KeyValue
	js *laggingJS
}

func (kv *laggingKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w, err := kv.KeyValue.WatchAll(ctx, opts...)
	if err != nil {
		return nil, err
	}
	out := make(chan jetstream.KeyValueEntry, 64)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil && e.Key() == kv.js.key && kv.js.held.Load() {
					continue
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return &laggingWatcher{KeyWatcher: w, out: out}, nil
}

type laggingWatcher struct {
	jetstream.KeyWatcher
	out chan jetstream.KeyValueEntry
}

func (w *laggingWatcher) Updates() <-chan jetstream.KeyValueEntry { return w.out }

// A delivery whose configuration this dispatcher's watch has not brought
// yet, past catalogGrace by ReceivedAt (the ingress' clock ahead of this
// dispatcher's, or the watch down for longer than the grace), is not
// rejected for good on the catalog's word: the bucket's leader holds the
// delivery's webhook or job, and the delivery waits until the catalog has
// it.
func TestDispatcher_ConfigurationTheWatchHasNotBroughtIsWaitedFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup writes the configuration, holding lag's key back from the
		// dispatcher's catalog (d, started) where needed; it returns the
		// webhook to deliver to and a mend that lets the watch catch up.
		setup func(e *env, lag *laggingJS, start func() *running) (*resource.Webhook, func())
	}{
		{
			name: "new webhook",
			setup: func(e *env, lag *laggingJS, start func() *running) (*resource.Webhook, func()) {
				lag.bucket, lag.key = bus.BucketWebhooks, bus.ConfigKey("default", "fresh")
				lag.held.Store(true)
				w := e.hook("fresh", nil)
				start()
				return w, func() { lag.held.Store(false); e.cfg.Webhook(*w) }
			},
		},
		{
			name: "new job",
			setup: func(e *env, lag *laggingJS, start func() *running) (*resource.Webhook, func()) {
				lag.bucket, lag.key = bus.BucketJobs, bus.ConfigKey("default", "fresh-job")
				lag.held.Store(true)
				w := e.hook("fresh", nil)
				start()
				return w, func() {
					lag.held.Store(false)
					e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "fresh-job"}, Spec: resource.JobSpec{Command: []string{"true"}}})
				}
			},
		},
		{
			name: "webhook made again under its name",
			setup: func(e *env, lag *laggingJS, start func() *running) (*resource.Webhook, func()) {
				lag.bucket, lag.key = bus.BucketWebhooks, bus.ConfigKey("default", "again")
				old := e.hook("again", nil)
				r := start()
				e.inCatalog(r, old)
				lag.held.Store(true)
				e.deleteWebhook(old)
				made := *old
				made.Metadata.UID, made.Status.EndpointID = "", ""
				w := e.cfg.Webhook(made)
				return w, func() { lag.held.Store(false); e.cfg.Webhook(*w) }
			},
		},
		{
			name: "webhook enabled again",
			setup: func(e *env, lag *laggingJS, start func() *running) (*resource.Webhook, func()) {
				lag.bucket, lag.key = bus.BucketWebhooks, bus.ConfigKey("default", "off-on")
				w := e.hook("off-on", func(w *resource.Webhook) { w.Spec.Disabled = true })
				r := start()
				e.inCatalog(r, w)
				lag.held.Store(true)
				w.Spec.Disabled = false
				w = e.cfg.Webhook(*w)
				return w, func() { lag.held.Store(false); e.cfg.Webhook(*w) }
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "redis")
			lag := &laggingJS{JetStream: e.js}
			w, mend := c.setup(e, lag, func() *running { return e.startWith(lag, e.store, nil) })
			d := e.deliver(w, "evt-1", `{}`, received10sAgo)
			e.stillWaiting(d, 2500*time.Millisecond)
			mend()
			want(t, "outcome once the watch caught up", e.outcome(d).Status, message.DeliveryDispatched)
		})
	}
}

// inCatalog waits until r's catalog holds w as it is.
func (e *env) inCatalog(r *running, w *resource.Webhook) {
	e.t.Helper()
	testenv.Eventually(e.t, 5*time.Second, func() error {
		got, ok := r.d.cat.Webhook(w.Metadata.Namespace, w.Metadata.Name)
		if !ok || got.Metadata.UID != w.Metadata.UID || got.Spec.Disabled != w.Spec.Disabled {
			return fmt.Errorf("the catalog does not hold webhook %s as written yet", w.Metadata.Name)
		}
		return nil
	})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// userConn is a connection as one user of deploy/nats/users.conf that
// records the permission violations the server reports to it.
type userConn struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []string
}

func connectAs(t *testing.T, n *testenv.NATS, user string) *userConn {
	t.Helper()
	u := &userConn{}
	nc, err := nats.Connect(n.URL, nats.UserInfo(user, n.Users[user]), nats.CustomInboxPrefix(bus.InboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			u.mu.Lock()
			u.errs = append(u.errs, err.Error())
			u.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	u.nc = nc
	if u.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *userConn) violations() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.errs...)
}

// refused waits for the server's permission violation naming subject.
func (u *userConn) refused(t *testing.T, op, subject string) {
	t.Helper()
	testenv.Eventually(t, 3*time.Second, func() error {
		for _, e := range u.violations() {
			if strings.Contains(strings.ToLower(e), "permissions violation for "+op) && strings.Contains(e, `"`+subject+`"`) {
				return nil
			}
		}
		return fmt.Errorf("%s %s not refused; violations so far: %q", op, subject, u.violations())
	})
}

// TestNATSUsers_EachServiceRefusedOutsideItsSubjects connects as each
// service's user of deploy/nats/users.conf: what the service does is
// allowed, and publishing or subscribing on another service's subjects
// (another's stream subjects, the configuration buckets, another's durable
// consumer, stream deletion, another's reply inbox) is refused by the server.
func TestNATSUsers_EachServiceRefusedOutsideItsSubjects(t *testing.T) {
	t.Parallel()
	n := testenv.StartSecuredNATS(t)
	n.Connect() // as admin: lays out the streams and buckets
	ctx := context.Background()

	type want struct {
		allowed func(js jetstream.JetStream) error // part of the service's own work
		pub     []string                           // refused publishes
		sub     []string                           // refused subscriptions
	}
	publish := func(subject string) func(js jetstream.JetStream) error {
		return func(js jetstream.JetStream) error {
			_, err := js.Publish(ctx, subject, []byte("{}"))
			return err
		}
	}
	kvPut := func(bucket string) func(js jetstream.JetStream) error {
		return func(js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, bucket)
			if err != nil {
				return err
			}
			_, err = kv.Put(ctx, "default.permtest", []byte("{}"))
			return err
		}
	}
	// publishAndReadBack publishes under a message id and reads that id
	// back from the stream's leader by sequence (STREAM.MSG.GET), as the
	// services confirm a write JetStream answered as a duplicate.
	publishAndReadBack := func(js jetstream.JetStream, subject string) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		msgID := "permtest-" + subject
		ack, err := js.Publish(ctx, subject, []byte("{}"), jetstream.WithMsgID(msgID))
		if err != nil {
			return err
		}
		stored, found, err := bus.MsgIDAt(ctx, js.Conn(), ack.Stream, ack.Sequence)
		if err != nil || !found || stored != msgID {
			return fmt.Errorf("reading back %s@%d from the leader: %q %v %v", ack.Stream, ack.Sequence, stored, found, err)
		}
		return nil
	}
	// statusNotFound reads an absent run's status, from the leader or by
	// direct get, and wants "not found", not a refusal or a time-out.
	statusNotFound := func(js jetstream.JetStream, leader bool) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var err error
		if leader {
			_, err = runstatus.Get(ctx, js, "run_permprobe")
		} else {
			var s jetstream.Stream
			if s, err = js.Stream(ctx, bus.StreamStatus); err != nil {
				return err
			}
			_, err = runstatus.GetDirect(ctx, s, "run_permprobe")
		}
		if !errors.Is(err, runstatus.ErrNotFound) {
			return fmt.Errorf("reading a run's status (leader %v): %v", leader, err)
		}
		return nil
	}
	// createAndDelete makes a durable consumer and deletes it: a consumer
	// whose files nats-server lost is deleted and made again from its ack
	// floor by the service that owns it (bus.DropBrokenConsumer).
	createAndDelete := func(js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateConsumer(ctx, stream, cfg); err != nil {
			return fmt.Errorf("making consumer %s on %s: %w", cfg.Durable, stream, err)
		}
		if err := js.DeleteConsumer(ctx, stream, cfg.Durable); err != nil {
			return fmt.Errorf("deleting consumer %s on %s: %w", cfg.Durable, stream, err)
		}
		return nil
	}
	cases := map[string]want{
		"ingress": {
			allowed: func(js jetstream.JetStream) error {
				// A duplicate's original delivery, read from the leader.
				if err := publishAndReadBack(js, bus.DeliverySubject("default", "hook", "dlv_1")); err != nil {
					return err
				}
				// A duplicate's answer reads its first run's status.
				s, err := js.Stream(ctx, bus.StreamStatus)
				if err != nil {
					return err
				}
				if _, err := runstatus.GetDirect(ctx, s, "run_ingressprobe"); !errors.Is(err, runstatus.ErrNotFound) {
					return fmt.Errorf("reading a run's status: %v", err)
				}
				return nil
			},
			pub: []string{
				bus.RunSubject("default", "job"), bus.StatusSubject("default", "run_1"), bus.CancelSubject("run_1"),
				"$KV.hookrun_jobs.default.evil", "$KV.hookrun_secrets.default.evil", "$KV.hookrun_dedup.evil", "$KV.hookrun_callback_attempts.1",
				"$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.dispatcher", "$JS.API.CONSUMER.MSG.NEXT.RUNS.job_default_job",
				"$JS.API.STREAM.DELETE.DELIVERIES", "$JS.API.STREAM.PURGE.STATUS",
				// Only keys lays out streams: an update could source this
				// user's messages into the configuration buckets.
				"$JS.API.STREAM.UPDATE.KV_hookrun_jobs", "$JS.API.STREAM.CREATE.KV_hookrun_jobs", "$JS.API.STREAM.UPDATE.DELIVERIES",
				// A run's status by subject, yes; a walk through STATUS by sequence, no.
				"$JS.API.DIRECT.GET.STATUS", "$JS.API.STREAM.MSG.GET.STATUS",
			},
			sub: []string{bus.CancelSubject("*"), bus.OutputSubject("*"), "_INBOX.>", bus.InboxPrefix("keys") + ".>", bus.StatusAll},
		},
		"dispatcher": {
			allowed: func(js jetstream.JetStream) error {
				// A duplicate run request is confirmed by reading RUNS' leader.
				if err := publishAndReadBack(js, bus.RunSubject("default", "job")); err != nil {
					return err
				}
				// A redelivered delivery resumes from its run's status, read
				// from STATUS' leader.
				if err := statusNotFound(js, true); err != nil {
					return err
				}
				if err := createAndDelete(js, bus.StreamDeliveries, jetstream.ConsumerConfig{Durable: bus.ConsumerDispatcher, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
					return err
				}
				return kvPut(bus.BucketDedup)(js)
			},
			pub: []string{
				bus.DeliverySubject("default", "hook", "dlv_1"), bus.CancelSubject("run_1"), bus.OutputSubject("run_1"), bus.RetryScheduleSubject("run_1"),
				"$KV.hookrun_secrets.default.evil", "$KV.hookrun_keys.default.evil", "$KV.hookrun_cancels.run_1", "$KV.hookrun_callback_attempts.1",
				"$JS.API.CONSUMER.MSG.NEXT.RUNS.job_default_job", "$JS.API.CONSUMER.MSG.NEXT.STATUS.callbacks",
				"$JS.API.STREAM.DELETE.RUNS", "$JS.API.CONSUMER.DELETE.RUNS.job_default_job", "$JS.API.CONSUMER.DELETE.STATUS.callbacks",
				"$JS.API.STREAM.UPDATE.KV_hookrun_jobs", "$JS.API.STREAM.UPDATE.RUNS", "$JS.API.STREAM.CREATE.KV_hookrun_webhooks",
			},
			sub: []string{bus.OutputSubject("*"), bus.InboxPrefix("executor") + ".>", bus.DeliveryByIDFilter("*")},
		},
		"executor": {
			allowed: func(js jetstream.JetStream) error {
				if err := publish(bus.StatusSubject("default", "run_1"))(js); err != nil {
					return err
				}
				// A failed run's retry, scheduled in RETRIES; moved back into
				// RUNS, through the `retries` consumer, when due.
				m := nats.NewMsg(bus.RetryScheduleSubject("run_permprobe"))
				m.Header.Set(bus.HeaderSchedule, "@at "+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
				m.Header.Set(bus.HeaderScheduleTarget, bus.RetryDueSubject("default", "job"))
				if _, err := js.PublishMsg(ctx, m); err != nil {
					return fmt.Errorf("scheduling a retry: %w", err)
				}
				if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamRetries, jetstream.ConsumerConfig{Durable: bus.ConsumerRetries, FilterSubject: bus.RetriesDue, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
					return fmt.Errorf("the retries consumer: %w", err)
				}
				if err := publish(bus.RunSubject("default", "job"))(js); err != nil {
					return fmt.Errorf("moving a due retry into RUNS: %w", err)
				}
				// Whether another message of a run's request is still in
				// RUNS: by sequence, from the leader.
				if _, _, _, err := bus.MsgAt(ctx, js.Conn(), bus.StreamRuns, 1); err != nil {
					return fmt.Errorf("reading RUNS by sequence: %w", err)
				}
				// A callback's failed attempts, counted and read back.
				if err := kvPut(bus.BucketCallbackAttempts)(js); err != nil {
					return fmt.Errorf("counting a callback's attempts: %w", err)
				}
				if kv, err := js.KeyValue(ctx, bus.BucketCallbackAttempts); err != nil {
					return err
				} else if _, err := kv.Get(ctx, "default.permtest"); err != nil {
					return fmt.Errorf("reading a callback's attempts: %w", err)
				}
				for _, c := range []struct {
					stream string
					cfg    jetstream.ConsumerConfig
				}{
					{bus.StreamRetries, jetstream.ConsumerConfig{Durable: bus.ConsumerRetries, FilterSubject: bus.RetriesDue, AckPolicy: jetstream.AckExplicitPolicy}},
					{bus.StreamRuns, jetstream.ConsumerConfig{Durable: bus.JobConsumer("default", "permprobe"), FilterSubject: bus.RunSubject("default", "permprobe"), AckPolicy: jetstream.AckExplicitPolicy}},
					{bus.StreamStatus, jetstream.ConsumerConfig{Durable: bus.ConsumerCallbacks, FilterSubject: bus.StatusAll, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy}},
				} {
					if err := createAndDelete(js, c.stream, c.cfg); err != nil {
						return err
					}
				}
				// A run's status, by direct get or from the leader.
				if err := statusNotFound(js, false); err != nil {
					return err
				}
				return statusNotFound(js, true)
			},
			pub: []string{
				bus.DeliverySubject("default", "hook", "dlv_1"), bus.CancelSubject("run_1"), bus.RetryDueSubject("default", "job"),
				"$KV.hookrun_jobs.default.evil", "$KV.hookrun_cancels.run_1", "$KV.hookrun_dedup.evil",
				"$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.dispatcher", "$JS.API.STREAM.DELETE.STATUS",
				"$JS.API.STREAM.UPDATE.KV_hookrun_jobs", "$JS.API.STREAM.UPDATE.STATUS", "$JS.API.STREAM.CREATE.KV_hookrun_secrets",
			},
			sub: []string{bus.OutputSubject("*"), bus.InboxPrefix("ingress") + ".>", "hookrun.>"},
		},
		"keys": {
			allowed: func(js jetstream.JetStream) error {
				if err := kvPut(bus.BucketJobs)(js); err != nil {
					return err
				}
				// A replay is confirmed by reading DELIVERIES' leader; a run
				// is read from STATUS' leader.
				if err := publishAndReadBack(js, bus.DeliverySubject("default", "hook", "dlv_2")); err != nil {
					return err
				}
				return statusNotFound(js, true)
			},
			pub: []string{
				bus.RunSubject("default", "job"), bus.OutputSubject("run_1"), "$KV.hookrun_dedup.evil",
				"$JS.API.CONSUMER.MSG.NEXT.RUNS.job_default_job", "$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.dispatcher",
				"$JS.API.CONSUMER.MSG.NEXT.STATUS.callbacks", "$JS.API.CONSUMER.DELETE.STATUS.callbacks",
				"$JS.API.STREAM.DELETE.DELIVERIES", "$JS.API.STREAM.PURGE.RUNS",
			},
			sub: []string{bus.CancelSubject("*"), bus.RunSubject("*", "*"), bus.InboxPrefix("dispatcher") + ".>"},
		},
	}
	for user, w := range cases {
		t.Run(user, func(t *testing.T) {
			u := connectAs(t, n, user)
			// Its own work goes through, replies arriving at its own inbox.
			if _, err := u.js.AccountInfo(ctx); err != nil {
				t.Fatalf("account info as %s: %v", user, err)
			}
			if err := w.allowed(u.js); err != nil {
				t.Fatalf("%s's own work refused: %v (violations %q)", user, err, u.violations())
			}
			if v := u.violations(); len(v) > 0 {
				t.Fatalf("%s's own work caused violations: %q", user, v)
			}
			for _, subj := range w.pub {
				if err := u.nc.Publish(subj, []byte("x")); err != nil {
					t.Fatal(err)
				}
				u.refused(t, "publish to", subj)
			}
			for _, subj := range w.sub {
				if _, err := u.nc.SubscribeSync(subj); err != nil {
					t.Fatal(err)
				}
				u.refused(t, "subscription to", subj)
			}
			if !u.nc.IsConnected() {
				t.Fatal("a violation closed the connection")
			}
		})
	}
	// keys asks the executor running a run for its output so far; the
	// executor answers to keys' inbox (allow_responses).
	t.Run("output snapshot, keys to executor", func(t *testing.T) {
		x, k := connectAs(t, n, "executor"), connectAs(t, n, "keys")
		sub, err := x.nc.Subscribe(bus.OutputSnapshotAll, func(m *nats.Msg) {
			_ = m.Respond([]byte("so far\n"))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := x.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		m, err := k.nc.Request(bus.OutputSnapshotSubject("run_snap"), nil, 2*time.Second)
		if err != nil || string(m.Data) != "so far\n" {
			t.Fatalf("snapshot request: %v %v (violations executor %q keys %q)", m, err, x.violations(), k.violations())
		}
		if v := append(x.violations(), k.violations()...); len(v) > 0 {
			t.Fatalf("violations: %q", v)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		if nc, err := nats.Connect(n.URL, nats.UserInfo("ingress", n.Users["keys"])); err == nil {
			nc.Close()
			t.Fatal("ingress with the keys password connected")
		}
	})
}

// TestNATSUsers_ServiceWithAnotherServicesUserCannotWork runs the real
// stack on the project's NATS configuration, then restarts the dispatcher
// connected as the ingress user: NATS refuses it the dispatcher's durable
// consumer, so an accepted delivery waits, unrun. Back on its own user the
// dispatcher takes the delivery and the job runs: nothing was lost.
// startSecuredEcho starts the four services on a NATS of the project's
// users (each service its own), with job echo ("echo ran") and webhook
// hook (a secret URL) running it; it returns the webhook's endpoint path.
func startSecuredEcho(t *testing.T) (*testenv.NATS, *Stack, string) {
	t.Helper()
	n := testenv.StartSecuredNATS(t)
	s := StartStackOn(t, n, testenv.RedisURL(t))
	if code := s.API("PUT", "/v1/jobs/echo", job("echo", "/bin/sh", "-c", "echo ran"), nil); code != 201 {
		t.Fatalf("PUT job: %d", code)
	}
	var wh struct {
		Status struct {
			EndpointPath string `json:"endpointPath"`
		} `json:"status"`
	}
	if code := s.API("PUT", "/v1/webhooks/hook", webhook("hook", "echo", nil), &wh); code != 201 {
		t.Fatalf("PUT webhook: %d", code)
	}
	return n, s, wh.Status.EndpointPath
}

func TestNATSUsers_ServiceWithAnotherServicesUserCannotWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	t.Parallel()
	n, s, endpointPath := startSecuredEcho(t)
	if v := n.Violations(); len(v) > 0 {
		t.Fatalf("violations with every service on its own user: %q", v)
	}

	s.Kill("dispatcher")
	s.Start("dispatcher", "HOOKRUN_NATS_USER=ingress", "HOOKRUN_NATS_PASSWORD="+n.Users["ingress"])
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, v := range n.Violations() {
			if strings.Contains(v, "$JS.API.CONSUMER.CREATE.DELIVERIES.dispatcher") {
				return nil
			}
		}
		return fmt.Errorf("no violation on the dispatcher's consumer yet: %q", n.Violations())
	})
	var id string
	testenv.Eventually(t, 10*time.Second, func() error {
		code, body := s.Deliver(endpointPath, `{"id":"evt-1"}`, nil)
		if code != http.StatusAccepted {
			return fmt.Errorf("delivery: %d %v", code, body)
		}
		id, _ = body["executionId"].(string)
		return nil
	})
	time.Sleep(3 * time.Second)
	var r Run
	// Accepted and undecided, the run reads as queued (the keys service
	// finds it among the pending deliveries); anything else means the
	// dispatcher worked with another service's user, or the run is lost.
	if code := s.API("GET", "/v1/runs/"+id, nil, &r); code != http.StatusOK || r.Status != "queued" {
		t.Fatalf("run %s: %d %q while the dispatcher has the ingress user, want 200 queued", id, code, r.Status)
	}

	s.Kill("dispatcher")
	s.Start("dispatcher")
	s.WaitRun(id, "succeeded", 30*time.Second)
}

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
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

var storeKinds = []string{"redis", "kv"}

func TestDispatcher_DuplicateInsideWindowIsRecordedNotRun(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind)
			w := e.hook("dup-"+kind, nil)
			e.start(nil)
			before := deliveriesCount(w, message.DeliveryDuplicate)

			first := e.deliver(w, "evt-1", `{"n":1}`)
			want(t, "first outcome", e.outcome(first).Status, message.DeliveryDispatched)
			second := e.deliver(w, "evt-1", `{"n":2}`)
			dup := e.outcome(second)
			want(t, "second outcome", dup.Status, message.DeliveryDuplicate)
			want(t, "duplicate's run id", dup.RunID, first.RunID)

			runs := e.runsPerID()
			want(t, "run requests", len(runs), 1)
			want(t, "requests of the run", runs[first.RunID], 1)
			want(t, "run status", e.run(first.RunID).Status, message.StatusQueued)
			want(t, "run's delivery", e.run(first.RunID).DeliveryID, first.ID)
			want(t, "duplicates counted", deliveriesCount(w, message.DeliveryDuplicate)-before, 1.0)
			// Only the duplicate has a record of its own: the first
			// delivery's outcome is its run's record (a STATUS subject
			// and a message fewer per delivery).
			if _, err := runstatus.Get(context.Background(), e.js, first.ID); !errors.Is(err, runstatus.ErrNotFound) {
				t.Errorf("dispatched delivery has an outcome record of its own (%v)", err)
			}
			if r, err := runstatus.Get(context.Background(), e.js, second.ID); err != nil || r.Kind != message.KindDelivery {
				t.Errorf("duplicate's own record: %v, %v", r, err)
			}
		})
	}
}

func TestDispatcher_DuplicateOutsideWindowRunsAgain(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind)
			window := 300 * time.Millisecond
			if kind == "kv" {
				window = time.Second // JetStream keeps TTLs in seconds
			}
			w := e.hook("again-"+kind, func(w *resource.Webhook) { w.Spec.DedupWindow = resource.Duration(window) })
			e.start(nil)

			first := e.deliver(w, "evt-1", `{}`)
			want(t, "first outcome", e.outcome(first).Status, message.DeliveryDispatched)
			// Inside the window: a duplicate.
			dup := e.deliver(w, "evt-1", `{}`)
			want(t, "inside the window", e.outcome(dup).Status, message.DeliveryDuplicate)

			// Once the claim has expired, the same event is a new run.
			testenv.Eventually(t, 10*time.Second, func() error {
				if owner, found, err := e.store.Lookup(context.Background(), dedupKey(w, "evt-1"), window); err != nil || found {
					return errorf("claim still held by %q (%v)", owner, err)
				}
				return nil
			})
			// The run id is the event's: while the first delivery's run is
			// in flight, the later delivery waits for it to end instead of
			// storing its status over it.
			r := e.run(first.RunID)
			now := time.Now().UTC()
			r.Status, r.Attempt, r.StartedAt = message.StatusRunning, 1, &now
			if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
				t.Fatal(err)
			}
			later := e.deliver(w, "evt-1", `{}`)
			time.Sleep(2 * time.Second)
			want(t, "run status while the first runs", e.run(first.RunID).DeliveryID, first.ID)
			want(t, "run requests while the first runs", len(e.runRequests()), 1)
			r.Status, r.FinishedAt = message.StatusSucceeded, &now
			if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
				t.Fatal(err)
			}
			want(t, "outside the window", e.outcome(later).Status, message.DeliveryDispatched)
			reqs := e.runRequests()
			want(t, "run requests", len(reqs), 2)
			want(t, "second request's delivery", reqs[1].DeliveryID, later.ID)
			want(t, "run status", e.run(first.RunID).DeliveryID, later.ID)
		})
	}
}

func TestDispatcher_WindowsByProfileAndOverride(t *testing.T) {
	t.Parallel()
	// Claims as keys of their own, so that a claim's TTL is the window the
	// dispatcher chose (buckets hold a claim up to 1.5 windows).
	e := newEnv(t, "redis-plain")
	e.conf.DefaultWindow = 48 * time.Hour
	sig := func(profile string) func(*resource.Webhook) {
		return func(w *resource.Webhook) {
			w.Spec.Auth = resource.Auth{Signature: &resource.SignatureAuth{Profile: profile, SecretRef: "s"}}
		}
	}
	e.cfg.Secret("default", "s", "topsecret", "", 0)
	cases := []struct {
		name string
		mod  func(*resource.Webhook)
		want time.Duration
	}{
		{"secret-url-uses-the-default", nil, 48 * time.Hour},
		{"generic-profile", sig("generic"), 24 * time.Hour},
		{"github-profile", sig("github"), 72 * time.Hour},
		{"override", func(w *resource.Webhook) { sig("github")(w); w.Spec.DedupWindow = resource.Duration(90 * time.Minute) }, 90 * time.Minute},
	}
	hooks := map[string]*resource.Webhook{}
	for _, c := range cases {
		hooks[c.name] = e.hook(c.name, c.mod)
	}
	e.start(nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := hooks[c.name]
			d := e.deliver(w, "evt-"+c.name, `{}`, func(d *message.Delivery) {
				if w.Spec.Auth.Signature != nil {
					d.Profile = w.Spec.Auth.Signature.Profile
				}
			})
			want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
			ttl := e.dedupTTL(w, d.EventID)
			if ttl > c.want || ttl < c.want-time.Minute {
				t.Fatalf("PTTL = %s, want about %s", ttl, c.want)
			}
			if c.mod != nil && w.Spec.Auth.Signature != nil {
				want(t, "webhook_source", e.run(d.RunID).WebhookSource, w.Spec.Auth.Signature.Profile)
			}
		})
	}
}

func TestDispatcher_CrashBetweenClaimAndPublishRunsOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		stage string
		// executorStarted: an executor took the run before the delivery
		// came back; its status must not be overwritten by "queued".
		executorStarted bool
		// publishFails: the first RUNS publish fails instead of a crash.
		publishFails bool
	}{
		{name: "after-claim", stage: stageClaimed},
		{name: "after-queued-status", stage: stageQueued},
		{name: "after-run-request", stage: stagePublished},
		{name: "after-run-request-executor-started", stage: stagePublished, executorStarted: true},
		{name: "run-request-publish-fails", publishFails: true},
	}
	rc := testenv.Redis(t) // one Redis for the table: keys are per webhook uid
	for _, kind := range storeKinds {
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, kind, rc)
				w := e.hook("crash", nil)
				crashed := make(chan struct{})
				first := e.start(func(d *Dispatcher) {
					if c.publishFails {
						var failed bool
						d.publishFault = func(subject string) error {
							if strings.HasPrefix(subject, "hookrun.runs.") && !failed {
								failed = true
								close(crashed)
								return errorf("injected publish failure")
							}
							return nil
						}
						return
					}
					d.crashAt = crashOnceAt(c.stage, crashed)
				})
				d := e.deliver(w, "evt-crash", `{"x":1}`)
				select {
				case <-crashed:
				case <-time.After(10 * time.Second):
					t.Fatal("the dispatcher never reached the crash point")
				}
				if !c.publishFails {
					first.stop() // the process is gone; the delivery stays unacked
					if c.executorStarted {
						r := e.run(d.RunID)
						now := time.Now().UTC()
						r.Status, r.Attempt, r.StartedAt = message.StatusRunning, 1, &now
						if err := runstatus.Publish(context.Background(), e.js, r); err != nil {
							t.Fatal(err)
						}
					}
					e.start(nil) // a restarted dispatcher gets it after AckWait
				}
				want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
				e.allAcked() // the restarted dispatcher has been through it
				runs := e.runsPerID()
				want(t, "run ids", len(runs), 1)
				want(t, "requests of the run", runs[d.RunID], 1)
				wantStatus := message.StatusQueued
				if c.executorStarted {
					wantStatus = message.StatusRunning
				}
				want(t, "run status", e.run(d.RunID).Status, wantStatus)
				h, err := runstatus.History(context.Background(), e.js, "default", d.RunID)
				if err != nil {
					t.Fatal(err)
				}
				if last := h[len(h)-1]; last.Status != wantStatus {
					t.Fatalf("history ends with %s, want %s", last.Status, wantStatus)
				}
			})
		}
	}
}

// A delivery whose queued status was stored before a crash is dispatched
// as it was decided, when it comes back, even if its webhook now says
// otherwise: deciding again (filtered now) would leave the run queued for
// ever, without a run request.
func TestDispatcher_ResumedQueuedDeliveryKeepsItsDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("redecide", nil, resource.Job{Metadata: resource.Meta{Name: "redecide-job"}, Spec: resource.JobSpec{
		Command: []string{"true"}, Args: []resource.Arg{{Name: "ref", Value: "{{ .body.ref }}"}},
	}})
	crashed := make(chan struct{})
	first := e.start(func(d *Dispatcher) {
		d.crashAt = crashOnceAt(stageQueued, crashed)
	})
	d := e.deliver(w, "evt-redecide", `{"ref":"main"}`)
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("the dispatcher never stored the queued status")
	}
	first.stop()
	w.Spec.Filter = `body.ref == "never"`
	e.cfg.Webhook(*w)
	e.start(nil)
	e.allAcked()
	rrs := e.runRequests()
	if len(rrs) != 1 || rrs[0].DeliveryID != d.ID || rrs[0].Args["ref"] != "main" {
		t.Fatalf("run requests after the restart: %+v, want one of delivery %s with ref=main", rrs, d.ID)
	}
	r := e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusQueued)
	want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
	// The resumed request keeps the queue time the crashed attempt stored.
	want(t, "the request's queue time is the queued status'", r.QueuedAt != nil && rrs[0].QueuedAt.Equal(*r.QueuedAt), true)
}

func TestDispatcher_ConcurrentDuplicatesAcrossDispatchersRunOnce(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind)
			e.conf.BatchSize = 5 // small batches spread the burst over the dispatchers
			w := e.hook("burst", nil)
			var ds []*running
			for range 3 {
				ds = append(ds, e.start(nil))
			}
			const events, copies = 20, 3
			var all []message.Delivery
			for c := range copies {
				for i := range events {
					all = append(all, e.deliver(w, "evt-"+string(rune('a'+i)), `{"copy":`+string(rune('0'+c))+`}`))
				}
			}
			outcomes := map[string]int{}
			for _, d := range all {
				outcomes[e.outcome(d).Status]++
			}
			want(t, "dispatched", outcomes[message.DeliveryDispatched], events)
			want(t, "duplicates", outcomes[message.DeliveryDuplicate], events*(copies-1))
			runs := e.runsPerID()
			want(t, "runs", len(runs), events)
			for id, n := range runs {
				want(t, "requests of "+id, n, 1)
			}
			_ = ds
		})
	}
}

func TestDispatcher_Filter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("filtered", func(w *resource.Webhook) {
		w.Spec.Filter = `header["X-GitHub-Event"] == "push" && body.ref == "refs/heads/main" && query.env == "prod" && method == "POST"`
	})
	e.start(nil)
	push := func(d *message.Delivery) {
		d.Header["X-Github-Event"] = []string{"push"}
		d.Query = map[string][]string{"env": {"prod"}}
	}
	cases := []struct {
		name, body string
		mod        func(*message.Delivery)
		outcome    string
		errPart    string
	}{
		{"true", `{"ref":"refs/heads/main"}`, push, message.DeliveryDispatched, ""},
		{"false-body", `{"ref":"refs/heads/dev"}`, push, message.DeliveryFiltered, "filter is false"},
		{"false-header", `{"ref":"refs/heads/main"}`, func(d *message.Delivery) { push(d); d.Header["X-Github-Event"] = []string{"issues"} }, message.DeliveryFiltered, "filter is false"},
		{"false-query", `{"ref":"refs/heads/main"}`, func(d *message.Delivery) { push(d); d.Query["env"] = []string{"dev"} }, message.DeliveryFiltered, "filter is false"},
		{"error-is-filtered", `{"zen":"ping"}`, push, message.DeliveryFiltered, "ref"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.deliver(w, "evt-"+c.name, c.body, c.mod)
			out := e.outcome(d)
			want(t, "outcome", out.Status, c.outcome)
			r := e.run(d.RunID)
			if c.outcome == message.DeliveryDispatched {
				want(t, "run status", r.Status, message.StatusQueued)
			} else {
				want(t, "run status", r.Status, message.StatusFiltered)
			}
			if c.errPart != "" && (!strings.Contains(out.Error, c.errPart) || !strings.Contains(r.Error, c.errPart)) {
				t.Fatalf("errors %q / %q should mention %q", out.Error, r.Error, c.errPart)
			}
		})
	}
	want(t, "run requests", len(e.runRequests()), 1)
	// Written after any lastError of the same batch: once it is there, a
	// lastError would be too.
	var s webhookstatus.Status
	testenv.Eventually(t, 5*time.Second, func() error {
		s, _ = webhookstatus.Get(context.Background(), e.js, "default", w.Metadata.Name)
		if s.LastDeliveryAt == nil {
			return errors.New("lastDeliveryAt not written yet")
		}
		return nil
	})
	if s.LastError != "" {
		t.Fatalf("a filtered delivery set lastError %q", s.LastError)
	}
}

func TestDispatcher_FilterThatDoesNotCompileRejectsAndSetsLastError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	// The keys service refuses such a filter at apply time; one stored
	// anyway (an older keys, a hand edit) must not crash or block.
	w := e.hook("bad-filter", func(w *resource.Webhook) { w.Spec.Filter = `body.ref ==` })
	e.start(nil)
	d := e.deliver(w, "evt", `{"ref":"x"}`)
	want(t, "outcome", e.outcome(d).Status, message.DeliveryRejected)
	want(t, "run status", e.run(d.RunID).Status, message.StatusRejected)
	wantLastError(t, e, "bad-filter", "filter does not compile")
	want(t, "run requests", len(e.runRequests()), 0)
}

// A run's webhook_payload is the body's first 64 KiB; a cut one says so
// (webhook_payload_truncated), as a cut JSON body is no longer JSON.
func TestDispatcher_ACutWebhookPayloadIsMarked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("big-body", nil, resource.Job{Metadata: resource.Meta{Name: "report"}, Spec: resource.JobSpec{Command: []string{"true"}}})
	e.start(nil)
	big := `{"pad":"` + strings.Repeat("x", message.MaxStatusPayload) + `"}`
	d := e.deliver(w, "evt-big", big)
	want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
	r := e.run(d.RunID)
	want(t, "payload bytes", len(r.WebhookPayload), message.MaxStatusPayload)
	want(t, "webhook_payload_truncated", r.WebhookPayloadTruncated, true)
	small := e.deliver(w, "evt-small", `{"a":1}`)
	want(t, "outcome", e.outcome(small).Status, message.DeliveryDispatched)
	want(t, "small payload not marked", e.run(small.RunID).WebhookPayloadTruncated, false)
}

func TestDispatcher_TemplatesResolveIntoTheRunRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	def := func(s string) *string { return &s }
	job := resource.Job{Metadata: resource.Meta{Name: "report"}, Spec: resource.JobSpec{
		Command: []string{"true"},
		Args: []resource.Arg{
			{Name: "topic", Default: def("AI startups"), Value: "{{ .body.topic }}"},
			{Name: "event", Default: def("manual"), Value: `{{ header "X-GitHub-Event" }}`},
			{Name: "env", Value: `{{ .query.env | default "staging" }}`},
			{Name: "mode", Default: def("full")},
			{Name: "repo", Default: def("none"), Value: "{{ .body.repository.name }}"},
			{Name: "ev", Default: def("manual-ev"), Value: "{{ .eventId }}"},
		},
	}}
	w := e.hook("tmpl", func(w *resource.Webhook) {
		w.Spec.Callback = &resource.Callback{URL: "http://127.0.0.1:1/cb", SecretRef: "cb"}
	}, job)
	e.start(nil)
	d := e.deliver(w, "evt-tmpl", `{"topic":"robots","repository":{"name":"hookrun"}}`, func(d *message.Delivery) {
		d.Header["X-Github-Event"] = []string{"push"}
		d.Profile = "github"
	})
	want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
	reqs := e.runRequests()
	want(t, "run requests", len(reqs), 1)
	rr := reqs[0]
	wantArgs := map[string]string{"topic": "robots", "event": "push", "env": "staging", "mode": "full", "repo": "hookrun", "ev": "evt-tmpl"}
	for k, v := range wantArgs {
		want(t, "arg "+k, rr.Args[k], v)
	}
	want(t, "id", rr.ID, d.RunID)
	want(t, "job", rr.Job, "report")
	want(t, "delivery", rr.DeliveryID, d.ID)
	want(t, "event", rr.EventID, "evt-tmpl")
	want(t, "payload", string(rr.Payload), string(d.Body))
	want(t, "content type", rr.ContentType, "application/json")
	want(t, "header", rr.Header["X-Github-Event"][0], "push")
	want(t, "received at", rr.ReceivedAt.Equal(d.ReceivedAt), true)
	want(t, "source", rr.Source, "github")
	want(t, "callback", rr.Callback != nil && rr.Callback.URL == "http://127.0.0.1:1/cb" && rr.Callback.SecretRef == "cb", true)
	want(t, "queued at", rr.QueuedAt.IsZero(), false)
	r := e.run(d.RunID)
	// One queue time for every record of the run: the run list's order.
	want(t, "the request's queue time is the queued status'", r.QueuedAt != nil && rr.QueuedAt.Equal(*r.QueuedAt), true)
	want(t, "status args", r.Args["topic"], "robots")
	want(t, "webhook_payload", r.WebhookPayload, string(d.Body))
	want(t, "webhook_event_id", r.WebhookEventID, "evt-tmpl")

	// With no value, the defaults apply.
	d2 := e.deliver(w, "evt-defaults", `{}`)
	want(t, "outcome with defaults", e.outcome(d2).Status, message.DeliveryDispatched)
	want(t, "default arg", e.run(d2.RunID).Args["topic"], "AI startups")
	want(t, "default repo", e.run(d2.RunID).Args["repo"], "none")

	// A GET runs with the defaults only, whatever its query and headers.
	d3 := e.deliver(w, "evt-get", "", func(d *message.Delivery) {
		d.Method, d.Query = "GET", map[string][]string{"env": {"prod"}}
		d.Header["X-Github-Event"] = []string{"push"}
	})
	want(t, "outcome of a GET", e.outcome(d3).Status, message.DeliveryDispatched)
	got := e.run(d3.RunID).Args
	// Not even a template that reads no request data (the event id).
	for k, v := range map[string]string{"topic": "AI startups", "event": "manual", "env": "staging", "mode": "full", "repo": "none", "ev": "manual-ev"} {
		want(t, "GET arg "+k, got[k], v)
	}
}

func TestDispatcher_TemplateFailureFailsTheRunAndSetsLastError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	job := resource.Job{Metadata: resource.Meta{Name: "strict"}, Spec: resource.JobSpec{
		Command: []string{"true"},
		Args:    []resource.Arg{{Name: "repo", Value: "{{ .body.repository.name }}"}},
	}}
	bad := e.hook("strict", func(w *resource.Webhook) {
		w.Spec.Callback = &resource.Callback{URLSecretRef: "cb-url"}
	}, job)
	good := e.hook("fine", nil)
	e.start(nil)
	failedBefore := deliveriesCount(bad, outcomeFailed)

	d := e.deliver(bad, "evt-bad", `{"zen":"ping"}`)
	after := e.deliver(good, "evt-good", `{}`) // the stream is not blocked
	out := e.outcome(d)
	want(t, "delivery outcome", out.Status, message.DeliveryRejected)
	r := e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, `arg "repo"`) || !strings.Contains(r.Error, ".body.repository.name") {
		t.Fatalf("run error %q should name the argument and its template", r.Error)
	}
	want(t, "finished", r.FinishedAt != nil, true)
	want(t, "callback travels with the failure", r.Callback != nil && r.Callback.URLSecretRef == "cb-url" && r.Callback.URL == "", true)
	want(t, "next delivery", e.outcome(after).Status, message.DeliveryDispatched)
	wantLastError(t, e, "strict", `arg "repo"`)
	want(t, "run requests", len(e.runRequests()), 1)
	want(t, "failed counted", deliveriesCount(bad, outcomeFailed)-failedBefore, 1.0)
}

func TestDispatcher_ReplayBypassesDedup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("replay", nil)
	e.start(nil)
	orig := e.deliver(w, "evt-r", `{}`)
	want(t, "original", e.outcome(orig).Status, message.DeliveryDispatched)
	replay := e.deliver(w, "evt-r", `{}`, func(d *message.Delivery) {
		d.ReplayOf = orig.ID
		d.RunID = ident.RunID(w.Metadata.UID, d.EventID, d.ID) // as keys' replay does
	})
	want(t, "replay", e.outcome(replay).Status, message.DeliveryDispatched)
	runs := e.runsPerID()
	want(t, "runs", len(runs), 2)
	r := e.run(replay.RunID)
	want(t, "replay run marked", r.Replay, true)
	if replay.RunID == orig.RunID {
		t.Fatal("a replay must be a new run")
	}
}

func TestDispatcher_UnknownWebhookIsRejectedAfterGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("gone", nil)
	e.start(nil)
	ghost := *w
	ghost.Metadata.Name = "never-existed"
	d := e.deliver(&ghost, "evt", `{}`, func(d *message.Delivery) { d.ReceivedAt = time.Now().Add(-time.Minute).UTC() })
	out := e.outcome(d)
	want(t, "outcome", out.Status, message.DeliveryRejected)
	want(t, "run status", e.run(d.RunID).Status, message.StatusRejected)
	// No status is written for a webhook that does not exist: one created
	// later under that name would show this delivery's error.
	e.allAcked()
	time.Sleep(300 * time.Millisecond) // webhook status is written after the batch, in the background
	if s, err := webhookstatus.Get(context.Background(), e.js, "default", "never-existed"); err == nil && s.LastError != "" {
		t.Errorf("a missing webhook got a lastError: %q", s.LastError)
	}

	// A webhook the ingress knew a moment ago: the delivery waits for the
	// configuration to arrive instead of being rejected.
	// (Its run id is derived from its uid, as the ingress derives it.)
	fresh := ghost
	fresh.Metadata.Name, fresh.Metadata.UID = "just-created", ident.NewUID()
	d2 := e.deliver(&fresh, "evt", `{}`)
	time.Sleep(300 * time.Millisecond)
	e.hook("just-created", func(w *resource.Webhook) { w.Metadata.UID = fresh.Metadata.UID })
	want(t, "late configuration", e.outcome(d2).Status, message.DeliveryDispatched)
}

// While one batch waits (here on a publish held up on purpose, as on a
// slow JetStream ack), the next batch is handled: batches overlap, so the
// dispatcher's throughput is not one batch's round trips end to end.
func TestDispatcher_BatchesOverlap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("overlap", nil)
	slowRun := ident.RunID(w.Metadata.UID, "evt-slow", "")
	held, release := make(chan struct{}), make(chan struct{})
	var once bool
	e.start(func(d *Dispatcher) {
		d.publishFault = func(subject string) error {
			if strings.HasSuffix(subject, "."+slowRun) && !once {
				once = true
				close(held)
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
			return nil
		}
	})
	defer close(release)
	slow := e.deliver(w, "evt-slow", `{}`)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow delivery's publish was never reached")
	}
	fast := e.deliver(w, "evt-fast", `{}`)
	start := time.Now()
	testenv.Eventually(t, 5*time.Second, func() error {
		_, err := runstatus.DeliveryOutcome(context.Background(), e.js, &fast)
		return err
	})
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("the second batch waited %s for the first", waited)
	}
	if r := e.outcome(fast); r.Status != message.DeliveryDispatched {
		t.Fatalf("fast delivery: %s", r.Status)
	}
	if _, err := runstatus.DeliveryOutcome(context.Background(), e.js, &slow); err == nil {
		t.Fatal("the held batch finished while held")
	}
}

// TestDispatcher_RunRequestLostBehindItsMessageIDIsStoredAgain: JetStream
// can answer "duplicate" for a run request's message id when nothing holds
// it (in a cluster, a write lost with its leader; here, the stored request
// deleted). A redelivery must not take that answer for a stored request and
// ack: the run would never run. It stores the request again under the next
// id of a fixed series, and a later attempt finds that copy rather than
// adding a second one.
func TestDispatcher_RunRequestLostBehindItsMessageIDIsStoredAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "kv")
	w := e.hook("lost", nil)
	// The first two attempts that store a run request "crash" right after.
	// (An attempt can end earlier: a dispatcher just started may not have
	// its configuration yet, and hands the delivery back.)
	ctx := context.Background()
	s, err := e.js.Stream(ctx, bus.StreamRuns)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() uint64 {
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	var crashes atomic.Int32
	crashed := make(chan struct{}, 2)
	seam := func(d *Dispatcher) {
		var dead atomic.Bool // a crashed dispatcher handles nothing more
		d.crashAt = func(stage string) bool {
			if dead.Load() {
				return true
			}
			if stage != stagePublished || stored() == 0 || crashes.Add(1) > 2 {
				return false
			}
			dead.Store(true)
			crashed <- struct{}{}
			return true
		}
	}
	before := counterValue(mUnconfirmedDuplicates)
	first := e.start(seam)
	d := e.deliver(w, "evt-lost", `{"x":1}`)
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first attempt never stored its run request")
	}
	first.stop()
	// The stored request disappears; its message id stays in RUNS' window.
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "requests stored by the first attempt", info.State.Msgs, uint64(1))
	if err := s.DeleteMsg(ctx, info.State.LastSeq); err != nil {
		t.Fatal(err)
	}
	second := e.start(seam)
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("the second attempt never stored its run request")
	}
	second.stop()
	want(t, "requests after the second attempt", e.runsPerID()[d.RunID], 1)
	e.start(seam)
	want(t, "outcome", e.outcome(d).Status, message.DeliveryDispatched)
	// The third attempt finds its request too behind an unconfirmed id.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := counterValue(mUnconfirmedDuplicates) - before; n < 2 {
			return fmt.Errorf("%v unconfirmed duplicates counted, want 2 or more", n)
		}
		return nil
	})
	want(t, "requests of the run", e.runsPerID()[d.RunID], 1)
	rrs := e.runRequests()
	want(t, "run request's delivery", rrs[len(rrs)-1].DeliveryID, d.ID)
}

// largeBodyAckWait is the AckWait of the tests that dispatch 5.5 MB
// bodies: a batch must be handled within a quarter of it, and with the test
// suites of every module sharing two cores, decoding such a body could take
// longer than the 250 ms the other tests' AckWait leaves (the claim then
// timed out, and the batch came back, for the whole test).
const largeBodyAckWait = 8 * time.Second

// A delivery whose run request could never fit in one NATS message (a
// large body plus arguments templated from it) fails its run, with why,
// instead of being handed back for ever.
func TestDispatcher_RunRequestOverMaxPayloadFailsTheRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	var args []resource.Arg
	for i := range 24 {
		args = append(args, resource.Arg{Name: fmt.Sprintf("a%d", i), Value: "{{ .body.s }}"})
	}
	job := resource.Job{Metadata: resource.Meta{Name: "fat"}, Spec: resource.JobSpec{Command: []string{"true"}, Args: args}}
	w := e.hook("fat", nil, job)
	e.conf.AckWait = largeBodyAckWait
	e.start(nil)
	body := fmt.Sprintf(`{"s":%q,"pad":%q}`, strings.Repeat("s", 60<<10), strings.Repeat("p", 5<<20+512<<10))
	d := e.deliver(w, "evt-fat", body)
	want(t, "delivery outcome", e.outcome(d).Status, message.DeliveryRejected)
	r := e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "max_payload") {
		t.Fatalf("run error %q should say the run request is over NATS' max_payload", r.Error)
	}
	want(t, "run requests", len(e.runRequests()), 0)
}

// wantLastError waits for the webhook's lastError to mention part: the
// dispatcher writes webhook status after the batch, in the background.
func wantLastError(t *testing.T, e *env, webhook, part string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, func() error {
		s, err := webhookstatus.Get(context.Background(), e.js, "default", webhook)
		if err != nil || !strings.Contains(s.LastError, part) {
			return fmt.Errorf("lastError = %q, %v", s.LastError, err)
		}
		return nil
	})
}

// Webhook status (lastError, lastDeliveryAt) is for operators: a status
// bucket that does not answer (here, one that never opens; before the
// executor could write webhook status, writes as its NATS user, which NATS
// refused) must not hold up dispatching.
func TestDispatcher_StalledWebhookStatusDoesNotHoldBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	sjs := &gatedJS{JetStream: e.js, open: make(chan struct{})} // never opened
	job := resource.Job{Metadata: resource.Meta{Name: "strict"}, Spec: resource.JobSpec{
		Command: []string{"true"},
		Args:    []resource.Arg{{Name: "repo", Value: "{{ .body.repository.name }}"}},
	}}
	w := e.hook("strict", nil, job)
	e.start(func(d *Dispatcher) { d.status = webhookstatus.NewWriter(sjs) })
	start := time.Now()
	for i := range 6 {
		d := e.deliver(w, fmt.Sprintf("evt-%d", i), `{"zen":"ping"}`) // each fails its template: a lastError
		want(t, "outcome", e.outcome(d).Status, message.DeliveryRejected)
	}
	if d := time.Since(start); d > 8*time.Second { // 40 s when batches waited for the writes
		t.Fatalf("6 deliveries one after another took %s: batches waited for the webhook status writes", d)
	}
}

// A redelivered delivery whose run status cannot be decoded (a newer
// schema during a rolling upgrade) is handed back, later and later; it does
// not bring the dispatcher down, and other deliveries go on.
func TestDispatcher_UndecodableStatusOnResumeIsHandedBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("garbled", nil)
	other := e.hook("fine", nil)
	var failed atomic.Bool
	e.start(func(d *Dispatcher) {
		d.publishFault = func(subject string) error {
			if strings.HasPrefix(subject, "hookrun.runs.") && failed.CompareAndSwap(false, true) {
				// The first attempt fails after storing "queued"; then the
				// run's status becomes unreadable before the redelivery.
				m := nats.NewMsg(bus.StatusSubject("default", ident.RunID(w.Metadata.UID, "evt-g", "")))
				m.Data = []byte(`{"schema":"hookrun.run.v9"`)
				m.Header.Set(bus.HeaderSchema, "hookrun.run.v9")
				if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
					t.Error(err)
				}
				return errorf("injected publish failure")
			}
			return nil
		}
	})
	d := e.deliver(w, "evt-g", `{}`)
	testenv.Eventually(t, 10*time.Second, func() error {
		if !failed.Load() {
			return errors.New("the first attempt has not failed yet")
		}
		return nil
	})
	time.Sleep(2 * time.Second) // the redelivery comes after 1 s and resumes
	want(t, "next delivery", e.outcome(e.deliver(other, "evt-other", `{}`)).Status, message.DeliveryDispatched)
	// Handed back, not finished: no run request, and not acked.
	for _, rr := range e.runRequests() {
		if rr.DeliveryID == d.ID {
			t.Fatalf("the garbled delivery was dispatched: %+v", rr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending+int(info.NumPending) == 0 {
		t.Fatal("the garbled delivery was acked")
	}
}

// A run request whose size bound is over NATS' limit but whose encoding is
// not (plain arguments, no escaping to speak of) is dispatched.
func TestDispatcher_RunRequestNearMaxPayloadIsMeasured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	job := resource.Job{Metadata: resource.Meta{Name: "near"}, Spec: resource.JobSpec{Command: []string{"true"}, Args: []resource.Arg{
		{Name: "a", Value: "{{ .body.s }}"}, {Name: "b", Value: "{{ .body.s }}"},
	}}}
	w := e.hook("near", nil, job)
	e.conf.AckWait = largeBodyAckWait
	e.start(nil)
	body := fmt.Sprintf(`{"s":%q,"pad":%q}`, strings.Repeat("s", 60<<10), strings.Repeat("p", 5<<20+512<<10))
	d := e.deliver(w, "evt-near", body)
	want(t, "delivery outcome", e.outcome(d).Status, message.DeliveryDispatched)
	want(t, "run requests", len(e.runRequests()), 1)
}

// A replay is an operator's, not a call from the sender: the webhook's
// lastDeliveryAt keeps telling when the sender last called.
func TestDispatcher_ReplayDoesNotMoveLastDeliveryAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("replayed", nil)
	e.start(nil)
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	at := func(ts time.Time) func(*message.Delivery) { return func(d *message.Delivery) { d.ReceivedAt = ts } }
	lastDeliveryAt := func(want time.Time) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			s, _ := webhookstatus.Get(context.Background(), e.js, "default", w.Metadata.Name)
			if s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(want) {
				return fmt.Errorf("lastDeliveryAt %v, want %v", s.LastDeliveryAt, want)
			}
			return nil
		})
	}
	first := e.deliver(w, "evt-1", `{}`, at(t0))
	e.outcome(first)
	lastDeliveryAt(t0)
	replay := e.deliver(w, "evt-1", `{}`, at(t0.Add(20*time.Second)), func(d *message.Delivery) {
		d.ReplayOf = first.ID
		d.RunID = ident.RunID(w.Metadata.UID, "evt-1", d.ID)
	})
	e.outcome(replay)
	// Status updates are written in order: once a later call shows, the
	// replay's would have been written before it.
	e.outcome(e.deliver(w, "evt-2", `{}`, at(t0.Add(10*time.Second))))
	lastDeliveryAt(t0.Add(10 * time.Second))
}

// A delivery a later release wrote (another schema version, during a
// rolling upgrade) was accepted: it is handed back to wait for a dispatcher
// that reads it, not terminated; bytes that are no delivery at all are.
func TestDispatcher_DeliveryOfAnotherSchemaVersionWaitsCorruptOneIsTerminated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("upgrading", nil)
	e.start(nil)
	publish := func(schema, data string) {
		m := nats.NewMsg(bus.DeliverySubject("default", w.Metadata.Name, ident.NewDeliveryID()))
		m.Data = []byte(data)
		m.Header.Set(bus.HeaderSchema, schema)
		if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	publish("hookrun.delivery.v2", `{"schema":"hookrun.delivery.v2","id":["a new shape"]}`)
	publish(message.SchemaDelivery, `not json`)
	// A delivery after them is handled, so they were seen.
	e.outcome(e.deliver(w, "evt-after", `{}`))
	testenv.Eventually(t, 10*time.Second, func() error {
		c, err := e.js.Consumer(context.Background(), bus.StreamDeliveries, bus.ConsumerDispatcher)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		// The v2 delivery waits (pending or handed back); the corrupt one
		// and the good one are gone.
		if waiting := info.NumAckPending + int(info.NumPending); waiting != 1 || info.NumRedelivered+info.NumAckPending < 1 {
			return fmt.Errorf("%d deliveries waiting (ack pending %d, pending %d, redelivered %d), want the v2 one only", waiting, info.NumAckPending, info.NumPending, info.NumRedelivered)
		}
		return nil
	})
}

package executor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// putUnreadable stores a record of job that this release cannot read, as
// a newer keys may write during a rolling upgrade, and waits until cat has
// dropped the job.
func (e *xenv) putUnreadable(cat *catalog.Catalog, job *resource.Job) {
	e.t.Helper()
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, bus.BucketJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"apiVersion":"hookrun.dev/v1","kind":"Job","metadata":{"name":%q,"namespace":%q},"spec":{"command":"echo hi"}}`,
		job.Metadata.Name, job.Metadata.Namespace)
	if _, err := kv.Put(ctx, bus.ConfigKey(job.Metadata.Namespace, job.Metadata.Name), []byte(rec)); err != nil {
		e.t.Fatal(err)
	}
	testenv.Eventually(e.t, 5*time.Second, func() error {
		if _, ok := cat.Job(job.Metadata.Namespace, job.Metadata.Name); ok {
			return fmt.Errorf("the catalog still holds job %s", job.Metadata.Name)
		}
		return nil
	})
}

// staysQueued checks that the run is queued, unstarted, and still is for
// d.
func (e *xenv) staysQueued(rr message.RunRequest, d time.Duration) {
	e.t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		r, err := runstatus.Get(context.Background(), e.js, rr.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.Status != message.StatusQueued || r.Attempt != 0 {
			e.t.Fatalf("run is %s (attempt %d, %q), want still queued", r.Status, r.Attempt, r.Error)
		}
		if !time.Now().Before(end) {
			return
		}
	}
}

// A job whose record this executor cannot read (the catalog drops it, as
// if the job had been deleted) is not drained: its runs wait, queued, and
// run once a record it reads is back.
func TestExecutor_RunsOfAJobWhoseRecordCannotBeReadWait(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	r := e.start(nil)
	job := e.script("unreadable", `echo hi`)
	want(t, "first run", e.final(e.submit(job, "{}"), 10*time.Second).Status, message.StatusSucceeded)
	e.putUnreadable(r.x.cat, job)
	consumer := func() *jetstream.ConsumerInfo {
		t.Helper()
		c, err := e.js.Consumer(context.Background(), bus.StreamRuns, bus.JobConsumer(job.Metadata.Namespace, job.Metadata.Name))
		if err != nil {
			t.Fatal(err)
		}
		return c.CachedInfo()
	}
	testenv.Eventually(t, 5*time.Second, func() error { // the job's last poll is over
		if n := consumer().NumWaiting; n > 0 {
			return fmt.Errorf("%d pull requests waiting", n)
		}
		return nil
	})

	rr := e.submit(job, "{}")
	e.staysQueued(rr, 3*time.Second)
	// Not even fetched: left to an executor that reads the record.
	if info := consumer(); info.NumPending != 1 || info.NumAckPending != 0 {
		t.Fatalf("the job's consumer has %d runs waiting and %d in hand, want 1 and 0", info.NumPending, info.NumAckPending)
	}
	e.cfg.Job(*job) // as a release that reads the new record would
	got := e.final(rr, 15*time.Second)
	want(t, "status", got.Status, message.StatusSucceeded)
	want(t, "attempt", got.Attempt, 1)
}

// A run fetched as its job's record became one this executor cannot read
// is handed back, to come again later, not failed as "no longer exists".
func TestExecutor_RunOfAJobWhoseRecordCannotBeReadIsHandedBack(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("unreadable-fetched", `echo hi`)
	log := testLogger(t)
	cat := catalog.New(e.js, e.cfg.Box, log)
	x := New(e.conf, e.nc, e.js, cat, service.NewHealth("executor"), log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cat.Run(ctx) }()
	<-cat.Ready()
	e.putUnreadable(cat, job)
	cons, err := e.js.CreateOrUpdateConsumer(ctx, bus.StreamRuns, jetstream.ConsumerConfig{
		Durable: "unreadable-test", FilterSubject: bus.RunSubject(job.Metadata.Namespace, job.Metadata.Name),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	rr := e.submit(job, "{}")
	fetch := func() jetstream.Msg {
		t.Helper()
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			return m
		}
		t.Fatalf("no delivery: %v", b.Error())
		return nil
	}
	x.handle(ctx, fetch())
	e.staysQueued(rr, 0)
	// Handed back with a delay, not left to its AckWait (a minute).
	m := fetch()
	if md, _ := m.Metadata(); md == nil || md.NumDelivered != 2 {
		t.Fatalf("not handed back: %+v", md)
	}
	e.staysQueued(rr, 0)
}

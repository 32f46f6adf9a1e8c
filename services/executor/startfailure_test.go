package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// hookFor stores webhook name, bound to job, as keys does (a fresh uid).
func (e *xenv) hookFor(name string, job *resource.Job) *resource.Webhook {
	e.t.Helper()
	return e.cfg.Webhook(resource.Webhook{Metadata: resource.Meta{Name: name}, Spec: resource.WebhookSpec{
		Job: job.Metadata.Name, Auth: resource.Auth{None: &struct{}{}},
	}})
}

// from makes a run request one of webhook w's: its run id derived from
// w's uid, as the ingress derives it.
func from(w *resource.Webhook) func(*message.RunRequest) {
	return func(rr *message.RunRequest) {
		rr.Webhook = w.Metadata.Name
		rr.ID = ident.RunID(w.Metadata.UID, rr.EventID, "")
	}
}

// webhookStatus reads webhook name's status as keys does.
func (e *xenv) webhookStatus(name string) webhookstatus.Status {
	e.t.Helper()
	s, err := webhookstatus.Get(context.Background(), e.js, "default", name)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// waitLastError waits for webhook name's lastError and returns it.
func (e *xenv) waitLastError(name string) webhookstatus.Status {
	e.t.Helper()
	var s webhookstatus.Status
	testenv.Eventually(e.t, 10*time.Second, func() error {
		var err error
		if s, err = webhookstatus.Get(context.Background(), e.js, "default", name); err != nil {
			return err
		}
		if s.LastError == "" {
			return fmt.Errorf("webhook %s has no lastError", name)
		}
		return nil
	})
	return s
}

// stayWithoutLastError fails the test if one of the webhooks gets a
// lastError within a moment: what the executor would write is written
// within milliseconds of the notes written before.
func (e *xenv) stayWithoutLastError(names ...string) {
	e.t.Helper()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, n := range names {
			if s := e.webhookStatus(n); s.LastError != "" {
				e.t.Fatalf("webhook %s shows lastError %q", n, s.LastError)
			}
		}
	}
}

// A run that fails before its job starts was answered 202 long before:
// the webhook it came from shows why in its status.lastError (as Orloj
// records the detail there and Janus answers "Job failed to start"),
// prefixed with the job, and naming a secret, never its value.
func TestExecutor_AJobThatCannotStartIsItsWebhooksLastError(t *testing.T) {
	t.Parallel()
	const secretValue = "s3cr3t-9f2a"
	e := newXEnv(t)
	e.cfg.Secret("default", "nul-token", secretValue+"\x00", "", 0)
	e.cfg.Secret("default", "not-a-url", "ftp://"+secretValue, "", 0)
	e.start(nil)
	cases := []struct {
		name string
		job  resource.JobSpec
		want string // the lastError's start
	}{
		{"missing-program", resource.JobSpec{Command: []string{"/no/such/program"}},
			"job missing-program: cannot start command: fork/exec /no/such/program: no such file or directory"},
		{"missing-secret-env", resource.JobSpec{Command: []string{"true"}, SecretEnv: map[string]string{"TOKEN": "gone"}},
			"job missing-secret-env: cannot start: spec.secretEnv[TOKEN]: secret gone"},
		{"nul-secret-env", resource.JobSpec{Command: []string{"true"}, SecretEnv: map[string]string{"TOKEN": "nul-token"}},
			"job nul-secret-env: cannot start: spec.secretEnv[TOKEN]: secret nul-token holds a NUL byte"},
		{"missing-url-secret", resource.JobSpec{HTTP: &resource.HTTPAction{URLSecretRef: "gone-url"}},
			"job missing-url-secret: cannot start: spec.http.urlSecretRef: secret gone-url"},
		{"bad-url-secret", resource.JobSpec{HTTP: &resource.HTTPAction{URLSecretRef: "not-a-url"}},
			"job bad-url-secret: cannot start: spec.http.urlSecretRef: secret not-a-url does not hold an absolute http or https URL"},
		{"missing-header-secret", resource.JobSpec{HTTP: &resource.HTTPAction{URL: "http://127.0.0.1:9/hook",
			SecretHeaders: map[string]resource.SecretHeader{"Authorization": {SecretRef: "gone"}}}},
			"job missing-header-secret: cannot start: spec.http.secretHeaders[Authorization]: secret gone"},
	}
	runs := make([]message.RunRequest, len(cases))
	for i, c := range cases {
		job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: c.name}, Spec: c.job})
		runs[i] = e.submit(job, `{}`, from(e.hookFor(c.name+"-hook", job)))
	}
	for i, c := range cases {
		want(t, c.name+"'s run", e.final(runs[i], 10*time.Second).Status, message.StatusFailed)
		s := e.waitLastError(c.name + "-hook")
		if !strings.HasPrefix(s.LastError, c.want) {
			t.Errorf("%s: lastError %q, want it to start with %q", c.name, s.LastError, c.want)
		}
		if strings.Contains(s.LastError, secretValue) {
			t.Errorf("%s: lastError %q holds a secret's value", c.name, s.LastError)
		}
		if s.LastErrorAt == nil || time.Since(*s.LastErrorAt) > time.Minute {
			t.Errorf("%s: lastErrorAt %v, want now", c.name, s.LastErrorAt)
		}
	}
}

// A working directory that cannot be made fails the run before its
// command starts: the webhook says so.
func TestExecutor_AWorkingDirectoryThatCannotBeMadeIsTheWebhooksLastError(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(func(c *Config) { c.WorkDir = filepath.Join(file, "runs") })
	job := e.script("no-dir", "true")
	w := e.hookFor("no-dir-hook", job)
	want(t, "run status", e.final(e.submit(job, `{}`, from(w)), 10*time.Second).Status, message.StatusFailed)
	if s := e.waitLastError(w.Metadata.Name); !strings.HasPrefix(s.LastError, "job no-dir: cannot start: cannot create working directory: ") {
		t.Errorf("lastError %q, want the working directory named as what kept the job from starting", s.LastError)
	}
}

// A webhook made a moment before its first delivery may not be in the
// executor's catalog yet when that run fails to start: its record is read
// from the bucket, and the failure is its lastError all the same (it was
// not recorded, and the test above failed now and then on it).
func TestExecutor_AStartFailureOfAWebhookNotInTheCatalogYetIsRecorded(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.startWith(e.nc, e.js, nil, func(x *Executor) { x.catalogMisses = true })
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "new-hook-job"}, Spec: resource.JobSpec{Command: []string{"/no/such/program"}}})
	w := e.hookFor("new-hook", job)
	want(t, "run status", e.final(e.submit(job, `{}`, from(w)), 10*time.Second).Status, message.StatusFailed)
	if s := e.waitLastError(w.Metadata.Name); !strings.HasPrefix(s.LastError, "job new-hook-job: cannot start command: ") {
		t.Errorf("lastError %q, want the command that could not start", s.LastError)
	}
}

// A job that started and failed (its exit code, its timeout, an HTTP error
// answer, a cancel) is the job's own business, told by its run: its
// webhook's lastError stays empty. A run that cannot start, of another
// webhook and after them, shows that the executor writes lastErrors.
func TestExecutor_OrdinaryJobFailuresLeaveTheWebhooksLastErrorEmpty(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	answers500 := newRecorder(t, 0, 500)
	cases := []struct {
		name   string
		job    *resource.Job
		status string
		cancel bool
	}{
		{"exits-1", e.script("exits-1", "exit 1"), message.StatusFailed, false},
		{"times-out", e.script("times-out", "sleep 30", func(j *resource.Job) { j.Spec.Timeout = resource.Duration(300 * time.Millisecond) }), message.StatusTimedOut, false},
		{"answers-500", e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "answers-500"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{URL: answers500.srv.URL}}}), message.StatusFailed, false},
		{"cancelled", e.script("cancelled", "sleep 30"), message.StatusCancelled, true},
	}
	var hooks []string
	for _, c := range cases {
		w := e.hookFor(c.name+"-hook", c.job)
		hooks = append(hooks, w.Metadata.Name)
		rr := e.submit(c.job, `{}`, from(w))
		if c.cancel {
			e.waitStatus(rr, message.StatusRunning, 1)
			e.cancelRun(rr, false)
		}
		want(t, c.name+"'s run", e.final(rr, 15*time.Second).Status, c.status)
	}
	broken := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "broken"}, Spec: resource.JobSpec{Command: []string{"/no/such/program"}}})
	barrier := e.hookFor("barrier", broken)
	e.final(e.submit(broken, `{}`, from(barrier)), 10*time.Second)
	e.waitLastError(barrier.Metadata.Name)
	e.stayWithoutLastError(hooks...)
}

// gatedStatus is a JetStream whose webhook status bucket cannot be opened
// until open is closed (a status bucket that does not answer); asked is
// closed when the first write tries.
type gatedStatus struct {
	jetstream.JetStream
	open, asked chan struct{}
}

func (g *gatedStatus) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	if bucket == bus.BucketWebhookStatus {
		select {
		case <-g.asked:
		default:
			close(g.asked)
		}
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.JetStream.KeyValue(ctx, bucket)
}

// A run of a webhook deleted since it was accepted writes nothing in the
// webhook status bucket: keys purged the webhook's status with it, and a
// webhook made again under its name must not show the old one's error.
// Whether the webhook went before the run failed (gone, or made again:
// another uid, so not the uid its run id was derived from) or while the
// note waited for the write (the bucket slow).
func TestExecutor_StartFailureOfADeletedWebhooksRunIsNotRecorded(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	gate := &gatedStatus{JetStream: e.js, open: make(chan struct{}), asked: make(chan struct{})}
	r := e.startWith(e.nc, e.js, nil, func(x *Executor) { x.status = webhookstatus.NewWriter(gate) })
	broken := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "broken"}, Spec: resource.JobSpec{Command: []string{"/no/such/program"}}})
	blocker := e.hookFor("blocker", broken)
	gone := e.hookFor("gone", broken)
	remade := e.hookFor("remade", broken)
	later := e.hookFor("later", broken)

	// keys deletes a webhook, then purges its status.
	del := func(w *resource.Webhook) {
		t.Helper()
		kv, err := e.js.KeyValue(context.Background(), bus.BucketWebhooks)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(context.Background(), bus.ConfigKey("default", w.Metadata.Name)); err != nil {
			t.Fatal(err)
		}
		if err := webhookstatus.Clear(context.Background(), e.js, "default", w.Metadata.Name); err != nil {
			t.Fatal(err)
		}
	}
	// inCatalog waits until the executor's catalog has name with uid ("":
	// has no such webhook).
	inCatalog := func(name, uid string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			if w, ok := r.x.cat.Webhook("default", name); (!ok && uid == "") || (ok && w.Metadata.UID == uid) {
				return nil
			}
			return fmt.Errorf("the executor's catalog does not have webhook %s as %q yet", name, uid)
		})
	}

	// Before the run fails: deleted, or deleted and made again.
	del(gone)
	del(remade)
	remadeAgain := e.hookFor("remade", broken)
	inCatalog("gone", "")
	inCatalog("remade", remadeAgain.Metadata.UID)

	// The writer takes blocker's note and waits on the bucket.
	e.final(e.submit(broken, `{}`, from(blocker)), 10*time.Second)
	select {
	case <-gate.asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the executor never wrote blocker's lastError")
	}
	// Their runs fail meanwhile; later's note waits behind blocker's.
	for _, w := range []*resource.Webhook{gone, remade, later} {
		want(t, w.Metadata.Name+"'s run", e.final(e.submit(broken, `{}`, from(w)), 10*time.Second).Status, message.StatusFailed)
	}
	// While later's note waits: deleted, and made again.
	del(later)
	laterAgain := e.hookFor("later", broken)
	inCatalog("later", laterAgain.Metadata.UID)

	close(gate.open)
	if s := e.waitLastError(blocker.Metadata.Name); !strings.HasPrefix(s.LastError, "job broken: cannot start command: ") {
		t.Errorf("blocker's lastError %q", s.LastError)
	}
	e.stayWithoutLastError("gone", "remade", "later")
}

// The executor writes the webhook status as its own NATS user
// (deploy/nats/users.conf), which must be allowed to, and reads a webhook
// its catalog lacks from the bucket's leader.
func TestExecutor_StartFailureIsWrittenAsTheExecutorsNATSUser(t *testing.T) {
	t.Parallel()
	for _, misses := range []bool{false, true} {
		t.Run(map[bool]string{false: "webhook in the catalog", true: "webhook read from the bucket"}[misses], func(t *testing.T) {
			t.Parallel()
			startFailureAsExecutor(t, misses)
		})
	}
}

func startFailureAsExecutor(t *testing.T, catalogMisses bool) {
	n := testenv.StartSecuredNATS(t)
	e := newXEnvOn(t, n) // keys' part (the layout, the configuration) as admin
	nc, err := bus.Connect(bus.ConnectOptions{URL: n.URL, User: "executor", Password: n.Users["executor"], Name: "executor-under-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e.startWith(nc, js, nil, func(x *Executor) { x.catalogMisses = catalogMisses })
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "missing-program"}, Spec: resource.JobSpec{Command: []string{"/no/such/program"}}})
	w := e.hookFor("hook", job)
	want(t, "run status", e.final(e.submit(job, `{}`, from(w)), 10*time.Second).Status, message.StatusFailed)
	if s := e.waitLastError(w.Metadata.Name); !strings.HasPrefix(s.LastError, "job missing-program: cannot start command: ") {
		t.Errorf("lastError %q", s.LastError)
	}
	for _, v := range n.Violations() {
		t.Errorf("permission violation: %s", v)
	}
}

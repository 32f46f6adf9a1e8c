// Package executor runs jobs. It consumes run requests from RUNS through
// one durable consumer per job (MaxAckPending = the job's concurrency, so
// the limit holds across every executor), runs each under its timeout in its
// own process group, captures bounded output, and stores status events in
// STATUS. A run is acked only after its final status is stored, so an
// executor that dies mid-run hands it back and it runs again as attempt 2.
package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// Config is the executor configuration.
type Config struct {
	service.Common
	// MaxConcurrent caps the runs this instance executes at once.
	MaxConcurrent int
	// WorkDir is where per-run working directories are made.
	WorkDir string
	// AckWait is how long a run may go without an in-progress ack before
	// JetStream hands it to another executor.
	AckWait time.Duration
	// ShutdownGrace is how long running jobs may finish on shutdown before
	// they are stopped and handed back.
	ShutdownGrace time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL of a run's group.
	KillGrace time.Duration
	// MaxOutput bounds the captured output (the tail is kept).
	MaxOutput int
	// CallbackBackoff is the delay before each retry of a failing
	// callback; after the last one the callback is given up.
	CallbackBackoff []time.Duration
	// CallbackConcurrency caps the callbacks this instance sends at once.
	CallbackConcurrency int
	// CallbackTimeout bounds one callback request.
	CallbackTimeout time.Duration
	// DenyPrivateEgress refuses connections of HTTP jobs and callbacks to
	// loopback, private, link-local and other non-public addresses,
	// checked at connect time (HOOKRUN_DENY_PRIVATE_EGRESS).
	DenyPrivateEgress bool
	// JobUser, when set, is the user (and group) command jobs run as, and
	// own their run directory: another user than the executor's cannot
	// read its environment (HOOKRUN_SECRET_KEY, the NATS password) through
	// /proc/<pid>/environ. The executor must be allowed to switch (root).
	JobUser *JobUser
}

// JobUser is a numeric uid and gid.
type JobUser struct{ UID, GID uint32 }

// ParseJobUser reads "uid" or "uid:gid" (numeric; the gid defaults to the
// uid).
func ParseJobUser(s string) (*JobUser, error) {
	us, gs, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("HOOKRUN_JOB_USER %q: want a numeric uid or uid:gid", s)
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return nil, fmt.Errorf("HOOKRUN_JOB_USER %q: want a numeric uid or uid:gid", s)
		}
	}
	return &JobUser{UID: uint32(uid), GID: uint32(gid)}, nil
}

// DefaultCallbackBackoff is the retry schedule of a failing callback:
// about a day in all.
var DefaultCallbackBackoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour}

// ConfigFromEnv reads the executor configuration.
func ConfigFromEnv() (Config, error) {
	c, err := service.CommonFromEnv("127.0.0.1:8083")
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Common: c, WorkDir: service.Env("WORK_DIR", os.TempDir())}
	if cfg.MaxConcurrent, err = service.EnvPositiveInt("EXECUTOR_MAX_CONCURRENT", 32); err != nil {
		return cfg, err
	}
	if cfg.AckWait, err = service.EnvPositiveDuration("EXECUTOR_ACK_WAIT", 30*time.Second); err != nil {
		return cfg, err
	}
	if cfg.ShutdownGrace, err = service.EnvPositiveDuration("EXECUTOR_SHUTDOWN_GRACE", 20*time.Second); err != nil {
		return cfg, err
	}
	if cfg.KillGrace, err = service.EnvPositiveDuration("EXECUTOR_KILL_GRACE", 5*time.Second); err != nil {
		return cfg, err
	}
	if cfg.MaxOutput, err = service.EnvPositiveInt("EXECUTOR_MAX_OUTPUT", 64<<10); err != nil {
		return cfg, err
	}
	if cfg.CallbackConcurrency, err = service.EnvPositiveInt("CALLBACK_CONCURRENCY", 16); err != nil {
		return cfg, err
	}
	if cfg.CallbackTimeout, err = service.EnvPositiveDuration("CALLBACK_TIMEOUT", 15*time.Second); err != nil {
		return cfg, err
	}
	if cfg.DenyPrivateEgress, err = service.EnvBool("DENY_PRIVATE_EGRESS", false); err != nil {
		return cfg, err
	}
	if cfg.DenyPrivateEgress {
		for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
			if os.Getenv(v) != "" {
				// Through a proxy, the check would see the proxy's
				// address only: every target would pass (or none).
				return cfg, fmt.Errorf("HOOKRUN_DENY_PRIVATE_EGRESS with %s set: connections go to the proxy, whose address alone could be checked; filter at the proxy and unset HOOKRUN_DENY_PRIVATE_EGRESS, or unset %s", v, v)
			}
		}
	}
	if u := service.Env("JOB_USER", ""); u != "" {
		if !jobUserSupported {
			// Jobs would run as the executor's user, unsaid.
			return cfg, fmt.Errorf("HOOKRUN_JOB_USER is set, but jobs can run as another user on Linux only (this is %s): unset it, or run the executor on Linux", runtime.GOOS)
		}
		if cfg.JobUser, err = ParseJobUser(u); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// jobUserSupported: command jobs can run as another user (setCredential)
// here. A variable for tests.
var jobUserSupported = runtime.GOOS == "linux"

// CheckCredentialFiles refuses a credential file (HOOKRUN_<name>_FILE)
// that cfg's command jobs could read: the point of a file is to keep the
// credential out of their reach, and jobs run untrusted commands. The
// executor's own binary calls it; `hookrun dev`, whose jobs run as the
// developer who holds those files anyway, does not.
func CheckCredentialFiles(cfg Config) error {
	for _, name := range service.SecretFileVars {
		if f := service.Env(name+"_FILE", ""); f != "" {
			if err := secretFileHiddenFromJobs(name, f, cfg.JobUser); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckWorkDir refuses, when command jobs run as another user
// (HOOKRUN_JOB_USER), a work directory that user could change: the
// executor (root) makes each run's directory there and writes and chowns
// in it by name, so a job able to rename entries in it (its owner, or
// anyone who may write to it unless it is sticky) could swap another run's
// new directory for a link, and have the executor write the sender's
// payload into, or give the jobs' user, any file it points at. The same
// holds for every directory on the way to it. The executor's own binary
// calls it; `hookrun dev`, whose jobs run as the developer, does not.
func CheckWorkDir(cfg Config) error {
	u := cfg.JobUser
	if u == nil {
		return nil // jobs run as the executor's user: they can do all it does
	}
	dir := cmp.Or(cfg.WorkDir, os.TempDir())
	dirs, err := resolvedDirs(dir)
	if err != nil {
		return fmt.Errorf("HOOKRUN_WORK_DIR: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("HOOKRUN_WORK_DIR: %w", err)
	}
	for _, d := range append(dirs, real) {
		if err := keptFromJobs(d, u); err != nil {
			return fmt.Errorf("HOOKRUN_WORK_DIR %s: %w: make it (and the directories above it) root's, or the executor's user's, with mode 0711 (the jobs' user needs only to pass through it to its run's directory); a sticky directory such as /tmp passes", dir, err)
		}
	}
	return nil
}

// keptFromJobs refuses directory d when the jobs' user u could change what
// is in it: it is u's, u may write to it (through its group or as others)
// and it is not sticky, or it has an ACL. One on a read-only mount passes.
func keptFromJobs(d string, u *JobUser) error {
	fi, err := os.Stat(d)
	if err != nil {
		return err
	}
	uid, gid, ok := fileOwner(fi)
	if !ok {
		return fmt.Errorf("cannot tell who may change %s here", d)
	}
	if readOnlyMount(d) {
		return nil
	}
	perm, sticky := fi.Mode().Perm(), fi.Mode()&os.ModeSticky != 0
	if uid == u.UID || (!sticky && (perm&0o002 != 0 || (gid == u.GID && perm&0o020 != 0))) || hasACL(d) {
		return fmt.Errorf("the directory %s (mode %s, owner %d:%d) could be changed by the jobs' user %d:%d (HOOKRUN_JOB_USER)", d, fi.Mode().String(), uid, gid, u.UID, u.GID)
	}
	return nil
}

// secretFileHiddenFromJobs refuses a credential file that jobs running as
// u could read, or make readable. Jobs running as the executor's own user
// read whatever it reads. Jobs running as u: the file must not be u's (its
// owner may chmod it), nor readable through its group or by others, nor
// carry an ACL (which could grant u what the mode does not); where its
// owner cannot be read, it is refused too.
func secretFileHiddenFromJobs(name, path string, u *JobUser) error {
	if u == nil {
		return fmt.Errorf("HOOKRUN_%s_FILE: command jobs run as the executor's own user and could read %s: set HOOKRUN_JOB_USER (jobs as another user), or give HOOKRUN_%s instead", name, path, name)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("HOOKRUN_%s_FILE: %w", name, err)
	}
	uid, gid, ok := fileOwner(fi)
	if !ok {
		return fmt.Errorf("HOOKRUN_%s_FILE: cannot tell who may read %s here: give HOOKRUN_%s instead", name, path, name)
	}
	perm := fi.Mode().Perm()
	if perm&0o004 != 0 || u.UID == 0 || uid == u.UID || (gid == u.GID && perm&0o040 != 0) {
		return fmt.Errorf("HOOKRUN_%s_FILE: %s (mode %04o, owner %d:%d) is readable by the jobs' user %d:%d (HOOKRUN_JOB_USER), or theirs: make it the executor's user's, readable by it only (chmod 0400; Kubernetes: defaultMode 0400)", name, path, perm, uid, gid, u.UID, u.GID)
	}
	if hasACL(path) {
		return fmt.Errorf("HOOKRUN_%s_FILE: %s has an access control list, which may let the jobs' user %d:%d read it: remove it (setfacl -b)", name, path, u.UID, u.GID)
	}
	return dirsKeptFromJobs(name, path, u)
}

// dirsKeptFromJobs refuses a credential file in a directory the jobs' user
// u could change, much as OpenSSH's StrictModes does: a job could put a file
// of its own (or a link to one) in its place, read at the executor's next
// start. Every directory the path's resolution passes through counts, from
// / to the file, through each link on the way (resolvedDirs): none may be
// u's, nor writable by u through its group or by others unless sticky (as
// /tmp is: only a file's owner may then replace it), nor carry an ACL; a
// directory on a read-only mount cannot be changed and passes.
func dirsKeptFromJobs(name, path string, u *JobUser) error {
	dirs, err := resolvedDirs(path)
	if err != nil {
		return fmt.Errorf("HOOKRUN_%s_FILE: %w", name, err)
	}
	for _, d := range dirs {
		if err := keptFromJobs(d, u); err != nil {
			return fmt.Errorf("HOOKRUN_%s_FILE: %w, on the way to %s: they could put another file in its place; keep credential files where every directory is neither theirs nor writable by them (sticky ones aside), nor has an ACL, such as a Docker or Kubernetes secret mount (or give HOOKRUN_%s instead)", name, err, path, name)
		}
	}
	return nil
}

// resolvedDirs returns every directory the resolution of path passes
// through, link by link (a link is replaced by whoever may change the
// directory it is in): the directories above each link, and above the file
// it ends at. Each is a real directory (no link in it).
func resolvedDirs(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for links := 0; ; {
		comps := strings.Split(strings.TrimPrefix(filepath.Clean(abs), "/"), "/")
		cur := "/"
		add(cur)
		next := ""
		for i, c := range comps {
			p := filepath.Join(cur, c)
			fi, err := os.Lstat(p)
			if err != nil {
				return nil, err
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				if links++; links > 40 {
					return nil, fmt.Errorf("%s: too many links", path)
				}
				t, err := os.Readlink(p)
				if err != nil {
					return nil, err
				}
				if !filepath.IsAbs(t) {
					t = filepath.Join(cur, t)
				}
				next = filepath.Join(append([]string{t}, comps[i+1:]...)...)
				break
			}
			if i < len(comps)-1 {
				cur = p
				add(cur)
			}
		}
		if next == "" {
			return dirs, nil
		}
		abs = next
	}
}

// Executor is the service.
type Executor struct {
	left leftovers // processes ended runs left outside their group

	cfg    Config
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	cat    *catalog.Catalog
	health *service.Health
	slots  chan struct{}
	// idleRunners hands a run to a goroutine that ran one before and
	// waits for another (goRun).
	idleRunners chan func()
	h           handles
	// stopping is set once the shutdown has started: a run ending then
	// has its leftovers killed before it is handed back (runCommand).
	stopping atomic.Bool
	// jobClient sends HTTP jobs; each request is bounded by its job's
	// timeout through its context, not by a client-wide one.
	jobClient *http.Client
	// callbackClient sends callbacks.
	callbackClient *http.Client
	// callbackAttempts counts callbacks' failed attempts (nil until it
	// could be opened: NATS' count of deliveries stands in).
	attemptsMu       sync.Mutex
	callbackAttempts jetstream.KeyValue
	// status writes the notes of runs that could not start their job
	// (noteStartFailure) into their webhooks' status, off the run path.
	status *webhookstatus.Writer
	notes  *webhookstatus.Notes

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // run id -> stops the run
	// owned holds the runs a handler here is working on; the channel
	// closes when it is done.
	owned map[string]chan struct{}
	// outputs holds the runs marked running here and not yet acked or
	// handed back, with their commands' output (snapshot.go).
	outputs map[string]*tail

	// beforeStart, a test seam (nil in production), is called just before
	// a run is marked running: a test stalls it there as a stalling NATS
	// would.
	beforeStart func(runID string)
	// afterRunning and beforeFinal, test seams, are called once a run's
	// "running" is stored, before its command starts, and once it has
	// ended, before its final status is stored.
	afterRunning, beforeFinal func(runID string)
	// statusRetry is the first wait between attempts to store a final
	// status (1 s when zero; tests shorten it).
	statusRetry time.Duration
	// loseRetryAck, a test seam, skips the ack of a run request whose
	// retry was scheduled, as a lost ack or a crash would.
	loseRetryAck bool
	// afterJobsPass, a test seam (nil in production), is called at the end
	// of each periodic pass of manageJobs (backlog gauges, drained loops
	// ended, orphaned consumers drained): a test that checks nothing
	// happened waits for passes, not for the clock.
	afterJobsPass func()
	// catalogMisses, a test seam, makes noteStartFailure and callbacks
	// find no webhook in the catalog, as for one made a moment before
	// its first run.
	catalogMisses bool
}

// New builds an executor.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, cat *catalog.Catalog, health *service.Health, log *slog.Logger) *Executor {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 32
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 5 * time.Second
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = 64 << 10
	}
	// Output kept beyond what a snapshot answer can hold could never
	// leave the executor whole: a status record holding it is cut too.
	if mp := maxPayloadOf(nc); mp > 0 {
		if b := maxOutputWithin(mp); b > 0 && cfg.MaxOutput > b {
			log.Warn("HOOKRUN_EXECUTOR_MAX_OUTPUT is over what NATS' max_payload lets a run's output take: bounded to it", "max_output", cfg.MaxOutput, "max_payload", mp, "bounded_to", b)
			cfg.MaxOutput = b
		}
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 20 * time.Second
	}
	if len(cfg.CallbackBackoff) == 0 {
		cfg.CallbackBackoff = DefaultCallbackBackoff
	}
	if cfg.CallbackConcurrency <= 0 {
		cfg.CallbackConcurrency = 16
	}
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = 15 * time.Second
	}
	mCapacity.Set(float64(cfg.MaxConcurrent))
	x := &Executor{
		cfg: cfg, log: log, nc: nc, js: js, cat: cat, health: health,
		slots:          make(chan struct{}, cfg.MaxConcurrent),
		idleRunners:    make(chan func()),
		jobClient:      &http.Client{Transport: egressTransport(cfg.DenyPrivateEgress), CheckRedirect: sameOriginRedirect},
		callbackClient: &http.Client{Transport: egressTransport(cfg.DenyPrivateEgress), Timeout: cfg.CallbackTimeout, CheckRedirect: noRedirect},
		running:        map[string]context.CancelCauseFunc{},
		owned:          map[string]chan struct{}{},
		outputs:        map[string]*tail{},
		status:         webhookstatus.NewWriter(js),
		notes:          webhookstatus.NewNotes(),
	}
	// Jobs running as another user may swap a link in for a directory of
	// their run's: no chmod walk then (chmodMayHelp).
	x.left.noChmod = cfg.JobUser != nil
	health.Add("config", func(context.Context) error {
		select {
		case <-cat.Ready():
			return nil
		default:
			return errors.New("configuration not loaded yet")
		}
	})
	return x
}

// FromDeps builds the executor on opened connections.
func FromDeps(cfg Config, d *service.Deps) *Executor {
	return New(cfg, d.NC, d.JS, catalog.New(d.JS, d.Box, d.Log), d.Health, d.Log)
}

// Run executes runs until ctx ends. Then it stops fetching, lets running
// jobs finish for ShutdownGrace, stops the rest and hands them back (NAK)
// so another executor runs them.
func (x *Executor) Run(ctx context.Context, ready func(net.Addr)) error {
	if err := notDumpable(); err != nil {
		x.log.Warn("cannot make the process' /proc files root's: jobs running as this user can read its environment", "err", err)
	}
	if u := x.cfg.JobUser; u != nil {
		x.log.Info("command jobs run as another user", "uid", u.UID, "gid", u.GID)
	}
	x.sweep()
	g, gctx := errgroup.WithContext(ctx)
	stopFlag := context.AfterFunc(gctx, func() { x.stopping.Store(true) })
	defer stopFlag()
	g.Go(func() error { return x.cat.Run(gctx) })
	g.Go(func() error {
		e := service.NewEcho()
		e.Use(middleware.Recover())
		ops := x.health.MountOn(e, x.cfg.OpsAddr)
		g.Go(func() error { return service.ServeOps(gctx, x.cfg.OpsAddr, ops, x.log) })
		return service.Serve(gctx, service.HTTPServer(x.cfg.HTTPAddr, e), 5*time.Second, ready)
	})
	sub, err := x.nc.Subscribe(cancelWildcard, x.onCancel)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	snap, err := x.nc.Subscribe(bus.OutputSnapshotAll, x.onSnapshot)
	if err != nil {
		return err
	}
	defer func() { _ = snap.Unsubscribe() }()
	// The leftovers scan goes on through the shutdown grace, until the run
	// handlers have returned (see leftovers.run).
	leftCtx, runsDone := context.WithCancel(context.WithoutCancel(gctx))
	g.Go(func() error {
		x.left.run(leftCtx, killLeftovers, func(n int) {
			x.log.Warn("killed processes that ended runs left outside their process group", "killed", n)
		})
		return nil
	})
	g.Go(func() error {
		defer runsDone()
		return x.manageJobs(gctx)
	})
	// Until the run handlers have returned too: a run that fails to start
	// during the shutdown grace still shows on its webhook.
	g.Go(func() error { return x.notes.Write(leftCtx, x.status, x.cat, x.log) })
	g.Go(func() error { return x.deliverCallbacks(gctx) })
	g.Go(func() error { return x.moveDueRetries(gctx) })
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

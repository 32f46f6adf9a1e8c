package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// devNull is /dev/null opened once, read-only: every run's stdin.
var devNull = sync.OnceValues(func() (*os.File, error) { return os.Open(os.DevNull) })

// maxEnvPayload is the longest environment entry ("name=value") the
// payload or the headers are passed in (resource.MaxEnvEntry).
const maxEnvPayload = resource.MaxEnvEntry

// Files of a run's working directory.
const (
	runDirPrefix = "hookrun-run-"
	payloadName  = ".hookrun-payload"
	headersName  = ".hookrun-headers" // only when the headers do not fit a variable
)

// runCommand runs a command job in a fresh working directory, in its own
// process group, with the job input contract as its environment. The
// timeout (or a cancel, or the shutdown grace running out) sends SIGTERM to
// the whole group, then SIGKILL after KillGrace; when the command ends, any
// process it left in its group is killed and the directory removed.
func (x *Executor) runCommand(ctx context.Context, job *resource.Job, rr *message.RunRequest, attempt int, log *slog.Logger) outcome {
	secretEnv := make(map[string]string, len(job.Spec.SecretEnv))
	for _, k := range slices.Sorted(maps.Keys(job.Spec.SecretEnv)) {
		v, err := x.secretValue(rr.Namespace, job.Spec.SecretEnv[k])
		if err != nil {
			return notStarted("spec.secretEnv[" + k + "]: " + err.Error())
		}
		if strings.IndexByte(v, 0) >= 0 {
			return notStarted("spec.secretEnv[" + k + "]: secret " + job.Spec.SecretEnv[k] + " holds a NUL byte, which no environment variable can")
		}
		secretEnv[k] = v
	}
	// The directory's name records its owner before the start, so no
	// process of the run goes unrecorded (see sweep.go).
	markers := runMarkers(job, rr.ID, attempt)
	dir, named, err := makeRunDir(x.cfg.WorkDir, markers)
	if err != nil {
		return notStarted("cannot create working directory: " + err.Error())
	}
	// What finds the processes the run leaves outside its group.
	leftMarkers := append(slices.Clip(markers), deliveryMarker(job, rr.DeliveryID))
	defer x.cleanUpRunDir(dir, named, leftMarkers, log)
	payloadFile := filepath.Join(dir, payloadName)
	if err := x.writeRunFile(payloadFile, rr.Payload); err != nil {
		return notStarted("cannot write payload file: " + err.Error())
	}

	env, headers := Environment(job, rr, attempt, dir, payloadFile, secretEnv)
	if n := execSize(env) + execSize(job.Spec.Command); n > execRoom {
		// Linux would refuse the start ("argument list too long") on
		// every attempt: say why instead.
		return notStarted(fmt.Sprintf("the run's command and environment come to %d bytes even without the payload and headers variables, over the %d Linux starts a program with: the job's arguments (each a variable of up to 64 KiB) and variables are too large together; read large data from the payload file", n, execRoom))
	}
	if headers != nil {
		if err := x.writeRunFile(filepath.Join(dir, headersName), headers); err != nil {
			return notStarted("cannot write headers file: " + err.Error())
		}
	}
	if u := x.cfg.JobUser; u != nil {
		if err := os.Chown(dir, int(u.UID), int(u.GID)); err != nil {
			return notStarted("cannot give the working directory to the job's user: " + err.Error())
		}
	}
	cmd := exec.Command(job.Spec.Command[0], job.Spec.Command[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = procAttr()
	if u := x.cfg.JobUser; u != nil {
		setCredential(cmd.SysProcAttr, u.UID, u.GID)
	}
	out := newTail(x.cfg.MaxOutput, x.nc, bus.OutputSubject(rr.ID), attempt, rr.DeliveryID)
	out.secrets = maskable(slices.Collect(maps.Values(secretEnv))...)
	cmd.Stdout, cmd.Stderr = out, out
	// Answers for the run with its output from here on; handleRun removes
	// it once the run's message is acked or handed back.
	x.addOutput(rr.ID, out)
	if f, err := devNull(); err == nil {
		cmd.Stdin = f // what os/exec gives a nil Stdin, without opening it per run
	}
	// A process the command left running in the background that still
	// holds its output must not hold the run: Wait gives up on the output
	// after this, and the group is killed below.
	cmd.WaitDelay = time.Second

	if ctx.Err() != nil {
		// Cancelled (or the shutdown came) after the cancel-mark read and
		// before the start: the command never runs.
		return outcome{status: message.StatusFailed, err: "stopped", interrupted: true}
	}
	if err := cmd.Start(); err != nil {
		o := notStarted("cannot start command: " + err.Error())
		o.output = out.String()
		return o
	}
	pgid := cmd.Process.Pid
	x.left.started(pgid)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()

	timeout := time.NewTimer(jobTimeout(job))
	defer timeout.Stop()
	var o outcome
	var werr error
	select {
	case werr = <-waitErr:
	case <-timeout.C:
		o.status, o.err = message.StatusTimedOut, "timed out after "+jobTimeout(job).String()
		werr = x.stopGroup(pgid, waitErr)
	case <-ctx.Done():
		o.interrupted = true
		werr = x.stopGroup(pgid, waitErr)
	}
	// Leave nothing behind: whatever the command started in its group goes
	// too, and what it moved out of its group is found by its markers.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	x.left.add(pgid, leftMarkers...)
	if x.stopping.Load() {
		// The run may be handed back and run again elsewhere as soon as
		// this returns, and the executor is going: what it moved out of
		// its group goes now, not at the next scan.
		if n := x.left.killNow(leftMarkers...); n > 0 {
			log.Warn("killed processes the run left outside its process group", "killed", n)
		}
	}
	out.Flush()

	if errors.Is(werr, exec.ErrWaitDelay) {
		werr = nil // the command exited 0; only a leftover process held its output
	}
	o.output, o.lines = out.String(), out.Lines()
	code := exitCode(werr)
	o.exitCode = &code
	switch {
	case o.status != "":
	case o.interrupted:
		o.status, o.err = message.StatusFailed, "stopped"
	case werr == nil:
		o.status = message.StatusSucceeded
	default:
		o.status, o.err = message.StatusFailed, werr.Error()
	}
	log.Debug("command ended", "status", o.status, "exit", code)
	return o
}

// cleanUpRunDir removes the run's directory at its end. A process the run
// moved out of its group (setsid) that writes in the directory makes the
// removal fail ("directory not empty"), and the scan that kills it comes
// up to a second later: the directory would stay. So when the removal
// finds entries made as it went, the run's leftovers are killed at once
// and the removal tried again. Only then: finding them costs a scan of
// /proc, more than the rest of a short run's clean-up. One that makes the
// directory anew after it was removed is left to the scan, which removes
// it again (leftovers.watchDir).
func (x *Executor) cleanUpRunDir(dir string, named bool, leftMarkers []string, log *slog.Logger) {
	err := removeRunDir(dir, named, x.left.noChmod)
	if writtenMeanwhile(err) {
		if n := x.left.killNow(leftMarkers...); n > 0 {
			log.Warn("killed processes the run left outside its process group, writing in its directory", "killed", n)
		}
		err = removeRunDir(dir, named, x.left.noChmod)
	}
	if err != nil {
		log.Error("cannot remove the run's directory", "dir", dir, "err", err)
	}
	x.left.watchDir(dir, named, leftMarkers...)
}

// writtenMeanwhile tells whether a removal failed on entries made in a
// directory while it was being emptied.
func writtenMeanwhile(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// stopGroup sends SIGTERM to the group, then SIGKILL after KillGrace.
func (x *Executor) stopGroup(pgid int, waitErr <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(x.cfg.KillGrace)
	defer t.Stop()
	select {
	case err := <-waitErr:
		return err
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-waitErr
	}
}

// exitCode is the command's exit code; a command killed by a signal gets
// the shell's 128 + signal number.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// Environment is the job input contract (DESIGN.md): only these variables,
// never the executor's own environment, which holds its credentials. The
// payload is in the environment only when it fits in one variable and has
// no NUL byte (which no environment can carry); it is always in the file.
// The headers' JSON is in <PREFIX>_WEBHOOK_HEADERS when it fits in one
// variable; when it does not (a sender can send up to the ingress' header
// limit), the variable is left out, <PREFIX>_WEBHOOK_HEADERS_FILE names a
// file in dir, and the bytes for it are returned for the caller to write:
// too large a variable would make the start itself fail ("argument list too
// long"), a run failed by what the sender chose to send.
//
// secretEnv holds the values of the job's spec.secretEnv, read when the run
// starts; they go where the job's own variables go.
func Environment(job *resource.Job, rr *message.RunRequest, attempt int, dir, payloadFile string, secretEnv map[string]string) (env []string, headersFile []byte) {
	p := job.Spec.EnvPrefix
	if p == "" {
		p = "HOOKRUN"
	}
	headers := headersJSON(rr.Header)
	headersVar := p + "_WEBHOOK_HEADERS=" + string(headers)
	if len(headersVar) > maxEnvPayload {
		headersVar, headersFile = p+"_WEBHOOK_HEADERS_FILE="+filepath.Join(dir, headersName), headers
	}
	env = []string{
		"PATH=" + envOr("PATH", "/usr/local/bin:/usr/bin:/bin"),
		"HOME=" + dir,
		"LANG=C.UTF-8",
	}
	// The job's own variables may replace PATH, HOME and LANG, never the
	// input contract after them (os/exec keeps the last of duplicates):
	// the keys service refuses such names, and jobs stored before it did
	// cannot hide the payload or the run id the sweep finds processes by.
	for _, k := range slices.Sorted(maps.Keys(job.Spec.Env)) {
		env = append(env, k+"="+job.Spec.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(secretEnv)) {
		env = append(env, k+"="+secretEnv[k])
	}
	env = append(env,
		p+"_WEBHOOK_PAYLOAD_FILE="+payloadFile,
		p+"_WEBHOOK_EVENT_ID="+noNUL(rr.EventID),
		p+"_WEBHOOK_RECEIVED_AT="+rr.ReceivedAt.UTC().Format(time.RFC3339Nano),
		p+"_WEBHOOK_SOURCE="+rr.Source,
	)
	headersAt := len(env)
	env = append(env,
		headersVar,
		p+"_WEBHOOK_NAME="+rr.Webhook,
		p+"_WEBHOOK_DELIVERY_ID="+rr.DeliveryID,
		p+"_JOB_NAME="+rr.Job,
	)
	args := argsOf(job, rr)
	for _, a := range job.Spec.Args {
		env = append(env, p+"_ARG_"+resource.EnvName(a.Name)+"="+noNUL(args[a.Name]))
	}
	// The limit is on the whole "name=value" string.
	payloadVar := p + "_ARG_WEBHOOK_PAYLOAD="
	withPayload := len(payloadVar)+len(rr.Payload) <= maxEnvPayload && bytes.IndexByte(rr.Payload, 0) < 0
	// All of it must fit what Linux starts a program with: many
	// arguments filled from the body beside large variables of the job's
	// may not. The payload variable goes first (the payload is in its file
	// always), then the headers go to their file.
	markers := runMarkers(job, rr.ID, attempt)
	room := execRoom - execSize(job.Spec.Command) - execSize(markers)
	if withPayload && execSize(env)+execSize([]string{payloadVar})+len(rr.Payload) > room {
		withPayload = false
	}
	if headersFile == nil && execSize(env) > room {
		env[headersAt], headersFile = p+"_WEBHOOK_HEADERS_FILE="+filepath.Join(dir, headersName), headers
	}
	if withPayload {
		env = append(env, payloadVar+string(rr.Payload))
	}
	// The run markers last: nothing can replace them.
	env = append(env, markers...)
	return env, headersFile
}

// execRoom is what Linux lets a program start with, its arguments and
// environment together, counted by execSize: 2 MiB (a quarter of the
// default 8 MiB stack limit), less room for what is counted otherwise.
const execRoom = 2<<20 - 16<<10

// execSize is what Linux counts of strs when it starts a program: each
// string, its NUL and its pointer.
func execSize(strs []string) int {
	n := 0
	for _, s := range strs {
		n += len(s) + 1 + 8
	}
	return n
}

// argsOf is the run's arguments: those the dispatcher resolved, and for an
// argument the job has gained since (while the run waited in the queue or
// out a retry's backoff) its default, as for any argument without a value.
func argsOf(job *resource.Job, rr *message.RunRequest) map[string]string {
	var args map[string]string
	for _, a := range job.Spec.Args {
		if _, ok := rr.Args[a.Name]; ok || a.Default == nil {
			continue
		}
		if args == nil {
			args = maps.Clone(rr.Args)
			if args == nil {
				args = map[string]string{}
			}
		}
		args[a.Name] = *a.Default
	}
	if args == nil {
		return rr.Args
	}
	return args
}

// noNUL drops NUL bytes, which would make the whole environment invalid.
func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// runMarkers are the environment entries that only this attempt's
// processes carry (<PREFIX>_RUN_ID and <PREFIX>_RUN_ATTEMPT, in this
// order); the sweep of a dead executor's runs kills by them.
func runMarkers(job *resource.Job, runID string, attempt int) []string {
	p := job.Spec.EnvPrefix
	if p == "" {
		p = "HOOKRUN"
	}
	return []string{p + "_RUN_ID=" + runID, p + "_RUN_ATTEMPT=" + strconv.Itoa(attempt)}
}

// deliveryMarker is the environment variable that names the run's
// delivery: with the run markers, it tells a run's processes from those of
// a later delivery's run under the same run id.
func deliveryMarker(job *resource.Job, deliveryID string) string {
	p := job.Spec.EnvPrefix
	if p == "" {
		p = "HOOKRUN"
	}
	return p + "_WEBHOOK_DELIVERY_ID=" + deliveryID
}

// writeRunFile writes one of the run's input files, owned by the job's
// user when there is one.
func (x *Executor) writeRunFile(name string, data []byte) error {
	if err := os.WriteFile(name, data, 0o600); err != nil {
		return err
	}
	if u := x.cfg.JobUser; u != nil {
		return os.Chown(name, int(u.UID), int(u.GID))
	}
	return nil
}

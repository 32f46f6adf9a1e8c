package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// maxEnvPayload is the largest payload passed in an environment variable;
// Linux refuses a single variable over 128 KiB (MAX_ARG_STRLEN). Larger
// payloads are only in the file named by <PREFIX>_WEBHOOK_PAYLOAD_FILE.
const maxEnvPayload = 128<<10 - 64

// runCommand runs a command job in a fresh working directory, in its own
// process group, with the job input contract as its environment. The
// timeout sends SIGTERM to the whole group, then SIGKILL after KillGrace.
func (x *Executor) runCommand(ctx context.Context, job *resource.Job, rr *message.RunRequest, attempt int, log *slog.Logger) outcome {
	dir, err := os.MkdirTemp(x.cfg.WorkDir, "hookrun-run-")
	if err != nil {
		return outcome{status: message.StatusFailed, err: "cannot create working directory: " + err.Error()}
	}
	defer os.RemoveAll(dir)
	payloadFile := filepath.Join(dir, ".hookrun-payload")
	if err := os.WriteFile(payloadFile, rr.Payload, 0o600); err != nil {
		return outcome{status: message.StatusFailed, err: "cannot write payload file: " + err.Error()}
	}

	cmd := exec.Command(job.Spec.Command[0], job.Spec.Command[1:]...)
	cmd.Dir = dir
	cmd.Env = Environment(job, rr, attempt, dir, payloadFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := newTail(x.cfg.MaxOutput, x.nc, bus.OutputSubject(rr.ID))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second // a grandchild holding stdout must not hold the run

	if err := cmd.Start(); err != nil {
		return outcome{status: message.StatusFailed, err: "cannot start command: " + err.Error(), output: out.String()}
	}
	pgid := cmd.Process.Pid
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()

	timeout := time.NewTimer(jobTimeout(job))
	defer timeout.Stop()
	timedOut := false
	var werr error
	select {
	case werr = <-waitErr:
	case <-timeout.C:
		timedOut = true
		werr = x.stopGroup(pgid, waitErr)
	case <-ctx.Done():
		werr = x.stopGroup(pgid, waitErr)
	}
	// Leave nothing behind: whatever the command started in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	out.Flush()

	o := outcome{output: out.String()}
	code := exitCode(werr)
	o.exitCode = &code
	switch {
	case timedOut:
		o.status, o.err = message.StatusTimedOut, "timed out after "+jobTimeout(job).String()
	case werr == nil:
		o.status = message.StatusSucceeded
	default:
		o.status, o.err = message.StatusFailed, werr.Error()
	}
	log.Debug("command ended", "status", o.status, "exit", code)
	return o
}

// stopGroup sends SIGTERM to the group, then SIGKILL after KillGrace.
func (x *Executor) stopGroup(pgid int, waitErr <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-waitErr:
		return err
	case <-time.After(x.cfg.KillGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-waitErr
	}
}

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
// never the executor's own environment, which holds its credentials.
func Environment(job *resource.Job, rr *message.RunRequest, attempt int, dir, payloadFile string) []string {
	p := job.Spec.EnvPrefix
	if p == "" {
		p = "HOOKRUN"
	}
	headers, _ := json.Marshal(rr.Header)
	env := []string{
		"PATH=" + envOr("PATH", "/usr/local/bin:/usr/bin:/bin"),
		"HOME=" + dir,
		"LANG=C.UTF-8",
		p + "_WEBHOOK_PAYLOAD_FILE=" + payloadFile,
		p + "_WEBHOOK_EVENT_ID=" + rr.EventID,
		p + "_WEBHOOK_RECEIVED_AT=" + rr.ReceivedAt.UTC().Format(time.RFC3339Nano),
		p + "_WEBHOOK_SOURCE=" + rr.Source,
		p + "_WEBHOOK_HEADERS=" + string(headers),
		p + "_WEBHOOK_NAME=" + rr.Webhook,
		p + "_WEBHOOK_DELIVERY_ID=" + rr.DeliveryID,
		p + "_JOB_NAME=" + rr.Job,
		p + "_RUN_ID=" + rr.ID,
		p + "_RUN_ATTEMPT=" + strconv.Itoa(attempt),
	}
	if len(rr.Payload) <= maxEnvPayload {
		env = append(env, p+"_ARG_WEBHOOK_PAYLOAD="+string(rr.Payload))
	}
	for _, a := range job.Spec.Args {
		env = append(env, p+"_ARG_"+resource.EnvName(a.Name)+"="+rr.Args[a.Name])
	}
	for k, v := range job.Spec.Env {
		env = append(env, k+"="+v)
	}
	return env
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// tail keeps the last max bytes of output and publishes complete lines to
// the run's live output subject for `hookrun runs watch`.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped bool
	line    bytes.Buffer
	nc      *nats.Conn
	subject string
}

func newTail(max int, nc *nats.Conn, subject string) *tail {
	return &tail{max: max, nc: nc, subject: subject}
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.dropped = true
	}
	if t.nc != nil {
		for _, b := range p {
			t.line.WriteByte(b)
			if b == '\n' || t.line.Len() >= 4096 {
				_ = t.nc.Publish(t.subject, t.line.Bytes())
				t.line.Reset()
			}
		}
	}
	return len(p), nil
}

// Flush publishes a last partial line.
func (t *tail) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nc != nil && t.line.Len() > 0 {
		_ = t.nc.Publish(t.subject, t.line.Bytes())
		t.line.Reset()
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return "[…output truncated…]\n" + string(t.buf)
	}
	return string(t.buf)
}

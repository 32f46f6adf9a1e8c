package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// executorBinary builds hookrun-executor once per test binary; TestMain
// removes it.
func executorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		var out []byte
		out, buildErr = exec.Command("go", "env", "GOWORK").Output()
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if buildErr != nil || root == "." {
			t.Skipf("no go.work to build the executor from (%v)", buildErr)
		}
		dir, err := os.MkdirTemp("", "hookrun-executor-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hookrun-executor")
		cmd := exec.Command("go", "build", "-o", binPath, "./services/executor/cmd/hookrun-executor")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestExecutor_KilledMidRunIsRedeliveredAsAttempt2(t *testing.T) {
	t.Parallel()
	bin := executorBinary(t)
	e := newXEnv(t)
	job := e.script("survivor", `if [ "$HOOKRUN_RUN_ATTEMPT" = 1 ]; then
  echo $$ > "$OUT/shell.pid"; sleep 300 & echo $! > "$OUT/orphan.pid"; wait
fi
echo "attempt $HOOKRUN_RUN_ATTEMPT"`, func(j *resource.Job) { j.Spec.Concurrency = 1 })

	proc := exec.Command(bin)
	proc.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOOKRUN_NATS_URL=" + e.nats.URL,
		"HOOKRUN_SECRET_KEY=" + e.cfg.SecretKey,
		"HOOKRUN_HTTP_ADDR=127.0.0.1:0",
		"HOOKRUN_WORK_DIR=" + e.conf.WorkDir,
		"HOOKRUN_EXECUTOR_ACK_WAIT=" + e.conf.AckWait.String(),
		"HOOKRUN_LOG_LEVEL=warn",
	}
	proc.Stderr = os.Stderr
	testenv.DieWithTest(proc)
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })

	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusRunning, 1)
	shell, orphan := e.pidOf("shell.pid"), e.pidOf("orphan.pid")
	if err := proc.Process.Kill(); err != nil { // kill -9
		t.Fatal(err)
	}
	_ = proc.Wait()
	waitGone(t, shell, "the run's shell (parent-death signal)")
	if gone(orphan) {
		t.Fatal("the orphaned grandchild is expected to survive its executor until the sweep")
	}
	want(t, "run directories left by the dead executor", len(runDirs(t, e.conf.WorkDir)), 1)

	// The next executor on the same WorkDir sweeps what the dead one left,
	// and gets the run again once its AckWait has passed.
	e.start(nil)
	waitGone(t, orphan, "the dead executor's orphaned grandchild")
	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 2)
	want(t, "output", r.Output, "attempt 2\n")
	h := e.history(rr)
	want(t, "final statuses", finals(h), 1)
	var running []int
	for _, s := range h {
		if s.Status == message.StatusRunning {
			running = append(running, s.Attempt)
		}
	}
	if len(running) != 2 || running[0] != 1 || running[1] != 2 {
		t.Fatalf("running statuses by attempt %v, want [1 2]", running)
	}
	want(t, "run directories left", len(runDirs(t, e.conf.WorkDir)), 0)
}

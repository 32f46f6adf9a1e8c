package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/secretbox"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// workspaceRoot is the directory of go.work.
func workspaceRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOWORK: %v %s", err, out)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinaries builds the four services and the CLI once per test binary;
// TestMain removes them.
func buildBinaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := workspaceRoot(t)
		binDir, buildErr = os.MkdirTemp("", "hookrun-e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"./services/ingress/cmd/hookrun-ingress", "./services/dispatcher/cmd/hookrun-dispatcher", "./services/executor/cmd/hookrun-executor", "./services/keys/cmd/hookrun-keys", "./cmd/hookrun"} {
			cmd := exec.Command("go", "build", "-o", binDir+"/", pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return testenv.FreeAddr(t)
}

// proc is a service started as its own process.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
	mu   *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Logs returns what the process wrote so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stack is the four services as separate processes on one NATS and Redis.
type Stack struct {
	t       testing.TB
	Procs   map[string]*proc
	Token   string
	env     []string
	bin     string
	Ingress string
	Keys    string
	// natsUsers, when set, gives each service its own NATS user (its name)
	// and password.
	natsUsers map[string]string
}

// StartStack builds the binaries and starts the four services.
func StartStack(t testing.TB, natsURL, redisURL string, extraEnv ...string) *Stack {
	t.Helper()
	return startStack(t, natsURL, nil, redisURL, extraEnv...)
}

// StartStackOn starts the four services on n, each connected as its own
// NATS user when n runs the project's configuration (StartSecuredNATS).
func StartStackOn(t testing.TB, n *testenv.NATS, redisURL string, extraEnv ...string) *Stack {
	t.Helper()
	return startStack(t, n.URL, n.Users, redisURL, extraEnv...)
}

func startStack(t testing.TB, natsURL string, users map[string]string, redisURL string, extraEnv ...string) *Stack {
	t.Helper()
	bin := buildBinaries(t)
	s := &Stack{t: t, Procs: map[string]*proc{}, Token: "e2e-admin-token", bin: bin, natsUsers: users}
	s.env = []string{
		"HOOKRUN_NATS_URL=" + natsURL,
		"HOOKRUN_REDIS_URL=" + redisURL,
		"HOOKRUN_SECRET_KEY=" + secretbox.NewKey(),
		"HOOKRUN_ADMIN_TOKENS=" + s.Token,
		"HOOKRUN_LOG_LEVEL=debug",
		"HOOKRUN_EXECUTOR_KILL_GRACE=1s",
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + t.TempDir(),
	}
	s.env = append(s.env, extraEnv...)
	for _, name := range []string{"keys", "ingress", "dispatcher", "executor"} {
		s.Start(name)
	}
	s.Ingress = "http://" + s.Procs["ingress"].addr
	s.Keys = "http://" + s.Procs["keys"].addr
	for name := range s.Procs {
		s.WaitReady(name)
	}
	return s
}

// Start starts (or restarts, on a new address) one service.
func (s *Stack) Start(name string, extraEnv ...string) {
	s.t.Helper()
	addr := freeAddr(s.t)
	if old, ok := s.Procs[name]; ok && old.addr != "" {
		addr = old.addr
	}
	cmd := exec.Command(filepath.Join(s.bin, "hookrun-"+name))
	cmd.Env = append(append([]string{}, s.env...), "HOOKRUN_HTTP_ADDR="+addr)
	if pw, ok := s.natsUsers[name]; ok {
		cmd.Env = append(cmd.Env, "HOOKRUN_NATS_USER="+name, "HOOKRUN_NATS_PASSWORD="+pw)
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &proc{name: name, cmd: cmd, addr: addr, logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stdout, cmd.Stderr = lockedWriter{p.mu, p.logs}, lockedWriter{p.mu, p.logs}
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.Procs[name] = p
	s.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if s.t.Failed() {
			logs := p.Logs()
			if dir := os.Getenv("HOOKRUN_TEST_LOG_DIR"); dir != "" { // the whole log, for a local look
				f := filepath.Join(dir, strings.ReplaceAll(s.t.Name(), "/", "_")+"-"+name+".log")
				if err := os.WriteFile(f, []byte(logs), 0o644); err == nil {
					s.t.Logf("--- %s log written to %s", name, f)
				}
			}
			s.t.Logf("--- %s warnings and errors ---\n%s", name, tail(warnings(logs), 12000))
			s.t.Logf("--- %s logs ---\n%s", name, tail(logs, 4000))
		}
	})
}

// warnings keeps the WARN and ERROR lines of a service's JSON log: what a
// failed test needs first, however long the run's log grew.
func warnings(logs string) string {
	var b strings.Builder
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Kill sends SIGKILL to a service and waits for it to die.
func (s *Stack) Kill(name string) {
	p := s.Procs[name]
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// Stop sends SIGTERM and returns the exit error (nil = clean exit).
func (s *Stack) Stop(name string) error {
	p := s.Procs[name]
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.cmd.Wait()
}

// WaitReady polls /readyz of a service.
func (s *Stack) WaitReady(name string) {
	s.t.Helper()
	p := s.Procs[name]
	testenv.Eventually(s.t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s not ready: %s", name, b)
		}
		return nil
	})
}

// API calls the keys service and decodes the JSON answer into out.
func (s *Stack) API(method, path string, body any, out any) int {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.Keys+path, r)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// Run is the API's view of a run (the fields the tests read).
type Run struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Attempt        int    `json:"attempt"`
	ExitCode       *int   `json:"exitCode"`
	Output         string `json:"output"`
	Error          string `json:"error"`
	WebhookPayload string `json:"webhook_payload"`
	WebhookEventID string `json:"webhook_event_id"`
}

// WaitRun polls GET /v1/runs/{id} until the run has status want.
func (s *Stack) WaitRun(id, want string, total time.Duration) Run {
	s.t.Helper()
	var r Run
	testenv.Eventually(s.t, total, func() error {
		r = Run{}
		code := s.API("GET", "/v1/runs/"+id, nil, &r)
		if code != 200 || r.Status != want {
			return fmt.Errorf("run %s: HTTP %d status %q (want %q) error %q", id, code, r.Status, want, r.Error)
		}
		return nil
	})
	return r
}

func job(name string, command ...string) map[string]any {
	return map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Job", "metadata": map[string]any{"name": name}, "spec": map[string]any{"command": command, "timeout": "30s"}}
}

func webhook(name, job string, auth map[string]any) map[string]any {
	return map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Webhook", "metadata": map[string]any{"name": name}, "spec": map[string]any{"job": job, "auth": auth}}
}

// Deliver POSTs body to the webhook's endpoint and decodes the answer.
func (s *Stack) Deliver(path string, body string, hdr map[string]string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.Ingress+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestE2E_DeliveryBecomesRunAcrossProcesses is the walking skeleton: an HTTP
// call travels ingress → DELIVERIES → dispatcher → RUNS → executor → STATUS
// in four separate processes on a real NATS and a real Redis.
func TestE2E_DeliveryBecomesRunAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts processes")
	}
	// The project's own NATS configuration: each service connects as its
	// own user, allowed only its subjects; the whole flow works within them.
	n := testenv.StartSecuredNATS(t)
	s := StartStackOn(t, n, testenv.RedisURL(t))
	t.Cleanup(func() {
		if v := n.Violations(); len(v) > 0 {
			t.Errorf("NATS permission violations during the flow:\n%s", strings.Join(v, "\n"))
		}
	})

	if code := s.API("PUT", "/v1/jobs/echo", job("echo", "/bin/sh", "-c", `echo "got:$HOOKRUN_ARG_WEBHOOK_PAYLOAD"`), nil); code != 201 {
		t.Fatalf("PUT job: %d", code)
	}
	if code := s.API("PUT", "/v1/jobs/fail", job("fail", "/bin/sh", "-c", "echo failing; exit 7"), nil); code != 201 {
		t.Fatalf("PUT job fail: %d", code)
	}
	var wh struct {
		Status struct{ EndpointPath string } `json:"status"`
	}
	if code := s.API("PUT", "/v1/webhooks/echo", webhook("echo", "echo", map[string]any{"none": map[string]any{}}), &wh); code != 201 || wh.Status.EndpointPath == "" {
		t.Fatalf("PUT webhook: %d %+v", code, wh)
	}
	var whFail struct {
		Status struct{ EndpointPath string } `json:"status"`
	}
	s.API("PUT", "/v1/webhooks/fail", webhook("fail", "fail", nil), &whFail)

	var code int
	var ans map[string]any
	// The ingress picks the webhook up through its KV watch.
	testenv.Eventually(t, 5*time.Second, func() error {
		code, ans = s.Deliver(wh.Status.EndpointPath, `{"message":"hello e2e"}`, nil)
		if code != 202 {
			return fmt.Errorf("deliver: %d %v", code, ans)
		}
		return nil
	})
	if ans["accepted"] != true || ans["duplicate"] != false || ans["status"] != "queued" || ans["executionId"] == "" {
		t.Fatalf("answer %v", ans)
	}
	r := s.WaitRun(ans["executionId"].(string), "succeeded", 20*time.Second)
	if !strings.Contains(r.Output, `got:{"message":"hello e2e"}`) {
		t.Fatalf("the job did not see the payload: output %q", r.Output)
	}
	if r.ExitCode == nil || *r.ExitCode != 0 || r.WebhookPayload != `{"message":"hello e2e"}` {
		t.Fatalf("run %+v", r)
	}

	testenv.Eventually(t, 5*time.Second, func() error {
		code, ans = s.Deliver(whFail.Status.EndpointPath, `{}`, nil)
		if code != 202 {
			return fmt.Errorf("deliver: %d %v", code, ans)
		}
		return nil
	})
	r = s.WaitRun(ans["executionId"].(string), "failed", 20*time.Second)
	if r.ExitCode == nil || *r.ExitCode != 7 || !strings.Contains(r.Output, "failing") {
		t.Fatalf("failed run %+v", r)
	}

	// Graceful shutdown: every service exits cleanly on SIGTERM.
	for _, name := range []string{"ingress", "dispatcher", "executor", "keys"} {
		if err := s.Stop(name); err != nil {
			t.Errorf("%s did not exit cleanly: %v\n%s", name, err, tail(s.Procs[name].Logs(), 2000))
		}
	}
}

package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The export line hookrun dev prints is all the CLI needs to reach it: with
// the ingress on another address than the default, hookrun send with only
// those variables set reaches this ingress.
func TestDev_ExportLineSetsEveryURLTheCLINeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hookrun dev in this process")
	}
	for _, v := range []string{"HOOKRUN_API_URL", "HOOKRUN_INGRESS_URL", "HOOKRUN_ADMIN_TOKEN", "HOOKRUN_NAMESPACE", "HOOKRUN_ADMIN_TOKENS", "HOOKRUN_SECRET_KEY", "HOOKRUN_REDIS_URL"} {
		t.Setenv(v, "")
	}
	t.Setenv("HOOKRUN_LOG_LEVEL", "warn")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	writes := &writeLog{w: pw}
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, devOptions{dataDir: t.TempDir(), ingressAddr: "127.0.0.1:0", keysAddr: "127.0.0.1:0",
			dispatcherAddr: "127.0.0.1:0", executorAddr: "127.0.0.1:0", natsPort: -1}, writes)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("hookrun dev did not stop")
		}
	})

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	var ingress, export string
	metricsAt := map[string]string{} // service: its /metrics URL
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("hookrun dev stopped before it was ready")
			}
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "ingress":
				ingress = f[1]
				metricsAt["ingress"] = f[1] + "/metrics"
			case len(f) == 3 && f[0] == "keys" && f[1] == "API":
				metricsAt["keys"] = f[2] + "/metrics"
			case len(f) == 2 && (f[0] == "dispatcher" || f[0] == "executor"):
				metricsAt[f[0]] = f[1]
			case len(f) > 1 && f[0] == "export":
				export = l
			case strings.HasPrefix(l, "Ready."):
				break wait
			}
		case <-deadline:
			t.Fatal("hookrun dev not ready after 60s")
		}
	}
	go func() {
		for range lines { // keep the pipe flowing
		}
	}()
	// The banner is one write: a service's log line cannot split it.
	if !writes.oneHolds("Hookrun is running", "export HOOKRUN_API_URL", "Trigger the sample job", "Ready. Ctrl-C stops.") {
		t.Fatal("the banner was written in pieces")
	}
	if ingress == "" || ingress == defaultIngressURL {
		t.Fatalf("ingress %q: want one on a random port", ingress)
	}
	exported := map[string]string{}
	for _, kv := range strings.Fields(export)[1:] {
		k, v, _ := strings.Cut(kv, "=")
		exported[k] = v
		t.Setenv(k, v)
	}
	if exported["HOOKRUN_INGRESS_URL"] != ingress {
		t.Fatalf("the export line %q does not set HOOKRUN_INGRESS_URL=%s", export, ingress)
	}
	// The flags' defaults are read from the environment when the commands
	// are built: a new root sees the exported variables.
	r := runCLI("send", "hello", "-d", `{"message":"hi"}`, "--wait", "--timeout", "30s")
	if r.Code != codeOK || !strings.Contains(r.Stdout, "hello job got") {
		t.Fatalf("send with only the exported variables: %s", r)
	}
	// The sample applies again without a warning (its job reads the
	// payload file, not the variable a large body would leave unset).
	for _, kind := range []string{"job", "webhook"} {
		got := runCLI("get", kind, "hello", "-o", "yaml")
		applied := runCLI("apply", "-f", writeFile(t, t.TempDir(), kind+".yaml", got.Stdout))
		if got.Code != codeOK || applied.Code != codeOK || strings.Contains(applied.Stderr, "Warning") {
			t.Fatalf("the sample %s applied again: %s\n%s", kind, got, applied)
		}
	}
	checkDevMetricsAreEachServicesOwn(t, metricsAt)
}

// checkDevMetricsAreEachServicesOwn: the four services of hookrun dev share
// one process and its metrics registry, yet each address serves only its
// own service's metrics, so a Prometheus scraping the four as four jobs
// counts each series once.
func checkDevMetricsAreEachServicesOwn(t *testing.T, metricsAt map[string]string) {
	t.Helper()
	own := map[string]string{ // a family each service has once a delivery ran
		"ingress": "hookrun_ingress_requests_total", "dispatcher": "hookrun_dispatcher_deliveries_total",
		"executor": "hookrun_executor_runs_total", "keys": "hookrun_keys_requests_total",
	}
	for svc, url := range metricsAt {
		res, err := http.Get(url)
		if err != nil {
			t.Fatalf("%s metrics: %v", svc, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		text := string(body)
		if !strings.Contains(text, own[svc]+"{") {
			t.Errorf("%s (%s) does not serve its own %s", svc, url, own[svc])
		}
		if !strings.Contains(text, `hookrun_ready{service="`+svc+`"} 1`) {
			t.Errorf("%s does not serve its own hookrun_ready", svc)
		}
		for other, family := range own {
			if other == svc {
				continue
			}
			if strings.Contains(text, "hookrun_"+other+"_") {
				t.Errorf("%s serves the %s's metrics (%s…)", svc, other, family)
			}
			if strings.Contains(text, `service="`+other+`"`) {
				t.Errorf("%s serves a series of the %s", svc, other)
			}
		}
		if !strings.Contains(text, "go_goroutines ") {
			t.Errorf("%s does not serve the process' go_goroutines", svc)
		}
	}
	if len(metricsAt) != 4 {
		t.Errorf("found the metrics addresses of %v in the dev output, want all four", metricsAt)
	}
}

// A second `hookrun dev` on a data directory in use is refused with what
// to do, before it starts a NATS of its own on the same store.
func TestDev_DataDirInUseIsRefused(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another hookrun dev") || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("second lock: %v, want refused naming --data-dir", err)
	}
	err = runDev(context.Background(), devOptions{dataDir: dir}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use by another hookrun dev") {
		t.Fatalf("runDev on a locked directory: %v", err)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}

// An admin.token file that holds nothing (a first start cut short) gets a
// token made anew; an HOOKRUN_ADMIN_TOKENS that names none is refused with
// what to do, before anything starts (before, both panicked once the
// services had started).
func TestDev_NoAdminTokenIsMadeOrRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, made, err := persisted("HOOKRUN_TEST_UNSET_TOKENS", dir, "admin.token", newToken)
	if err != nil || !made || !strings.HasPrefix(tok, "hra_") {
		t.Fatalf("empty admin.token: %q made=%v err=%v, want a new token", tok, made, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "admin.token")); strings.TrimSpace(string(b)) != tok {
		t.Fatalf("admin.token now holds %q, want %q", b, tok)
	}

	t.Setenv("HOOKRUN_ADMIN_TOKENS", " , ")
	err = runDev(context.Background(), devOptions{dataDir: t.TempDir()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no admin token in HOOKRUN_ADMIN_TOKENS") {
		t.Fatalf("HOOKRUN_ADMIN_TOKENS naming no token: %v", err)
	}
}

// writeLog passes writes on and keeps each one.
type writeLog struct {
	w      io.Writer
	mu     sync.Mutex
	writes []string
}

func (l *writeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writes = append(l.writes, string(p))
	l.mu.Unlock()
	return l.w.Write(p)
}

// oneHolds reports whether a single write held every one of parts.
func (l *writeLog) oneHolds(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.writes {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}

package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, devOptions{dataDir: t.TempDir(), ingressAddr: "127.0.0.1:0", keysAddr: "127.0.0.1:0",
			dispatcherAddr: "127.0.0.1:0", executorAddr: "127.0.0.1:0", natsPort: -1}, pw)
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

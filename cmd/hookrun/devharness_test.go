package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// devServer is `hookrun dev` started by a test as its own process, on free
// ports, with the URLs and admin token read from what it prints.
type devServer struct {
	t       *testing.T
	bin     string
	API     string
	Ingress string
	Token   string
	out     *testenv.Buffer
}

// startDev builds hookrun (once per test binary) and starts `hookrun dev`.
func startDev(t *testing.T) *devServer {
	t.Helper()
	if testing.Short() {
		t.Skip("builds hookrun and starts hookrun dev")
	}
	bin := filepath.Join(buildBinaries(t), "hookrun")
	data := t.TempDir()
	cmd := exec.Command(bin, "dev", "--data-dir", data,
		"--ingress-addr", "127.0.0.1:0", "--keys-addr", "127.0.0.1:0",
		"--dispatcher-addr", "127.0.0.1:0", "--executor-addr", "127.0.0.1:0", "--no-sample")
	// A clean environment: no HOOKRUN_* of the developer's shell leaks in.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + data, "TMPDIR=" + t.TempDir(), "HOOKRUN_LOG_LEVEL=warn"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	cmd.Stderr = logs
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devServer{t: t, bin: bin, out: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- hookrun dev output ---\n%s", tail(logs.String(), 6000))
		}
	})

	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var err error = errors.New("hookrun dev exited before it was ready")
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "ingress":
				d.Ingress = f[1]
			case len(f) == 3 && f[0] == "keys" && f[1] == "API":
				d.API = f[2]
			case len(f) == 3 && f[0] == "Admin" && f[1] == "token:":
				d.Token = f[2]
			case strings.HasPrefix(line, "Ready."):
				err = nil
				if d.API == "" || d.Ingress == "" || d.Token == "" {
					err = fmt.Errorf("could not read the URLs and token from: %s", logs.String())
				}
				ready <- err
				_, _ = io.Copy(logs, stdout)
				return
			}
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("hookrun dev not ready after 60s:\n%s", logs.String())
	}
	return d
}

// cliResult is what one hookrun invocation did.
type cliResult struct {
	Stdout string
	Stderr string
	Code   int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// run runs the hookrun CLI against this dev server.
func (d *devServer) run(args ...string) cliResult {
	d.t.Helper()
	return d.runWith(nil, "", args...)
}

// runWith runs hookrun with extra environment variables and stdin.
func (d *devServer) runWith(env []string, stdin string, args ...string) cliResult {
	d.t.Helper()
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"HOOKRUN_API_URL=" + d.API, "HOOKRUN_ADMIN_TOKEN=" + d.Token, "HOOKRUN_INGRESS_URL=" + d.Ingress,
	}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("hookrun %v: %v", args, err)
	}
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// ok runs hookrun and fails the test unless it exits 0.
func (d *devServer) ok(args ...string) string {
	d.t.Helper()
	r := d.run(args...)
	if r.Code != 0 {
		d.t.Fatalf("hookrun %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// expectCode runs hookrun and fails the test unless it exits with code and
// its error is one line on stderr containing msg.
func (d *devServer) expectCode(code int, msg string, args ...string) cliResult {
	d.t.Helper()
	r := d.run(args...)
	checkCode(d.t, r, code, msg, args)
	return r
}

func checkCode(t *testing.T, r cliResult, code int, msg string, args []string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("hookrun %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	if code != 0 && code != codeRunFailed {
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "hookrun: ") {
			t.Fatalf("hookrun %s: want one error line on stderr, got %q", strings.Join(args, " "), r.Stderr)
		}
	}
	if !strings.Contains(r.Stderr, msg) {
		t.Fatalf("hookrun %s: stderr %q does not contain %q", strings.Join(args, " "), r.Stderr, msg)
	}
}

// okJSON runs hookrun (with -o json among args) and decodes its output.
func (d *devServer) okJSON(out any, args ...string) {
	d.t.Helper()
	s := d.ok(args...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		d.t.Fatalf("hookrun %s: not JSON: %v\n%s", strings.Join(args, " "), err, s)
	}
}

// writeFile writes a file in a temporary directory and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lineWith returns the first line of s containing sub, or "".
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// afterColon returns what follows the last ": " of a line.
func afterColon(line string) string {
	i := strings.LastIndex(line, ": ")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(line[i+2:])
}

package executor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunAsInit_Helper is the process TestRunAsInit_ReapsOrphansAndPassesSignalsOn
// runs as PID 1 of a PID namespace of its own (RunAsInit), and, started again
// by it, the executor under it: that one leaves an orphan (as a job's
// `cmd &` would), then exits 42 on SIGTERM.
func TestRunAsInit_Helper(t *testing.T) {
	switch {
	case os.Getenv(initChildEnv) != "":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		if err := exec.Command("/bin/sh", "-c", "(sleep 0.2 &) ; exit 0").Run(); err != nil {
			os.Exit(3)
		}
		select {
		case <-term:
			os.Exit(42)
		case <-time.After(30 * time.Second):
			os.Exit(4)
		}
	case os.Getenv("HOOKRUN_TEST_RUN_AS_INIT") != "":
		code, ran := RunAsInit()
		if !ran {
			os.Exit(5)
		}
		os.Exit(code)
	}
}

// An executor that is its container's PID 1 is an init: the processes its
// jobs leave behind, re-parented to it, are reaped (Go reaps only the
// children it started: they stayed zombies until the pid limit made every
// job's start fail); SIGTERM reaches the executor, and the init exits as
// the executor did.
func TestRunAsInit_ReapsOrphansAndPassesSignalsOn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunAsInit_Helper$")
	cmd.Env = append(os.Environ(), "HOOKRUN_TEST_RUN_AS_INIT=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	init := cmd.Process.Pid
	// The executor under the init, and its orphan's end.
	var zombies []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		children, z := childrenOf(init)
		zombies = z
		if len(children) == 1 && len(z) == 0 && time.Since(deadline.Add(-10*time.Second)) > 1500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("under the init after 10s: children %v, zombies %v; want the executor alone", children, zombies)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A job running as the executor's user stops it: the init continues it.
	children, _ := childrenOf(init)
	executor := children[0]
	if err := syscall.Kill(executor, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the init looks every second at least
	if st := stateOf(executor); st == "T" || st == "" {
		t.Fatalf("the executor 2.5s after a SIGSTOP: state %q; want it continued", st)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 42 {
		t.Fatalf("the init ended with %v; want exit status 42, the executor's on SIGTERM", err)
	}
}

// childrenOf lists the processes whose parent is pid, and which of them are
// zombies.
func childrenOf(pid int) (children, zombies []int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		children = append(children, p)
		if f[0] == "Z" {
			zombies = append(zombies, p)
		}
	}
	return children, zombies
}

// stateOf is process pid's state letter (R, S, T, Z...), "" if it is gone.
func stateOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

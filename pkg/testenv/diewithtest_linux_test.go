package testenv

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process started with DieWithTest is killed by the kernel when the
// process that started it dies without cleaning up: here a helper (this
// test binary again) starts a sleep with it, prints its pid and is killed.
func TestDieWithTest_TheChildDiesWithItsParent(t *testing.T) {
	if os.Getenv("TESTENV_DIEWITHTEST_HELPER") == "1" {
		child := exec.Command("sleep", "60")
		DieWithTest(child)
		if err := child.Start(); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(strconv.Itoa(child.Process.Pid) + "\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestDieWithTest_TheChildDiesWithItsParent$", "-test.count=1")
	helper.Env = append(os.Environ(), "TESTENV_DIEWITHTEST_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		_ = helper.Process.Kill()
		t.Fatalf("helper printed %q", buf[:n])
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the child is not running: %v", err)
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	// The child is the helper's, re-parented on its death and killed by
	// the kernel: reaped by whoever adopts it, so only its state can be
	// looked at; a zombie counts as dead.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) || zombie(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child %d outlived its parent by 5 s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

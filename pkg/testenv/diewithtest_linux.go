package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithTest has the kernel kill cmd's process when the test binary that
// starts it dies without its clean-up (go test's -timeout, a kill): a
// server a test started must not outlive it, holding its port and CPU
// through the tests that come after (make test, then compose-test in CI).
// Call it before cmd.Start. Not for a process meant to outlive its parent.
func DieWithTest(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

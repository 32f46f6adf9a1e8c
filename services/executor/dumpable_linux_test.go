package executor

import (
	"syscall"
	"testing"
)

// A running executor is not dumpable: its /proc files, its environment with
// HOOKRUN_SECRET_KEY and the NATS password among them, are root's, so a job
// running as the executor's own (non-root) user cannot read them.
func TestExecutor_ProcessIsNotDumpable(t *testing.T) {
	e := newXEnv(t)
	e.start(nil)
	d, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_DUMPABLE, 0, 0)
	if errno != 0 {
		t.Skip("prctl:", errno)
	}
	if d != 0 {
		t.Fatalf("PR_GET_DUMPABLE = %d after the executor started, want 0", d)
	}
}

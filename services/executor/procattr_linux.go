package executor

import "syscall"

// procAttr puts a command in its own process group, so that a timeout or a
// cancel reaches everything it started, and has the kernel kill it should
// the executor die (its group is swept at the next start; see sweep).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

package main

import "syscall"

// benchChildAttr makes the kernel stop a process under test when the bench
// dies without its deferred clean-up (a SIGPIPE from `| head`, a kill).
func benchChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

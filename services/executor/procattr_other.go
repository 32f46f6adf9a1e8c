//go:build !linux

package executor

import "syscall"

// procAttr puts a command in its own process group, so that a timeout or a
// cancel reaches everything it started.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

//go:build !linux

package executor

import (
	"os"
	"syscall"
)

// procAttr puts a command in its own process group, so that a timeout or a
// cancel reaches everything it started.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// setCredential is Linux only: HOOKRUN_JOB_USER is refused elsewhere
// (ConfigFromEnv).
func setCredential(*syscall.SysProcAttr, uint32, uint32) {}

func notDumpable() error { return nil }

func fileOwner(os.FileInfo) (uid, gid uint32, ok bool) { return 0, 0, false }

func hasACL(string) bool { return false }

func readOnlyMount(string) bool { return false }

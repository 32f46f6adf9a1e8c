//go:build !linux

package executor

import (
	"errors"
	"os"
	"syscall"
	"time"
)

func processStart(int) string { return "" }

// changeTime is fi's modification time where no change time is read.
func changeTime(fi os.FileInfo) time.Time { return fi.ModTime() }

// pidNamespace: PID namespaces are Linux's; "" takes every owner for this
// system's.
func pidNamespace() string { return "" }

// processAlive reports whether pid exists.
func processAlive(pid int, _ string) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killMarked needs /proc to find a run's processes; elsewhere a dead
// executor's runs are left to the service manager.
func killMarked([]string) int { return 0 }

func killLeftovers([][]string, func(int) bool) int { return 0 }

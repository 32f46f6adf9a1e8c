//go:build !linux

package executor

import (
	"errors"
	"syscall"
)

func processStart(int) string { return "" }

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

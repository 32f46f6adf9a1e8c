//go:build !linux

package testenv

import "os/exec"

// DieWithTest is Linux only (the parent-death signal); elsewhere a test's
// clean-up alone stops what it started.
func DieWithTest(*exec.Cmd) {}

//go:build !linux

package executor

// RunAsInit is Linux's: elsewhere the executor runs as it is.
func RunAsInit() (code int, ran bool) { return 0, false }

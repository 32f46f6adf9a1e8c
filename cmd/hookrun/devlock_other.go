//go:build !unix

package main

// lockDataDir does nothing where flock(2) is not available.
func lockDataDir(string) (func(), error) { return func() {}, nil }

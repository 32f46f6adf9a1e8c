package executor

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// goroutineID is the number runtime.Stack prints for the calling goroutine.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b, _, _ = bytes.Cut(bytes.TrimPrefix(b, []byte("goroutine ")), []byte(" "))
	return string(b)
}

// A run handed to goRun after an earlier one ended runs on that one's
// goroutine (its stack already grown), and two at once run side by side.
func TestGoRun_ReusesAnIdleGoroutine(t *testing.T) {
	x := &Executor{idleRunners: make(chan func())}
	ran := make(chan string)
	x.goRun(func() { ran <- goroutineID() })
	first := <-ran
	var second string
	for deadline := time.Now().Add(2 * time.Second); ; {
		// The runner is waiting once its f returned; until then goRun
		// starts another goroutine, which would make this test pass late,
		// not wrongly: wait for one that reuses.
		x.goRun(func() { ran <- goroutineID() })
		if second = <-ran; second == first || time.Now().After(deadline) {
			break
		}
	}
	if second != first {
		t.Fatalf("the second run went on goroutine %s, not the idle %s", second, first)
	}

	release := make(chan struct{})
	started := make(chan string, 2)
	for range 2 {
		x.goRun(func() { started <- goroutineID(); <-release })
	}
	a, b := <-started, <-started
	close(release)
	if a == b {
		t.Fatalf("two runs at once shared goroutine %s", a)
	}
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// rusage is the CPU time the kernel reports for this process (who =
// RUSAGE_SELF) or its reaped children (RUSAGE_CHILDREN): the reference
// procCPU must agree with, however busy the machine is.
func rusage(t *testing.T, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		t.Skip("no getrusage:", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// near reports whether got is within 60 ms or a third of want.
func near(got, want time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= max(60*time.Millisecond, want/3)
}

func TestProcCPU_CountsOwnWorkAndReapedChildren(t *testing.T) {
	pid := os.Getpid()
	before, refBefore := procCPU(pid, false), rusage(t, syscall.RUSAGE_SELF)
	// Spin until the kernel has given us 300 ms of CPU (on a busy machine
	// that takes longer than 300 ms).
	x := 0
	for deadline := time.Now().Add(10 * time.Second); rusage(t, syscall.RUSAGE_SELF)-refBefore < 300*time.Millisecond && time.Now().Before(deadline); {
		x++
	}
	own, ref := procCPU(pid, false)-before, rusage(t, syscall.RUSAGE_SELF)-refBefore
	if ref < 300*time.Millisecond || !near(own, ref) {
		t.Fatalf("%s of CPU (getrusage) counted as %s (x=%d)", ref, own, x)
	}

	// Other tests of this process may have reaped children already, and
	// may reap more as this runs: the kernel's count, read before and
	// after ours, brackets it.
	kids := func() (lo, got, hi time.Duration) {
		lo = rusage(t, syscall.RUSAGE_CHILDREN)
		got = procCPU(pid, true)
		hi = rusage(t, syscall.RUSAGE_CHILDREN)
		return lo, got, hi
	}
	const tick = 60 * time.Millisecond // /proc counts in 10 ms ticks, per field
	lo, got, hi := kids()
	if got < lo-tick || got > hi+tick {
		t.Fatalf("children's time counted as %s, getrusage says %s to %s", got, lo, hi)
	}
	// A child that spins for 300 ms, reaped before we read again.
	base := hi
	if err := exec.Command("sh", "-c", `end=$(($(date +%s%N)+300000000)); while [ $(date +%s%N) -lt $end ]; do :; done`).Run(); err != nil {
		t.Skip("no sh:", err)
	}
	lo, got, hi = kids()
	if lo-base < 30*time.Millisecond || got < lo-tick || got > hi+tick {
		t.Fatalf("after a reaped child's %s of CPU (getrusage), children's time counted as %s, getrusage says %s to %s", lo-base, got, lo, hi)
	}
	if procCPU(-1, false) != 0 || procCPU(1<<30, false) != 0 {
		t.Fatal("a missing process must count as 0")
	}
}

// A phase measured in rounds counts its processes' CPU in its rounds only,
// not in the other phases' rounds between them.
func TestCPUMeter_CountsOnlyItsRounds(t *testing.T) {
	spin := func(d time.Duration) {
		for start := rusage(t, syscall.RUSAGE_SELF); rusage(t, syscall.RUSAGE_SELF)-start < d; {
		}
	}
	m := newCPUMeter().add("self", os.Getpid(), false)
	m.start()
	spin(200 * time.Millisecond)
	m.stop()
	spin(400 * time.Millisecond) // another phase's round
	m.start()
	spin(200 * time.Millisecond)
	m.stop()
	spin(800 * time.Millisecond)
	// 1000 units: the figure is ms of CPU in the rounds (~400), not the
	// ~1600 from the first start to now, nor the ~1000 from the last.
	got := m.per(1000)
	var v float64
	if _, err := fmt.Sscanf(got, "self %f", &v); err != nil {
		t.Fatalf("per: %q: %v", got, err)
	}
	if v < 300 || v > 700 {
		t.Fatalf("CPU in the two rounds of ~200 ms: %s ms, want ~400", got)
	}
}

func TestMergeLoads_RateIsOverAllRounds(t *testing.T) {
	a := loadResult{Sent: 110, Accepted: 100, Codes: map[string]int{"202": 100, "503": 10}, Elapsed: time.Second, Latencies: []time.Duration{time.Millisecond}}
	b := loadResult{Sent: 300, Accepted: 300, Codes: map[string]int{"202": 300}, Elapsed: 3 * time.Second, Latencies: []time.Duration{2 * time.Millisecond, 3 * time.Millisecond}}
	m := mergeLoads(a, b)
	if m.PerSecond() != 100 || m.Sent != 410 || m.Codes["202"] != 400 || m.Codes["503"] != 10 || len(m.Latencies) != 3 {
		t.Fatalf("merged: %+v (%.1f/s)", m, m.PerSecond())
	}
}

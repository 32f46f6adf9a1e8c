package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestProcCPU_CountsOwnWorkAndReapedChildren(t *testing.T) {
	pid := os.Getpid()
	before := procCPU(pid, false)
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	own := procCPU(pid, false) - before
	if own < 150*time.Millisecond || own > 2*time.Second {
		t.Fatalf("300 ms of spinning counted as %s (x=%d)", own, x)
	}

	withKids := procCPU(pid, true)
	if withKids >= own {
		t.Fatalf("children's time before any child ran is %s: it counts our own %s", withKids, own)
	}
	// A child that spins for 300 ms of CPU, reaped before we read again.
	if err := exec.Command("sh", "-c", `end=$(($(date +%s%N)+300000000)); while [ $(date +%s%N) -lt $end ]; do :; done`).Run(); err != nil {
		t.Skip("no sh:", err)
	}
	kids := procCPU(pid, true) - withKids
	if kids < 100*time.Millisecond {
		t.Fatalf("a reaped child's 300 ms counted as %s", kids)
	}
	if procCPU(-1, false) != 0 || procCPU(1<<30, false) != 0 {
		t.Fatal("a missing process must count as 0")
	}
}

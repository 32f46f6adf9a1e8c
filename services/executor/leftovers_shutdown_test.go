package executor

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

// killAtCleanup kills pid at the end of the test, should the executor
// have left it: a sleep 300 would outlive the test run.
func killAtCleanup(t *testing.T, pid int) {
	t.Cleanup(func() {
		if !gone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// A run that ends during the shutdown grace has what it moved out of its
// group (setsid) killed as any run's end does, before the executor goes:
// its directory is gone, so no later executor's sweep would find it.
func TestExecutor_LeftoverOfARunEndingDuringShutdownIsKilled(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	x := e.start(nil)
	job := e.script("ends-in-grace", `setsid sleep 300 & echo $! > "$OUT/detached.pid"; sleep 2; echo done`)
	rr := e.submit(job, "{}")
	pid := e.pidOf("detached.pid")
	killAtCleanup(t, pid)
	e.waitStatus(rr, message.StatusRunning, 1)
	stopped := make(chan struct{})
	go func() { x.stop(); close(stopped) }() // the run (2 s) ends within the 5 s grace
	want(t, "status", e.final(rr, 15*time.Second).Status, message.StatusSucceeded)
	<-stopped
	waitGone(t, pid, "the detached process of a run that ended during the shutdown")
}

// A run the shutdown hands back has what it moved out of its group killed
// before it is handed back: its next attempt, on another executor, starts
// with the earlier attempt's processes gone.
func TestExecutor_LeftoverOfARunHandedBackIsKilledBeforeItsNextAttempt(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	// An AckWait long enough that a busy machine's late in-progress acks
	// do not hand the run to the second executor before the first does.
	e.conf.AckWait = 6 * time.Second
	first := e.start(func(c *Config) { c.ShutdownGrace = time.Second })
	job := e.script("handed-back", `
		old=$(cat "$OUT/detached.pid" 2>/dev/null)
		if [ -n "$old" ] && [ -r /proc/$old/stat ] && ! grep -q ') Z ' /proc/$old/stat; then echo alive; else echo gone; fi > "$OUT/earlier-$HOOKRUN_RUN_ATTEMPT"
		setsid sleep 300 & echo $! > "$OUT/detached.pid"
		sleep 60`)
	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusRunning, 1)
	pid := e.pidOf("detached.pid")
	killAtCleanup(t, pid)
	e.start(nil) // takes the run over when the first hands it back
	first.stop()
	e.waitStatus(rr, message.StatusRunning, 2)
	want(t, "the first attempt's detached process when the second started", e.readFile("earlier-2"), "gone")
	killAtCleanup(t, e.pidOf("detached.pid"))
	waitGone(t, pid, "the detached process of the handed-back attempt")
}

// When the scan is stopped (the run handlers have returned), it scans once
// more: a run that ended since the last scan is not left to an executor
// that will scan no more.
func TestLeftovers_ScansOnceMoreWhenStopped(t *testing.T) {
	var l leftovers
	l.started(4242)
	l.add(4242, "HOOKRUN_RUN_ID=run_a", "HOOKRUN_RUN_ATTEMPT=1", "HOOKRUN_WEBHOOK_DELIVERY_ID=dlv_a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var scanned [][]string
	l.run(ctx, func(runs [][]string, skip func(int) bool) int {
		scanned = append(scanned, runs...)
		return 0
	}, nil)
	if !slices.ContainsFunc(scanned, func(r []string) bool {
		return slices.Equal(r, []string{"HOOKRUN_RUN_ID=run_a", "HOOKRUN_RUN_ATTEMPT=1", "HOOKRUN_WEBHOOK_DELIVERY_ID=dlv_a"})
	}) {
		t.Fatalf("scanned for %q, want the run that ended", scanned)
	}
}

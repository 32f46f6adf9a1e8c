package executor

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// initChildEnv marks the executor that RunAsInit started, so that it does
// not start another.
const initChildEnv = "HOOKRUN_EXECUTOR_INIT_CHILD"

// RunAsInit makes an executor that is its container's PID 1 (Kubernetes, a
// plain `docker run`: no init of the runtime's) an init: it starts the
// executor again as its child and reaps every process re-parented to it.
// Go reaps only the children it started, so the processes jobs leave behind
// (a `cmd &` that outlives its job, a leftover the executor kills) would
// otherwise stay zombies until the container's pid limit made every job's
// start fail. An init in the image (tini) would hold the executor's
// environment (HOOKRUN_SECRET_KEY, the NATS password) in a /proc/<pid>/
// environ that a job running as the same user could read; this one is
// made undumpable, as the executor is. Signals are passed on to the
// executor (SIGTERM drains it), and the init exits as the executor did.
//
// ran is false when the process is not PID 1 or is the init's child: the
// caller goes on as the executor.
func RunAsInit() (code int, ran bool) {
	if os.Getpid() != 1 || os.Getenv(initChildEnv) != "" {
		return 0, false
	}
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0)
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs) // every signal: SIGCHLD to reap, the others to pass on
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	pid, err := syscall.ForkExec(self, os.Args, &syscall.ProcAttr{
		Env:   append(os.Environ(), initChildEnv+"=1"),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		os.Stderr.WriteString("hookrun-executor: cannot start the executor under its init: " + err.Error() + "\n")
		return 1, true
	}
	// Reaped on every signal and every second: signals that come faster
	// than they are read are dropped, SIGCHLD among them.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case sig := <-sigs:
			// SIGCHLD is the init's; SIGURG is Go's own (preemption).
			if s, ok := sig.(syscall.Signal); ok && s != syscall.SIGCHLD && s != syscall.SIGURG {
				_ = syscall.Kill(pid, s)
			}
		case <-tick.C:
		}
		if code, exited := reap(pid); exited {
			return code, true
		}
	}
}

// reap waits for every child that has ended; exited tells whether the
// executor (pid) was among them, code how it ended.
func reap(pid int) (code int, exited bool) {
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if p <= 0 || err != nil {
			return 0, false
		}
		if p == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal()), true
			}
			return ws.ExitStatus(), true
		}
	}
}

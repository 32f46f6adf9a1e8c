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
	// SIGCHLD apart from the signals passed on: a burst of ended children
	// must not crowd out a SIGTERM.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, passedOn...)
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
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(pid, s)
			}
		case <-chld:
		case <-tick.C:
		}
		if code, exited := reap(pid); exited {
			return code, true
		}
	}
}

// passedOn are the signals the init passes on to the executor.
var passedOn = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM}

// reap waits for every child that has ended; exited tells whether the
// executor (pid) was among them, code how it ended. An executor stopped
// (SIGSTOP from a job running as its user: as PID 1 the kernel kept such
// signals from it) is continued: stopped, it would hold its runs while
// other executors took them over, and their jobs would run twice.
func reap(pid int) (code int, exited bool) {
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|syscall.WUNTRACED, nil)
		if p <= 0 || err != nil {
			return 0, false
		}
		if p == pid && ws.Stopped() {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			continue
		}
		if p == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal()), true
			}
			return ws.ExitStatus(), true
		}
	}
}

package executor

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A process the job moved out of its group (setsid) that goes on writing
// in the run's directory (its HOME) when the run ends does not keep the
// directory: it is killed, and the directory removed. One writing as the
// removal goes (which then finds the directory not empty) is killed at
// once, and the directory is gone by the time the run's final status is
// stored; one that makes the directory anew after its removal is killed
// by the next scan, which removes the directory again.
func TestExecutor_RunDirOfADetachedWriterIsRemoved(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		writer string // what the process the job detaches runs
		atEnd  bool   // the directory is gone when the final status is stored
	}{
		// Trees of directories are slow to remove: new ones come in as
		// the removal goes (not always: it may still get through).
		{"writing in its working directory", `i=0; while :; do mkdir -p d$i/a/b/c/d/e/f/g/h/i/j; i=$((i+1)); done`, true},
		{"making it anew", `while :; do mkdir -p "$HOME/.cache/tool"; done`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			e.start(nil)
			job := e.script("detached-writer", `setsid sh -c 'echo $$ > "$OUT/writer.pid"; `+tc.writer+`' >/dev/null 2>&1 & sleep 0.3; echo ok`)
			rr := e.submit(job, "{}")
			pid := e.pidOf("writer.pid")
			killAtCleanup(t, pid)
			want(t, "status", e.final(rr, 10*time.Second).Status, message.StatusSucceeded)
			if dirs := runDirs(t, e.conf.WorkDir); tc.atEnd && len(dirs) > 0 {
				t.Fatalf("run directories left at the run's end: %q", dirs)
			}
			waitGone(t, pid, "the detached writer")
			testenv.Eventually(t, 5*time.Second, func() error {
				if dirs := runDirs(t, e.conf.WorkDir); len(dirs) > 0 {
					return fmt.Errorf("run directories left: %q", dirs)
				}
				return nil
			})
		})
	}
}

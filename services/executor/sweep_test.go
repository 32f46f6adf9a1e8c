package executor

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

func TestRunDirName_RecordsItsOwner(t *testing.T) {
	cases := []struct {
		name   string
		prefix string
		runID  string
		named  bool
	}{
		{"default prefix", "", "run_abcDEF012_xyz", true},
		{"prefix with underscores", "MY_APP", "run_x", true},
		{"prefix holding the marker's own words", "A_RUN_ID", "run_x", true},
		{"run id a name cannot carry", "", "run-x", false},
		{"too long for a name", strings.Repeat("P", 180), "run_x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := &resource.Job{Spec: resource.JobSpec{EnvPrefix: c.prefix}}
			o := owner{PID: 4242, NS: "abcd2345", Start: "123456", Markers: runMarkers(job, c.runID, 3)}
			pattern, ok := o.dirPattern()
			want(t, "named", ok, c.named)
			if !ok {
				return
			}
			got, ok := ownerFromName(strings.Replace(pattern, "*", "987654321", 1))
			want(t, "read back", ok, true)
			want(t, "pid", got.PID, o.PID)
			want(t, "namespace", got.NS, o.NS)
			want(t, "start", got.Start, o.Start)
			want(t, "markers", strings.Join(got.Markers, " "), strings.Join(o.Markers, " "))
		})
	}
	for _, name := range []string{"hookrun-run-123456789", "hookrun-run-1-2-P-run_x-1", "hookrun-run-x-2-P-run_x-1-9", "hookrun-run-1-2-p-run_x-1-9", "other-1-2-P-run_x-1-9", "hookrun-run-1.-2-P-run_x-1-9", "hookrun-run-1.A_B-2-P-run_x-1-9"} {
		if _, ok := ownerFromName(name); ok {
			t.Errorf("%q read as an owner record", name)
		}
	}
}

func TestSweep_RemovesDeadExecutorsRunDirsOfBothRecordKinds(t *testing.T) {
	x := &Executor{cfg: Config{WorkDir: t.TempDir()}, log: testLogger(t)}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := dead.Process.Pid
	job := &resource.Job{}
	mk := func(o owner, legacy bool) string {
		t.Helper()
		var dir string
		var err error
		if pattern, ok := o.dirPattern(); ok && !legacy {
			dir, err = os.MkdirTemp(x.cfg.WorkDir, pattern)
		} else {
			dir, err = os.MkdirTemp(x.cfg.WorkDir, runDirPrefix)
			if err == nil {
				b, _ := json.Marshal(o)
				err = os.WriteFile(dir+ownerSuffix, b, 0o600)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "left-behind"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	deadNamed := mk(owner{PID: pid, Start: "1", Markers: runMarkers(job, "run_a", 1)}, false)
	deadLegacy := mk(owner{PID: pid, Start: "1", Markers: runMarkers(job, "run_b", 1)}, true)
	liveNamed := mk(owner{PID: os.Getpid(), Start: selfStart(), Markers: runMarkers(job, "run_c", 1)}, false)
	deadHere := mk(owner{PID: pid, NS: selfNS(), Start: "1", Markers: runMarkers(job, "run_d", 1)}, false)
	// Another container's executor on a shared volume: its pid, dead
	// here, may be alive there. Its directory stays until older than any
	// attempt can be.
	foreign := mk(owner{PID: pid, NS: "zzzzzzzz", Start: "1", Markers: runMarkers(job, "run_e", 1)}, false)
	foreignLegacy := mk(owner{PID: pid, NS: "zzzzzzzz", Start: "1", Markers: runMarkers(job, "run_f", 1)}, true)
	foreignOld := mk(owner{PID: pid, NS: "zzzzzzzz", Start: "1", Markers: runMarkers(job, "run_g", 1)}, false)
	long := time.Now().Add(-foreignDirAge - time.Minute)
	old := dirChanged
	t.Cleanup(func() { dirChanged = old })
	dirChanged = func(fi os.FileInfo) time.Time {
		if fi.Name() == filepath.Base(foreignOld) {
			return long
		}
		return old(fi)
	}
	// A job back-dating its directory (touch -d, tar x) does not make it
	// look left over: its inode's change time is now.
	foreignBackdated := mk(owner{PID: pid, NS: "zzzzzzzz", Start: "1", Markers: runMarkers(job, "run_h", 1)}, false)
	if err := os.Chtimes(foreignBackdated, long, long); err != nil {
		t.Fatal(err)
	}
	x.sweep()
	for _, dir := range []string{liveNamed, foreign, foreignLegacy, foreignLegacy + ownerSuffix, foreignBackdated} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was swept: %v", dir, err)
		}
	}
	for _, dir := range []string{deadNamed, deadLegacy, deadLegacy + ownerSuffix, deadHere, foreignOld} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", dir, err)
		}
	}
	if !strings.Contains(filepath.Base(deadHere), "."+selfNS()+"-") || selfNS() == "" {
		t.Errorf("a run directory's name does not hold its namespace %q: %s", selfNS(), deadHere)
	}
}

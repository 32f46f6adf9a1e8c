package executor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
)

// A run's working directory has an owner record beside it (not in it, so
// the job's directory holds only its payload): which executor process runs
// it, and the environment entries that only that attempt's processes carry
// (its run id and attempt number). An executor that dies (kill -9, OOM)
// cannot clean up after itself; the next executor to start on the same
// WorkDir sweeps what it left: kills every process still carrying those
// entries, removes the directory. The run itself comes back from JetStream
// as the next attempt, whose processes carry another attempt number.

const ownerSuffix = ".owner"

type owner struct {
	PID     int      `json:"pid"`
	Start   string   `json:"start,omitempty"` // the executor's start time as the OS reports it, against pid reuse
	Markers []string `json:"markers"`
}

// writeOwner records this executor as the owner of dir.
func writeOwner(dir string, markers []string) {
	b, _ := json.Marshal(owner{PID: os.Getpid(), Start: processStart(os.Getpid()), Markers: markers})
	_ = os.WriteFile(dir+ownerSuffix, b, 0o600)
}

// removeRunDir removes a run's directory and its owner record.
func removeRunDir(dir string) {
	_ = os.RemoveAll(dir)
	_ = os.Remove(dir + ownerSuffix)
}

// sweep cleans up after executors that died on this WorkDir.
func (x *Executor) sweep() {
	files, _ := filepath.Glob(filepath.Join(x.cfg.WorkDir, runDirPrefix+"*"+ownerSuffix))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var o owner
		if json.Unmarshal(b, &o) != nil || o.PID <= 0 || processAlive(o.PID, o.Start) {
			continue
		}
		killed := 0
		if validMarkers(o.Markers) {
			killed = killMarked(o.Markers)
		}
		dir := f[:len(f)-len(ownerSuffix)]
		removeRunDir(dir)
		x.log.Warn("cleaned up a run whose executor died", "dir", dir, "killed", killed)
	}
}

var markerRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*_RUN_(ID|ATTEMPT)=[A-Za-z0-9_]+$`)

// validMarkers refuses a record that could name other processes: both
// markers, in their exact form.
func validMarkers(ms []string) bool {
	if len(ms) != 2 {
		return false
	}
	for _, m := range ms {
		if !markerRE.MatchString(m) {
			return false
		}
	}
	return true
}

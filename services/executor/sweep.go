package executor

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A run's working directory records its owner: which executor process
// runs it, and the environment entries that only that attempt's processes
// carry (its run id and attempt number). An executor that dies (kill -9,
// OOM) cannot clean up after itself; the next executor to start on the same
// WorkDir sweeps what it left: kills every process still carrying those
// entries, removes the directory. The run itself comes back from JetStream
// as the next attempt, whose processes carry another attempt number.
//
// The record is the directory's name,
//
//	hookrun-run-<pid>.<ns>-<start>-<PREFIX>-<runId>-<attempt>-<random>
//
// where <ns> names the PID namespace the pid is in (pidNamespace): a WorkDir
// on a volume mounted into several containers (`--scale`) holds other
// executors' directories, whose owners this executor cannot see however
// alive they are. Their directories are left to them, and removed only once
// older than any attempt can run (foreignDirAge). Names of executors before
// the fifteenth session have no ".<ns>" and are taken for this namespace's.
//
// so that making the directory records its owner: a separate file would
// be one more file made and removed in WorkDir per run, and those cost as
// much as the rest of the run's file system work together (every
// concurrent run takes the same directory lock). Where the record does not
// fit a name (markers not in their exact form, a name too long, no start
// time), it is a file beside the directory, <dir>.owner (not in it, so the
// job's directory holds only its payload), as executors always wrote before;
// the sweep reads both.

const ownerSuffix = ".owner"

type owner struct {
	PID     int      `json:"pid"`
	NS      string   `json:"ns,omitempty"`    // the PID namespace of PID (pidNamespace); "": this one's
	Start   string   `json:"start,omitempty"` // the executor's start time as the OS reports it, against pid reuse
	Markers []string `json:"markers"`
}

// foreignDirAge is the age past which a run directory of another PID
// namespace's executor is removed: no attempt runs longer than a job's
// longest timeout (24 h) and its kill grace, so its owner left it behind.
const foreignDirAge = 25 * time.Hour

// dirChanged is when a directory last changed, by a clock its job cannot
// set: its inode's change time where the OS has one (a job's `touch -d` or
// `tar x` back-dates its modification time, not this). A variable for
// tests.
var dirChanged = changeTime

// selfNS names this executor's PID namespace, read once.
var selfNS = sync.OnceValue(pidNamespace)

// maxRunDirName leaves room under the usual 255-byte limit of a name.
const maxRunDirName = 200

// selfStart is this executor's start time as the OS reports it, read once.
var selfStart = sync.OnceValue(func() string { return processStart(os.Getpid()) })

// makeRunDir makes a fresh run directory in workDir owned by this executor,
// for the attempt whose processes carry markers (runMarkers). named says
// whether the directory's name is its owner record (else a record file
// sits beside it).
func makeRunDir(workDir string, markers []string) (dir string, named bool, err error) {
	o := owner{PID: os.Getpid(), NS: selfNS(), Start: selfStart(), Markers: markers}
	if pattern, ok := o.dirPattern(); ok {
		dir, err = os.MkdirTemp(workDir, pattern)
		return dir, true, err
	}
	dir, err = os.MkdirTemp(workDir, runDirPrefix)
	if err != nil {
		return "", false, err
	}
	b, _ := json.Marshal(o)
	// A new file, never through a link: in a work directory others may
	// write to (a sticky /tmp), one could be put at this name first.
	if f, err := os.OpenFile(dir+ownerSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600); err == nil {
		_, _ = f.Write(b)
		_ = f.Close()
	}
	return dir, false, nil
}

// dirPattern is the os.MkdirTemp pattern of a directory named for o, if
// o can be a name.
func (o owner) dirPattern() (string, bool) {
	if !validMarkers(o.Markers) || !digits(o.Start) {
		return "", false
	}
	prefix, id, ok1 := strings.Cut(o.Markers[0], "_RUN_ID=")
	prefix2, attempt, ok2 := strings.Cut(o.Markers[1], "_RUN_ATTEMPT=")
	if !ok1 || !ok2 || prefix != prefix2 || !digits(attempt) {
		return "", false
	}
	pid := strconv.Itoa(o.PID)
	if o.NS != "" {
		if !alnum(o.NS) {
			return "", false
		}
		pid += "." + o.NS
	}
	p := runDirPrefix + strings.Join([]string{pid, o.Start, prefix, id, attempt, "*"}, "-")
	return p, len(p)+10 <= maxRunDirName // the random part is at most 10 digits
}

// ownerFromName reads the owner of a directory named by dirPattern.
func ownerFromName(name string) (owner, bool) {
	rest, ok := strings.CutPrefix(name, runDirPrefix)
	if !ok {
		return owner{}, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 6 || !digits(f[1]) || !digits(f[4]) || f[5] == "" {
		return owner{}, false
	}
	pidField, ns, hasNS := strings.Cut(f[0], ".")
	pid, err := strconv.Atoi(pidField)
	if err != nil || pid <= 0 || hasNS && !alnum(ns) {
		return owner{}, false
	}
	o := owner{PID: pid, NS: ns, Start: f[1], Markers: []string{f[2] + "_RUN_ID=" + f[3], f[2] + "_RUN_ATTEMPT=" + f[4]}}
	return o, validMarkers(o.Markers)
}

// alnum: s is a non-empty run of lower-case letters and digits.
func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return s != ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// removeRunDir removes a run's directory and, unless its name is its owner
// record (named), the record file beside it. Most jobs leave only the
// payload file: then an unlink and an rmdir do, instead of RemoveAll's
// walk, which takes the lock of WorkDir (shared by every concurrent run)
// three times. Directories the job made read-only (a Go module cache, a
// `chmod -R a-w`) are made writable again first when the executor does not
// run as root (chmodMayHelp): such a directory would otherwise stay,
// filling WorkDir. noChmod: jobs run as another user, which the walk must
// not trust (chmodMayHelp).
func removeRunDir(dir string, named, noChmod bool) error {
	_ = os.Remove(filepath.Join(dir, payloadName))
	var err error
	if syscall.Rmdir(dir) != nil {
		if err = os.RemoveAll(dir); chmodMayHelp(err, noChmod) {
			makeDirsWritable(dir)
			err = os.RemoveAll(dir)
		}
	}
	if !named {
		_ = os.Remove(dir + ownerSuffix)
	}
	return err
}

// chmodMayHelp tells whether making the run directory's directories
// writable may let a removal that failed with err succeed: only a refusal
// for want of permission, and only when jobs run as the executor's own
// user (not noChmod). An executor running jobs as another user
// (HOOKRUN_JOB_USER: root, with DAC_OVERRIDE) removes whatever the modes,
// and its chmod would follow a symbolic link a job's leftover process
// swapped in for a directory between the walk's read and the chmod (chmod
// has no flag not to): with FOWNER, a link to / made every directory under
// it 0700 to the jobs' user. Jobs running as the executor's user gain
// nothing by it: they may chmod what it may. A removal that failed on
// entries made meanwhile (ENOTEMPTY: such a process writing) is cured by
// killing the process (cleanUpRunDir), not by modes.
func chmodMayHelp(err error, noChmod bool) bool {
	return err != nil && !noChmod && errors.Is(err, fs.ErrPermission)
}

// makeDirsWritable gives the owner full access to every directory under
// dir (symbolic links are not followed), so that their entries can be
// removed.
func makeDirsWritable(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
			if err != nil {
				// Unreadable until now: walk it again, readable.
				makeDirsWritable(path)
				return filepath.SkipDir
			}
		}
		return nil
	})
}

// sweep cleans up after executors that died on this WorkDir.
func (x *Executor) sweep() {
	entries, _ := os.ReadDir(x.cfg.WorkDir)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, runDirPrefix) {
			continue
		}
		var o owner
		dir := filepath.Join(x.cfg.WorkDir, name)
		switch base, isRecord := strings.CutSuffix(name, ownerSuffix); {
		case isRecord:
			b, err := os.ReadFile(dir)
			if err != nil || json.Unmarshal(b, &o) != nil {
				continue
			}
			dir = filepath.Join(x.cfg.WorkDir, base)
		case e.IsDir():
			var ok bool
			if o, ok = ownerFromName(name); !ok {
				continue // its record, if any, is the file beside it
			}
		default:
			continue
		}
		if o.NS != "" && o.NS != selfNS() {
			// Another PID namespace's executor (a container sharing the
			// volume): its pid says nothing here. Its directory goes only
			// once older than any attempt; its processes, in its
			// container, are not ours to see.
			if fi, err := os.Stat(dir); err != nil || time.Since(dirChanged(fi)) < foreignDirAge {
				continue
			}
			_, named := ownerFromName(filepath.Base(dir))
			if err := removeRunDir(dir, named, x.left.noChmod); err == nil {
				x.log.Warn("removed a run directory another container's executor left over a day ago", "dir", dir)
			}
			continue
		}
		if o.PID <= 0 || processAlive(o.PID, o.Start) {
			continue
		}
		killed := 0
		if validMarkers(o.Markers) {
			killed = killMarked(o.Markers)
		}
		_, named := ownerFromName(filepath.Base(dir))
		if err := removeRunDir(dir, named, x.left.noChmod); err != nil {
			x.log.Error("cannot remove the run directory of a run whose executor died", "dir", dir, "killed", killed, "err", err)
			continue
		}
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

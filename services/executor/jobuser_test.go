package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

func TestParseJobUser(t *testing.T) {
	for in, want := range map[string]JobUser{"65534": {65534, 65534}, "1000:100": {1000, 100}} {
		got, err := ParseJobUser(in)
		if err != nil || *got != want {
			t.Errorf("ParseJobUser(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"nobody", "1000:", ":100", "-1", "1:2:3"} {
		if _, err := ParseJobUser(bad); err == nil {
			t.Errorf("ParseJobUser(%q) accepted", bad)
		}
	}
}

// A command job run as HOOKRUN_JOB_USER reads its input and writes its
// working directory, but cannot read the executor's environment (its
// credentials) through /proc.
func TestExecutor_JobAsAnotherUserCannotReadTheExecutorsEnvironment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	e := newXEnv(t)
	e.conf.JobUser = &JobUser{UID: 65534, GID: 65534}
	// The job's user must be able to reach its directory: the test's
	// temporary directories are root's alone.
	for d := e.conf.WorkDir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	e.start(nil)
	job := e.script("as-nobody", `id -u; cat "$HOOKRUN_WEBHOOK_PAYLOAD_FILE"; echo; touch ./made-here && echo wrote; `+
		`if cat /proc/$PPID/environ >/dev/null 2>&1; then echo LEAKED; else echo environ-refused; fi`)
	r := e.final(e.submit(job, `{"n":1}`), 15*time.Second)
	if r.Status != message.StatusSucceeded {
		t.Fatalf("status %s (%s): %q", r.Status, r.Error, r.Output)
	}
	for _, s := range []string{"65534\n", `{"n":1}`, "wrote", "environ-refused"} {
		if !strings.Contains(r.Output, s) {
			t.Errorf("output %q lacks %q", r.Output, s)
		}
	}
}

// An executor running jobs as another user removes their run directories
// without a chmod walk (chmodMayHelp); one running them as itself keeps it.
func TestExecutor_NoChmodWalkWhenJobsRunAsAnotherUser(t *testing.T) {
	e := newXEnv(t)
	for _, u := range []*JobUser{nil, {UID: 65534, GID: 65534}} {
		var got bool
		e.startWith(e.nc, e.js, func(c *Config) { c.JobUser = u }, func(x *Executor) { got = x.left.noChmod }).stop()
		if want := u != nil; got != want {
			t.Errorf("JobUser %v: noChmod %v, want %v", u, got, want)
		}
	}
}

// A credential file (HOOKRUN_<name>_FILE) the jobs could read is refused
// at start: jobs running as the executor's own user read all it reads,
// and jobs running as HOOKRUN_JOB_USER read what its mode lets them, or
// their own file, whose mode they may change; a file with an ACL, which
// could grant them more than its mode, is refused too.
func TestConfigFromEnv_RefusesACredentialFileTheJobsCouldRead(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode, uid, gid int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("c2VjcmV0\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Skipf("chown needs root: %v", err)
			}
		}
		return p
	}
	mine := file("mine", 0o600, -1, -1)
	// inDir puts a file only root may read in a directory of its own of
	// that mode and owner.
	inDir := func(name string, mode os.FileMode, uid, gid int) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "key")
		if err := os.WriteFile(p, []byte("c2VjcmV0\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Skipf("chown needs root: %v", err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, jobUser, path, want string
	}{
		{"jobs as the executor", "", mine, "command jobs run as the executor's own user"},
		{"readable by all", "65534", file("all", 0o644, -1, -1), "is readable by the jobs' user 65534:65534"},
		{"the executor's alone", "65534", mine, ""},
	}
	if os.Geteuid() == 0 {
		cases = append(cases,
			struct{ name, jobUser, path, want string }{"the jobs' own", "65534", file("theirs", 0o400, 65534, 0), "readable by the jobs' user"},
			// Its owner may chmod it, whatever its mode now.
			struct{ name, jobUser, path, want string }{"the jobs' own, mode 0", "65534", file("theirs-0", 0o000, 65534, 0), "readable by the jobs' user"},
			struct{ name, jobUser, path, want string }{"the jobs' group", "1000:65534", file("group", 0o640, 0, 65534), "readable by the jobs' user 1000:65534"},
			struct{ name, jobUser, path, want string }{"another group", "1000:65534", file("other-group", 0o640, 0, 4242), ""},
			struct{ name, jobUser, path, want string }{"jobs as root", "0", file("elses", 0o600, 4242, 4242), "readable by the jobs' user 0:0"},
			// A directory the jobs' user may change: a job could put its
			// own file in the credential's place.
			struct{ name, jobUser, path, want string }{"the jobs' directory", "65534", inDir("d-theirs", 0o755, 65534, 65534), "could be changed by the jobs' user 65534:65534"},
			struct{ name, jobUser, path, want string }{"a directory all may write", "65534", inDir("d-all", 0o777, 0, 0), "could be changed by the jobs' user"},
			struct{ name, jobUser, path, want string }{"a directory the jobs' group may write", "1000:65534", inDir("d-group", 0o775, 0, 65534), "could be changed by the jobs' user 1000:65534"},
			struct{ name, jobUser, path, want string }{"a sticky directory all may write", "65534", inDir("d-sticky", 0o777|os.ModeSticky, 0, 0), ""},
			struct{ name, jobUser, path, want string }{"root's directory", "65534", inDir("d-root", 0o755, 0, 0), ""},
		)
		// A link in a directory the jobs' user may change, to a file in
		// one it may not: the link could be replaced.
		safe := inDir("d-target", 0o755, 0, 0)
		linkDir := filepath.Join(dir, "d-links")
		if err := os.Mkdir(linkDir, 0o755); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(linkDir, "key")
		if err := os.Symlink(safe, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(linkDir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, jobUser, path, want string }{"a link in the jobs' directory", "65534", link, "the directory " + linkDir})
		// A chain: a link in root's directory to a link in the jobs'
		// directory to the file in root's: the middle link counts too.
		chainDir := filepath.Join(dir, "d-chain")
		if err := os.Mkdir(chainDir, 0o755); err != nil {
			t.Fatal(err)
		}
		chain := filepath.Join(chainDir, "key")
		if err := os.Symlink(link, chain); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, jobUser, path, want string }{"a chain through the jobs' directory", "65534", chain, "the directory " + linkDir})
	}
	for _, tc := range cases {
		t.Setenv("HOOKRUN_JOB_USER", tc.jobUser)
		t.Setenv("HOOKRUN_SECRET_KEY", "")
		t.Setenv("HOOKRUN_SECRET_KEY_FILE", tc.path)
		cfg, err := ConfigFromEnv()
		if err == nil {
			err = CheckCredentialFiles(cfg)
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && cfg.SecretKey != "c2VjcmV0":
			t.Errorf("%s: secret key %q, want the file's", tc.name, cfg.SecretKey)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A setting given as zero or less is refused naming it, not silently
// replaced by its default (HOOKRUN_EXECUTOR_MAX_CONCURRENT=0 ran 32 at once).
func TestConfigFromEnv_RefusesSettingsThatMustBePositive(t *testing.T) {
	for v, bad := range map[string]string{
		"HOOKRUN_EXECUTOR_MAX_CONCURRENT": "0", "HOOKRUN_EXECUTOR_ACK_WAIT": "0s", "HOOKRUN_EXECUTOR_SHUTDOWN_GRACE": "-1s",
		"HOOKRUN_EXECUTOR_KILL_GRACE": "0s", "HOOKRUN_EXECUTOR_MAX_OUTPUT": "-1", "HOOKRUN_CALLBACK_CONCURRENCY": "0",
		"HOOKRUN_CALLBACK_TIMEOUT": "0s",
	} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, bad)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), v+"="+bad+": must be positive") {
				t.Fatalf("%s=%s: %v, want it refused naming the variable", v, bad, err)
			}
		})
	}
	t.Setenv("HOOKRUN_EXECUTOR_MAX_CONCURRENT", "3")
	if c, err := ConfigFromEnv(); err != nil || c.MaxConcurrent != 3 {
		t.Fatalf("HOOKRUN_EXECUTOR_MAX_CONCURRENT=3: %d, %v", c.MaxConcurrent, err)
	}
}

// hookrun dev's executor takes credential files: its jobs run as the
// developer, who holds those files anyway; CheckCredentialFiles is the
// executor binary's.
func TestConfigFromEnv_TakesCredentialFilesItself(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOKRUN_JOB_USER", "")
	t.Setenv("HOOKRUN_SECRET_KEY", "")
	t.Setenv("HOOKRUN_SECRET_KEY_FILE", p)
	cfg, err := ConfigFromEnv()
	if err != nil || cfg.SecretKey != "c2VjcmV0" {
		t.Fatalf("ConfigFromEnv: %q, %v", cfg.SecretKey, err)
	}
	if err := CheckCredentialFiles(cfg); err == nil {
		t.Fatal("CheckCredentialFiles took a file jobs running as the executor could read")
	}
}

// An ACL may grant the jobs' user what the file's mode does not.
func TestSecretFileHiddenFromJobs_RefusesAFileWithAnACL(t *testing.T) {
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Skip("setfacl not installed")
	}
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("c2VjcmV0"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &JobUser{UID: 65534, GID: 65534}
	if err := secretFileHiddenFromJobs("SECRET_KEY", p, u); err != nil {
		t.Fatalf("without an ACL: %v", err)
	}
	if out, err := exec.Command("setfacl", "-m", "u:65534:r", p).CombinedOutput(); err != nil {
		t.Skipf("setfacl: %v: %s", err, out)
	}
	if err := secretFileHiddenFromJobs("SECRET_KEY", p, u); err == nil || !strings.Contains(err.Error(), "access control list") {
		t.Fatalf("with an ACL granting the jobs' user read: %v", err)
	}
}

// A directory on the way to a credential file that carries an ACL could
// let the jobs' user change it whatever its mode.
func TestSecretFileHiddenFromJobs_RefusesADirectoryWithAnACL(t *testing.T) {
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Skip("setfacl not installed")
	}
	d := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "key")
	if err := os.WriteFile(p, []byte("c2VjcmV0"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &JobUser{UID: 65534, GID: 65534}
	if err := secretFileHiddenFromJobs("SECRET_KEY", p, u); err != nil {
		t.Fatalf("without an ACL: %v", err)
	}
	if out, err := exec.Command("setfacl", "-m", "u:65534:rwx", d).CombinedOutput(); err != nil {
		t.Skipf("setfacl: %v: %s", err, out)
	}
	if err := secretFileHiddenFromJobs("SECRET_KEY", p, u); err == nil || !strings.Contains(err.Error(), "the directory "+d) {
		t.Fatalf("with an ACL letting the jobs' user write its directory: %v", err)
	}
}

// Every directory a path's resolution passes through, link by link: a link
// in the middle of a chain lives in a directory that counts too.
func TestResolvedDirs_EveryLinksDirectory(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b", "c/real"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "c/real/key"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// a/key -> ../b/link (relative) -> c/real (a directory link) + /key
	if err := os.Symlink(filepath.Join(root, "c/real"), filepath.Join(root, "b/dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../b/dir/key", filepath.Join(root, "a/key")); err != nil {
		t.Fatal(err)
	}
	dirs, err := resolvedDirs(filepath.Join(root, "a/key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/", root, filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c"), filepath.Join(root, "c/real")} {
		if !slices.Contains(dirs, want) {
			t.Errorf("resolvedDirs lacks %s: %v", want, dirs)
		}
	}
	for _, d := range dirs {
		if fi, err := os.Lstat(d); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			t.Errorf("%s is not a real directory (%v)", d, err)
		}
	}
}

// With jobs as another user, a work directory that user could change is
// refused at start: a job could swap another run's new directory for a
// link, and have the root executor write the payload into, or chown to the
// jobs' user, what it points at. Root's (0711) and sticky ones pass.
func TestCheckWorkDir_RefusesADirectoryTheJobsCouldChange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	u := &JobUser{UID: 65534, GID: 65534}
	workDir := func(name string, mode os.FileMode, uid, gid int) string {
		d := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		dir  string
		user *JobUser
		want string // "" when accepted
	}{
		{"root's, 0711", workDir("runs", 0o711, 0, 0), u, ""},
		{"sticky, all may write", workDir("tmp", 0o777|os.ModeSticky, 0, 0), u, ""},
		{"the jobs' own", workDir("runs", 0o700, 65534, 65534), u, "could be changed by the jobs' user 65534:65534"},
		{"all may write", workDir("runs", 0o777, 0, 0), u, "could be changed by the jobs' user"},
		{"the jobs' group may write", workDir("runs", 0o770, 0, 65534), u, "could be changed by the jobs' user"},
		{"the jobs' own, jobs as the executor", workDir("runs", 0o700, 65534, 65534), nil, ""},
	} {
		err := CheckWorkDir(Config{WorkDir: tc.dir, JobUser: tc.user})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	// A directory above it the jobs' user may change counts too.
	parent := workDir("parent", 0o755, 65534, 65534)
	inside := filepath.Join(parent, "runs")
	if err := os.Mkdir(inside, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := CheckWorkDir(Config{WorkDir: inside, JobUser: u}); err == nil || !strings.Contains(err.Error(), "the directory "+parent) {
		t.Errorf("a work directory in the jobs' directory: %v", err)
	}
}

// Where jobs cannot run as another user (not Linux), HOOKRUN_JOB_USER is
// refused at start rather than ignored: jobs would run as the executor's
// user, root in a container, without a word.
func TestConfigFromEnv_RefusesAJobUserWhereItCannotApply(t *testing.T) {
	t.Setenv("HOOKRUN_JOB_USER", "65534")
	defer func(was bool) { jobUserSupported = was }(jobUserSupported)
	jobUserSupported = false
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "on Linux only") {
		t.Fatalf("HOOKRUN_JOB_USER where it cannot apply: %v", err)
	}
	jobUserSupported = true
	if cfg, err := ConfigFromEnv(); err != nil || cfg.JobUser == nil || cfg.JobUser.UID != 65534 {
		t.Fatalf("HOOKRUN_JOB_USER on Linux: %+v, %v", cfg.JobUser, err)
	}
}

package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A job may leave read-only directories in its run directory (Go's module
// cache does). The executor runs unprivileged, so it must make them
// writable to remove them; a directory left behind fills the tmpfs.
// As root the test re-runs itself as nobody: root would remove them anyway.
func TestRemoveRunDir_RemovesReadOnlyDirectories(t *testing.T) {
	if dir := os.Getenv("HOOKRUN_TEST_REMOVE_RUN_DIR"); dir != "" {
		if err := removeRunDir(dir, true, false); err != nil {
			t.Fatal(err)
		}
		return
	}
	base, err := os.MkdirTemp("", "hookrun-rundir-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	dir := filepath.Join(base, "run")
	for _, d := range []string{"cache/mod/a", "cache/mod/b", "locked"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{payloadName, "cache/mod/a/go.mod", "cache/mod/b/x.go", "locked/secret"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"cache/mod/a", "cache/mod/b", "cache/mod", "cache"} {
		_ = os.Chmod(filepath.Join(dir, d), 0o555)
	}
	_ = os.Chmod(filepath.Join(dir, "locked"), 0)

	if os.Getuid() != 0 {
		if err := removeRunDir(dir, true, false); err != nil {
			t.Fatal(err)
		}
	} else {
		const nobody = 65534
		_ = os.Chmod(base, 0o755)
		if err := filepath.WalkDir(base, func(p string, _ os.DirEntry, err error) error {
			_ = os.Lchown(p, nobody, nobody)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// A copy of the test binary nobody may run (go test's build
		// directory is root's alone).
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "executor.test")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestRemoveRunDir_RemovesReadOnlyDirectories$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HOOKRUN_TEST_REMOVE_RUN_DIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		cmd.Dir = base
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the run directory is still there: %v", err)
	}
}

// The walk that makes a run directory's directories writable runs only
// when jobs run as the executor's own user, and only for a refusal for want
// of permission: an executor running jobs as another user (root) removes
// whatever the modes, and its chmod would follow a link a job's leftover
// process swaps in for a directory (a link to /: every directory under it
// 0700). Entries written meanwhile are cured by killing their writer, not
// by modes.
func TestChmodMayHelp_OnlyAPermissionRefusalWhenJobsRunAsTheExecutor(t *testing.T) {
	perm := &os.PathError{Op: "unlinkat", Path: "/w/run/x", Err: syscall.EACCES}
	notEmpty := &os.PathError{Op: "unlinkat", Path: "/w/run", Err: syscall.ENOTEMPTY}
	for _, c := range []struct {
		err     error
		noChmod bool
		want    bool
	}{
		{perm, false, true},
		{perm, true, false},
		{notEmpty, false, false},
		{notEmpty, true, false},
		{nil, false, false},
	} {
		if got := chmodMayHelp(c.err, c.noChmod); got != c.want {
			t.Errorf("chmodMayHelp(%v, %v) = %v, want %v", c.err, c.noChmod, got, c.want)
		}
	}
}

package executor

import (
	"os"
	"syscall"
)

// procAttr puts a command in its own process group, so that a timeout or a
// cancel reaches everything it started, and has the kernel kill it should
// the executor die (its group is swept at the next start; see sweep).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// setCredential makes the command run as uid:gid, with no supplementary
// groups.
func setCredential(a *syscall.SysProcAttr, uid, gid uint32) {
	a.Credential = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
}

// notDumpable makes this process' /proc files (its environment among them)
// root's: a job running as the executor's own user cannot read the
// executor's credentials there. Children are dumpable again after exec.
func notDumpable() error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// fileOwner is a file's owner and group.
func fileOwner(fi os.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}

// hasACL says whether path carries a POSIX access ACL (beyond its mode).
// readOnlyMount reports whether path is on a file system mounted read-only
// (ST_RDONLY): nothing there can be changed, whatever its modes.
func readOnlyMount(path string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(path, &st) == nil && st.Flags&1 != 0
}

func hasACL(path string) bool {
	n, err := syscall.Getxattr(path, "system.posix_acl_access", nil)
	return err == nil && n > 0
}

package executor

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat returns a process's group and start time from /proc.
func procStat(pid int) (pgrp int, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after its closing parenthesis start at field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if f[0] == "Z" {
		return 0, "", fmt.Errorf("process %d is a zombie", pid)
	}
	pgrp, err = strconv.Atoi(f[2])
	return pgrp, f[19], err
}

// pidNamespace names this process' PID namespace on this boot of this
// host: a hash of the kernel's boot id and the namespace's inode (the
// inode alone repeats across hosts, the host's own namespace's always),
// in 8 lower-case letters and digits; "" when /proc does not tell.
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	h := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "\x00" + ns))
	return strings.ToLower(base32.StdEncoding.EncodeToString(h[:5]))
}

// changeTime is fi's inode change time (ctime), which no user can set.
func changeTime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}

func processStart(pid int) string {
	_, start, _ := procStat(pid)
	return start
}

// processAlive reports whether pid is still the process that started at start.
func processAlive(pid int, start string) bool {
	_, s, err := procStat(pid)
	return err == nil && (start == "" || s == start)
}

// killMarked SIGKILLs the processes whose environment holds every marker
// (whatever their process group: one that left it is found too), and
// returns how many.
func killMarked(markers []string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, _, err := procStat(pid); err != nil {
			continue // gone, or a zombie
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !hasAll(bytes.Split(env, []byte{0}), markers) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// killLeftovers SIGKILLs, in one scan of /proc, the processes whose
// environment holds every marker of any of runs (the first marker, the
// run id's, is looked up; the others are checked), and returns how many.
// A process whose group skip names (a run still running) is not read: job
// environments can be large, and only a process that left its group can be
// a leftover.
func killLeftovers(runs [][]string, skip func(pgrp int) bool) int {
	byFirst := make(map[string][][]string, len(runs))
	for _, r := range runs {
		if len(r) > 0 {
			byFirst[r[0]] = append(byFirst[r[0]], r[1:])
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		pgrp, _, err := procStat(pid)
		if err != nil || skip != nil && skip(pgrp) {
			continue // gone, a zombie, or in a live run's group
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !bytes.Contains(env, []byte("_RUN_ID=")) {
			continue
		}
		if !markedByAny(bytes.Split(env, []byte{0}), byFirst) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// markedByAny tells whether env holds a first marker of byFirst together
// with all the other markers of one of its runs.
func markedByAny(env [][]byte, byFirst map[string][][]string) bool {
	for _, v := range env {
		for _, rest := range byFirst[string(v)] {
			if hasAll(env, rest) {
				return true
			}
		}
	}
	return false
}

func hasAll(env [][]byte, markers []string) bool {
	for _, m := range markers {
		found := false
		for _, e := range env {
			if string(e) == m {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

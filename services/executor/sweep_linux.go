package executor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
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

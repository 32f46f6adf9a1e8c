package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports (the kernel ABI fixes it).
const clockTicks = 100

// procCPU is the CPU time a process has used (user + system), or with
// children set, that of its reaped children (the executor's jobs).
func procCPU(pid int, children bool) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0
	}
	// f[k] is field k+3: utime 14, stime 15, cutime 16, cstime 17.
	first := 11
	if children {
		first = 13
	}
	sum := 0
	for k := first; k <= first+1; k++ {
		v, _ := strconv.Atoi(f[k])
		sum += v
	}
	return time.Duration(sum) * time.Second / clockTicks
}

// cpuMeter measures the CPU time named processes use during a phase, to
// show where the two cores went: the process under test, this process (the
// load generator) and the others it is given. A phase measured in rounds,
// between other phases' rounds, is counted from start to stop in each
// round, and per adds the rounds up.
type cpuMeter struct {
	names   []string
	pids    []int
	kids    []bool
	before  []time.Duration
	used    []time.Duration // the rounds stopped so far
	running bool
}

func newCPUMeter() *cpuMeter { return &cpuMeter{} }

func (m *cpuMeter) add(name string, pid int, children bool) *cpuMeter {
	m.names = append(m.names, name)
	m.pids = append(m.pids, pid)
	m.kids = append(m.kids, children)
	return m
}

// start begins a round.
func (m *cpuMeter) start() *cpuMeter {
	if m.used == nil {
		m.used = make([]time.Duration, len(m.pids))
	}
	m.before = make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		m.before[i] = procCPU(pid, m.kids[i])
	}
	m.running = true
	return m
}

// stop ends the round started last.
func (m *cpuMeter) stop() {
	if !m.running {
		return
	}
	for i, pid := range m.pids {
		m.used[i] += procCPU(pid, m.kids[i]) - m.before[i]
	}
	m.running = false
}

// per reports the CPU each process used per n units of work, in ms per
// 1000 units (= µs per unit), e.g. "ingress 310, bench+nats 420, redis 40":
// the rounds stopped, and the one running up to now.
func (m *cpuMeter) per(n int) string {
	if n <= 0 || m.used == nil {
		return ""
	}
	parts := make([]string, 0, len(m.pids))
	for i, pid := range m.pids {
		used := m.used[i]
		if m.running {
			used += procCPU(pid, m.kids[i]) - m.before[i]
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", m.names[i], float64(used.Microseconds())/float64(n)))
	}
	return strings.Join(parts, ", ")
}

// total is the CPU time, in µs per n, of the processes measured but
// those named skip; 0 when nothing was measured.
func (m *cpuMeter) total(n int, skip ...string) float64 {
	if n <= 0 || m.used == nil {
		return 0
	}
	var sum time.Duration
	for i, pid := range m.pids {
		if slices.Contains(skip, m.names[i]) {
			continue
		}
		used := m.used[i]
		if m.running {
			used += procCPU(pid, m.kids[i]) - m.before[i]
		}
		sum += used
	}
	return float64(sum.Microseconds()) / float64(n)
}

// redisPID is the pid of the Redis server the bench uses when it runs on
// this host (a loopback address, a redis-server process of that pid), else
// 0: a Redis elsewhere or in a container reports a pid of another namespace.
func redisPID(ctx context.Context, rdb *redis.Client) int {
	host, _, err := net.SplitHostPort(rdb.Options().Addr)
	if err != nil || !(host == "localhost" || net.ParseIP(host).IsLoopback()) {
		return 0
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			if pid, _ := strconv.Atoi(v); isRedisServer(pid) {
				return pid
			}
		}
	}
	return 0
}

// isRedisServer reports whether pid is a redis-server process.
func isRedisServer(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "redis-server")
}

// fsType names the file system dir is on ("ext4", "tmpfs", …), from the
// longest mount point in /proc/mounts that holds it.
func fsType(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "?"
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "?"
	}
	best, typ := "", "?"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := strings.ReplaceAll(f[1], `\040`, " ")
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, f[2]
		}
	}
	return typ
}

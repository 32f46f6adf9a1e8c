package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// startRedisServer runs redis-server on a free loopback port with args
// (a Sentinel with "--sentinel" and its configuration file first), stopped
// at the end of the test, and returns the port once it answers. Without a
// redis-server on PATH the test is skipped.
func startRedisServer(t *testing.T, password string, args ...string) int {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server on PATH for a Sentinel")
	}
	port := testenv.FreePort(t)
	args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Password: password})
	defer c.Close()
	testenv.Eventually(t, 10*time.Second, func() error { return c.Ping(context.Background()).Err() })
	return port
}

// startSentinel runs a Sentinel (with password sentinelPW, none when
// empty) that monitors 127.0.0.1:masterPort (password masterPW) as master,
// and returns its port.
func startSentinel(t *testing.T, master string, masterPort int, masterPW, sentinelPW string) int {
	t.Helper()
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", master, masterPort)
	if masterPW != "" {
		conf += fmt.Sprintf("sentinel auth-pass %s %s\n", master, masterPW)
	}
	if sentinelPW != "" {
		conf += "requirepass " + sentinelPW + "\n"
	}
	// The Sentinel rewrites its file: one of its own.
	file := filepath.Join(t.TempDir(), "sentinel.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return startRedisServer(t, sentinelPW, file, "--sentinel")
}

// A Sentinel URL carries the master's password (compose runs Redis with
// requirepass) and database: with redis-sentinel://MASTER:PW@… read as a
// master named "MASTER:PW", the dispatcher never became ready. The
// Sentinels' own password comes apart (HOOKRUN_REDIS_SENTINEL_PASSWORD).
func TestOpenRedis_SentinelURLWithPasswordAndDB(t *testing.T) {
	t.Parallel()
	masterPort := startRedisServer(t, "m@ster/PW", "--requirepass", "m@ster/PW")
	sentinelPort := startSentinel(t, "mymaster", masterPort, "m@ster/PW", "sentinelPW")
	// The master's password percent-encoded, a second Sentinel that is down.
	raw := fmt.Sprintf("redis-sentinel://:m%%40ster%%2FPW@mymaster@127.0.0.1:%d,127.0.0.1:%d/3", sentinelPort, testenv.FreePort(t))
	c, err := OpenRedis(raw, "sentinelPW")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "sentinel-probe", "1", time.Minute).Err(); err != nil {
		t.Fatalf("a command through the Sentinel URL %s: %v", raw, err)
	}
	// It landed on the master, in database 3.
	m := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(masterPort), Password: "m@ster/PW", DB: 3})
	defer m.Close()
	if v, err := m.Get(ctx, "sentinel-probe").Result(); err != nil || v != "1" {
		t.Fatalf("the master's database 3 holds %q (%v), want the key set through the Sentinel", v, err)
	}

	// Without the Sentinels' password they refuse to name the master.
	c2, err := OpenRedis(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := c2.Ping(ctx2).Err(); err == nil {
		t.Fatal("a Sentinel with requirepass answered without its password")
	}
}

func TestParseSentinelURL(t *testing.T) {
	t.Parallel()
	type want struct {
		master, user, password string
		addrs                  []string
		db                     int
		tls                    bool
	}
	for _, tc := range []struct {
		raw  string
		want want
	}{
		{"redis-sentinel://mymaster@s1:26379,s2:26379", want{master: "mymaster", addrs: []string{"s1:26379", "s2:26379"}}},
		{"redis-sentinel://:PW@mymaster@s1:26379,s2:26379/2", want{master: "mymaster", password: "PW", addrs: []string{"s1:26379", "s2:26379"}, db: 2}},
		{"redis-sentinel://app:P%40W@mymaster@s1,s2", want{master: "mymaster", user: "app", password: "P@W", addrs: []string{"s1:26379", "s2:26379"}}},
		// An unescaped '@' in the password: the userinfo ends at the last '@' but one.
		{"redis-sentinel://:P@W@mymaster@[::1]:26380", want{master: "mymaster", password: "P@W", addrs: []string{"[::1]:26380"}}},
		{"rediss-sentinel://:PW@mymaster@s1:26379/1?dial_timeout=2s", want{master: "mymaster", password: "PW", addrs: []string{"s1:26379"}, db: 1, tls: true}},
	} {
		o, err := parseSentinelURL(tc.raw)
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		got := want{master: o.MasterName, user: o.Username, password: o.Password, addrs: o.SentinelAddrs, db: o.DB, tls: o.TLSConfig != nil}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.raw, got, tc.want)
		}
		if !o.ContextTimeoutEnabled {
			t.Errorf("%s: ContextTimeoutEnabled false", tc.raw)
		}
		if o.TLSConfig != nil && o.TLSConfig.ServerName != "" {
			t.Errorf("%s: TLS ServerName %q for every host, want each host's own", tc.raw, o.TLSConfig.ServerName)
		}
	}
	for _, raw := range []string{
		"redis-sentinel://s1:26379",
		"redis-sentinel://@s1:26379",
		"redis-sentinel://mymaster@",
		"redis-sentinel://mymaster:PW@s1:26379",
		"redis-sentinel://mymaster@s1:26379?master_name=other",
		"redis-sentinel://mymaster@s1:26379?addr=s2:26379",
		"redis-sentinel://mymaster@s1:26379#mymaster",
		"redis-sentinel://mymaster@s1:26379?route_randomly=true",
	} {
		if _, err := parseSentinelURL(raw); err == nil {
			t.Errorf("%s: accepted", raw)
		}
	}
}

// silentServer accepts connections and never answers, as a Redis whose
// process hangs, or a black-holed address behind a proxy.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// A command gives up when its context ends: go-redis otherwise waits for
// its read timeout, and a 2 s claim took 5 s against a Redis that accepts
// and never answers, a 1 s readiness probe as long. So too when a Sentinel
// names such a master (skipped without a redis-server for the Sentinel).
func TestOpenRedis_GivesUpWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"redis", func(*testing.T) string { return "redis://" + addr + "/0" }},
		{"redis-sentinel", func(t *testing.T) string {
			_, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			return fmt.Sprintf("redis-sentinel://mymaster@127.0.0.1:%d", startSentinel(t, "mymaster", p, "", ""))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := OpenRedis(tc.url(t), "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = c.Ping(ctx).Err()
			if took := time.Since(start); err == nil || took > time.Second {
				t.Fatalf("a ping with a 300ms context: %v after %s, want an error within 1s", err, took)
			}
		})
	}
}

// go-redis' log lines (a pool that cannot dial) are JSON lines of the
// service's log, not text on stderr ("redis: 2026/11/28 … pool.go:770: …").
// Not parallel: go-redis has one logger for the process.
func TestLogger_RoutesGoRedisLogs(t *testing.T) {
	var out testenv.Buffer
	newLogger(&out, "dispatcher", "info")
	t.Cleanup(logging.Enable) // go-redis' own logger again
	c := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	_ = c.Ping(context.Background()).Err()
	testenv.Eventually(t, 5*time.Second, func() error {
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var l struct{ Level, Msg, Service, Component string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Service == "dispatcher" && l.Component == "redis" &&
				l.Level == "WARN" && strings.Contains(l.Msg, "failed to dial") {
				return nil
			}
		}
		return fmt.Errorf("no JSON line of go-redis' failed dial in %q", out.String())
	})
}

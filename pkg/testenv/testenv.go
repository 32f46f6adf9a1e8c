// Package testenv gives tests real infrastructure: an embedded nats-server
// on a random port with a temporary store, and a Redis — from REDIS_URL,
// else a container when a Docker engine answers and the image is built, else
// 127.0.0.1:6379. Under CI=true a missing Redis fails the test with what to
// start; elsewhere the test is skipped.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/embednats"
)

// NATS is an embedded server for one test.
type NATS struct {
	Server   *server.Server
	URL      string
	StoreDir string
	Port     int
	// Users holds each user's password when the server runs the project's
	// own configuration (StartSecuredNATS): ingress, dispatcher, executor,
	// keys and admin. Empty otherwise: no authentication.
	Users map[string]string
	t     testing.TB
	opts  embednats.Options
	log   *violationLog
}

// ConsumerDir is where the server keeps the files of the consumer of
// stream, in the global account (a server without accounts). Tests remove
// it to make the server lose a consumer's files.
func (n *NATS) ConsumerDir(stream, consumer string) string {
	return filepath.Join(n.StoreDir, "jetstream", "$G", "streams", stream, "obs", consumer)
}

// StartNATS starts an embedded JetStream server on a random port, stopped at
// the end of the test.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	dir := t.TempDir()
	return startNATS(t, embednats.Options{Port: -1, StoreDir: dir}, nil)
}

// StartNATSWith is StartNATS with the server options o (such as a smaller
// MaxPayload); a zero Port is a random port and an empty StoreDir a
// temporary store.
func StartNATSWith(t testing.TB, o embednats.Options) *NATS {
	t.Helper()
	if o.Port == 0 {
		o.Port = -1
	}
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	return startNATS(t, o, nil)
}

func startNATS(t testing.TB, o embednats.Options, users map[string]string) *NATS {
	t.Helper()
	n := &NATS{StoreDir: o.StoreDir, Users: users, t: t, opts: o}
	if o.ConfigFile != "" {
		n.log = &violationLog{}
		n.opts.Logger = n.log
	}
	s, err := embednats.Start(n.opts)
	if err != nil {
		t.Fatal(err)
	}
	n.Server, n.URL, n.Port = s, s.ClientURL(), s.Addr().(*net.TCPAddr).Port
	n.opts.Port = n.Port
	t.Cleanup(func() { n.Server.Shutdown(); n.Server.WaitForShutdown() })
	return n
}

// Restart stops the server and starts it again on the same port and store.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

// Stop shuts the server down (the store is kept).
func (n *NATS) Stop() {
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}

// Start starts a stopped server again on the same port and store.
func (n *NATS) Start() {
	n.t.Helper()
	port := n.Port
	var s *server.Server
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly
		o := n.opts
		o.Port = port
		if s, err = embednats.Start(o); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatal(err)
	}
	n.Server = s
}

// Connect returns a connection and JetStream context with Hookrun's streams
// and buckets ensured, closed at the end of the test.
func (n *NATS) Connect() (*nats.Conn, jetstream.JetStream) {
	n.t.Helper()
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}
	if pw, ok := n.Users["admin"]; ok {
		opts = append(opts, nats.UserInfo("admin", pw))
	}
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.Ensure(ctx, js, bus.Options{}); err != nil {
		n.t.Fatal(err)
	}
	return nc, js
}

var (
	envOnce  sync.Once
	envURL   string
	envErr   error
	localOne sync.Once
	localErr error
)

// RedisURL returns the URL of a Redis for the test: REDIS_URL when set;
// else a container of its own, removed when the test ends, when a Docker
// engine answers and the image is built; else 127.0.0.1:6379. Under
// CI=true no Redis fails the test with what to start; elsewhere it skips.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		envOnce.Do(func() { envURL, envErr = u, pingPatiently(u) })
		if envErr != nil {
			noRedis(t, fmt.Errorf("REDIS_URL=%s: %w", u, envErr))
		}
		return envURL
	}
	if ImageExists(RedisImage) {
		u, err := redisContainer(t)
		if err == nil {
			return u
		}
		t.Logf("Redis container: %v; trying 127.0.0.1:6379", err)
	}
	const local = "redis://127.0.0.1:6379/0"
	localOne.Do(func() { localErr = pingPatiently(local) })
	if localErr != nil {
		noRedis(t, fmt.Errorf("REDIS_URL unset, no Redis image for a container, and 127.0.0.1:6379: %w", localErr))
	}
	return local
}

func noRedis(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("no Redis for tests: %v. Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no (or set REDIS_URL)", err)
	}
	t.Skipf("no Redis for tests (%v); set REDIS_URL or start redis-server on 127.0.0.1:6379", err)
}

// Redis returns a client of the test Redis, closed at the end of the test.
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	return RedisDB(t, -1)
}

// RedisDB is Redis on logical database db of the test Redis (0 to 15), for
// tests whose state must not meet that of the other tests and packages
// sharing the server (such as a store run on a clock of the test's own).
// A negative db is the database of the Redis URL.
func RedisDB(t testing.TB, db int) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if db >= 0 {
		opt.DB = db
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisPatience is how long pingPatiently keeps trying. Its answer is
// cached for the whole test binary, so one ping slowed by a loaded machine
// must not skip (or, under CI=true, fail) every Redis test of a package.
const redisPatience = 20 * time.Second

// pingPatiently pings u until it answers or redisPatience has passed, and
// returns the last error.
func pingPatiently(u string) error {
	deadline := time.Now().Add(redisPatience)
	for {
		err := ping(u)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func ping(u string) error {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// Buffer is a bytes.Buffer that a logger or a process may write while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

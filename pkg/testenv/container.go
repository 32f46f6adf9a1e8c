package testenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// RedisImage is the image of the test Redis container: the official tag,
// which `make images` builds locally from Debian packages when no registry
// is reachable.
var RedisImage = envDefault("HOOKRUN_TEST_REDIS_IMAGE", "redis:7")

func envDefault(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	dockerOnce sync.Once
	dockerOK   bool
)

// DockerAvailable reports whether a Docker engine answers. It also turns
// off testcontainers' reaper, whose image cannot be pulled without a
// registry: every container is removed by the test that started it.
func DockerAvailable() bool {
	dockerOnce.Do(func() {
		if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
			_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		dockerOK = exec.CommandContext(ctx, "docker", "info").Run() == nil
	})
	return dockerOK
}

// ImageExists reports whether image is in the local engine (nothing is pulled).
func ImageExists(image string) bool {
	if !DockerAvailable() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "image", "inspect", image).Run() == nil
}

// redisContainer starts Redis in a container when the engine answers and
// the image is built. The container lives as long as the test binary:
// StopContainers (called from TestMain, or by the last cleanup) removes it.
func redisContainer() (string, error) {
	if !ImageExists(RedisImage) {
		return "", errors.New("no Docker engine or no " + RedisImage + " image (make images)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The container outlives single tests (one Redis per test binary); should
	// the binary die before StopContainers, the server stops itself after
	// 20 minutes and AutoRemove deletes the container.
	c, err := testcontainers.Run(ctx, RedisImage,
		testcontainers.WithEntrypoint("timeout", "1200", "redis-server"),
		testcontainers.WithCmd("--save", "", "--appendonly", "no", "--protected-mode", "no"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.AutoRemove = true }),
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections").WithStartupTimeout(30*time.Second)),
	)
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return "", err
	}
	containersMu.Lock()
	containers = append(containers, c)
	containersMu.Unlock()
	p, err := c.MappedPort(ctx, "6379/tcp")
	if err != nil {
		return "", err
	}
	// Published ports are reached on loopback, never on an address the
	// engine reports for its host.
	return "redis://127.0.0.1:" + p.Port() + "/0", nil
}

var (
	containersMu sync.Mutex
	containers   []testcontainers.Container
)

// StopContainers removes the containers testenv started for the whole test
// binary. Packages that may use a container Redis call it from TestMain:
//
//	func TestMain(m *testing.M) { code := m.Run(); testenv.StopContainers(); os.Exit(code) }
func StopContainers() {
	containersMu.Lock()
	defer containersMu.Unlock()
	for _, c := range containers {
		_ = testcontainers.TerminateContainer(c)
	}
	containers = nil
}

// Container starts image with opts for one test and removes it at the end.
func Container(t testing.TB, image string, opts ...testcontainers.ContainerCustomizer) *testcontainers.DockerContainer {
	t.Helper()
	if !ImageExists(image) {
		if os.Getenv("HOOKRUN_REQUIRE_CONTAINERS") == "true" {
			t.Fatalf("image %s not built: run make images", image)
		}
		t.Skipf("no Docker engine or no %s image (make images)", image)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcontainers.Run(ctx, image, opts...)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

package testenv

import (
	"context"
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

// redisContainer starts a Redis container for one test and removes it at
// the test's end. Should the test binary die first, the server stops itself
// after 20 minutes and AutoRemove deletes the container.
func redisContainer(t testing.TB) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := testcontainers.Run(ctx, RedisImage,
		testcontainers.WithEntrypoint("timeout", "1200", "redis-server"),
		testcontainers.WithCmd("--save", "", "--appendonly", "no", "--protected-mode", "no"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.AutoRemove = true }),
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections").WithStartupTimeout(30*time.Second)),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		return "", err
	}
	p, err := c.MappedPort(ctx, "6379/tcp")
	if err != nil {
		return "", err
	}
	// Published ports are reached on loopback, never on an address the
	// engine reports for its host.
	u := "redis://127.0.0.1:" + p.Port() + "/0"
	return u, ping(u)
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

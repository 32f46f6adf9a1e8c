package testenv

import (
	"os"
	"testing"

	"github.com/hookrun/hookrun/pkg/embednats"
)

// TestRedisContainer_Answers proves the container branch of RedisURL: a
// Redis started by testcontainers-go from the locally built image answers,
// and is removed by the test.
func TestRedisContainer_Answers(t *testing.T) {
	if !ImageExists(RedisImage) {
		if os.Getenv("HOOKRUN_REQUIRE_CONTAINERS") == "true" {
			t.Fatalf("image %s not built: run make images", RedisImage)
		}
		t.Skipf("no Docker engine or no %s image", RedisImage)
	}
	u, err := redisContainer(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(u); err != nil {
		t.Fatalf("container Redis at %s: %v", u, err)
	}
}

func TestNATS_RestartKeepsData(t *testing.T) {
	n := StartNATS(t)
	_, js := n.Connect()
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, "hookrun_jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "default.x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	n.Restart()
	_, js = n.Connect()
	kv, _ = js.KeyValue(ctx, "hookrun_jobs")
	if e, err := kv.Get(ctx, "default.x"); err != nil || string(e.Value()) != "1" {
		t.Fatalf("after restart: %v", err)
	}
}

func TestNATS_StartWithMaxPayload(t *testing.T) {
	n := StartNATSWith(t, embednats.Options{MaxPayload: 64 << 10})
	nc, _ := n.Connect()
	if got := nc.MaxPayload(); got != 64<<10 {
		t.Fatalf("max_payload = %d, want %d", got, 64<<10)
	}
	n.Restart()
	nc, _ = n.Connect()
	if got := nc.MaxPayload(); got != 64<<10 {
		t.Fatalf("max_payload after restart = %d, want %d", got, 64<<10)
	}
	nc, _ = StartNATS(t).Connect()
	if got := nc.MaxPayload(); got != 8<<20 {
		t.Fatalf("StartNATS max_payload = %d, want 8 MiB", got)
	}
}

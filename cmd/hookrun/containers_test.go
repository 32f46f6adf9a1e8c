package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// natsImage is the compose file's default NATS image; `make images` builds
// it locally where no registry can be reached.
const natsImage = "nats:2.15.2-alpine"

// TestContainers_RunSurvivesClusterNodeLoss runs the services against a
// three-node NATS cluster in containers on its own Docker network, with
// streams and buckets at three replicas. One node is stopped, later another
// is cut off the network; deliveries made meanwhile are accepted and each
// runs exactly once.
func TestContainers_RunSurvivesClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers")
	}
	if !testenv.ImageExists(natsImage) {
		if os.Getenv("HOOKRUN_REQUIRE_CONTAINERS") == "true" {
			t.Fatalf("image %s missing: run make images", natsImage)
		}
		t.Skipf("no Docker engine or no %s image (make images)", natsImage)
	}
	ctx := context.Background()
	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"n1", "n2", "n3"}
	routes := "nats://n1:6222,nats://n2:6222,nats://n3:6222"
	nodes := make([]*testcontainers.DockerContainer, 3)
	var urls []string
	for i, name := range names {
		nodes[i] = testenv.Container(t, natsImage,
			testcontainers.WithEntrypoint("/usr/local/bin/nats-server"),
			testcontainers.WithCmd("-js", "-sd", "/data", "--name", name, "--cluster_name", "hookrun",
				"--cluster", "nats://0.0.0.0:6222", "--routes", routes, "--no_advertise", "-p", "4222"),
			testcontainers.WithExposedPorts("4222/tcp"),
			network.WithNetwork([]string{name}, nw),
			testcontainers.WithWaitStrategy(wait.ForLog("Server is ready").WithStartupTimeout(60*time.Second)),
		)
		p, err := nodes[i].MappedPort(ctx, "4222/tcp")
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, "nats://127.0.0.1:"+p.Port())
	}
	s := StartStack(t, strings.Join(urls, ","), testenv.RedisURL(t),
		"HOOKRUN_STREAM_REPLICAS=3", "HOOKRUN_PUBLISH_TIMEOUT=3s", "HOOKRUN_DISPATCH_ACK_WAIT=5s", "HOOKRUN_EXECUTOR_ACK_WAIT=5s")
	ep, ledger := chaosSetup(t, s, "0")

	snd := &sender{accepted: map[string]string{}, codes: map[string]int{}}
	deliver := func(from, n int) {
		mk := signedDeliveries(s.Ingress+ep, chaosSecret, "evt-", 128)
		c := benchClient(4)
		for i := from; i < from+n; i++ {
			testenv.Eventually(t, 60*time.Second, func() error {
				code := do(c, mk(int64(i)))
				snd.mu.Lock()
				snd.codes[code]++
				snd.mu.Unlock()
				if code != "202" {
					return fmt.Errorf("event %d: %s", i, code)
				}
				return nil
			})
			// The answer's executionId is derived from the event id: read
			// it back from a duplicate delivery (same event id).
			snd.mu.Lock()
			snd.accepted[fmt.Sprintf("evt-%d", i)] = ""
			snd.mu.Unlock()
		}
	}
	deliver(0, 20)

	stop := 10 * time.Second
	if err := nodes[0].Stop(ctx, &stop); err != nil {
		t.Fatal(err)
	}
	deliver(20, 20)
	if err := nodes[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "network", "disconnect", nw.Name, nodes[1].GetContainerID()).CombinedOutput()
	if err != nil {
		t.Fatalf("disconnect n2: %v %s", err, out)
	}
	deliver(40, 20)
	if out, err := exec.Command("docker", "network", "connect", "--alias", "n2", nw.Name, nodes[1].GetContainerID()).CombinedOutput(); err != nil {
		t.Fatalf("reconnect n2: %v %s", err, out)
	}

	// Every event ran exactly once.
	testenv.Eventually(t, 90*time.Second, func() error {
		got := readLedger(t, ledger)
		if len(got) < 60 {
			return fmt.Errorf("%d of 60 runs executed", len(got))
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	got := readLedger(t, ledger)
	if len(got) != 60 {
		t.Fatalf("%d distinct runs executed, want 60", len(got))
	}
	for id, attempts := range got {
		if len(attempts) != 1 {
			t.Errorf("run %s executed %d times", id, len(attempts))
		}
	}
	t.Logf("60 events through node loss and a partition; ingress answers %v", snd.codes)
}

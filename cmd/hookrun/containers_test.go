package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
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
	type answer struct {
		DeliveryID  string `json:"deliveryId"`
		ExecutionID string `json:"executionId"`
		Duplicate   bool   `json:"duplicate"`
	}
	answers := map[int]answer{}
	deliver := func(from, n int) {
		mk := signedDeliveries(s.Ingress+ep, chaosSecret, "evt-", 128)
		c := benchClient(4)
		for i := from; i < from+n; i++ {
			testenv.Eventually(t, 60*time.Second, func() error {
				resp, err := c.Do(mk(int64(i)))
				code := "error"
				var a answer
				if err == nil {
					code = strconv.Itoa(resp.StatusCode)
					_ = json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
				}
				snd.mu.Lock()
				snd.codes[code]++
				snd.mu.Unlock()
				if code != "202" {
					return fmt.Errorf("event %d: %s", i, code)
				}
				answers[i] = a
				return nil
			})
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
	deadline := time.Now().Add(90 * time.Second)
	for len(readLedger(t, ledger)) < 60 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if got := readLedger(t, ledger); len(got) < 60 {
		// Say where each missing run stopped: its delivery's outcome and
		// the run's status.
		for i := range 60 {
			a := answers[i]
			if _, ok := got[a.ExecutionID]; ok {
				continue
			}
			var d, r json.RawMessage
			dc := s.API("GET", "/v1/deliveries/"+a.DeliveryID, nil, &d)
			rc := s.API("GET", "/v1/runs/"+a.ExecutionID, nil, &r)
			t.Errorf("event %d (answer %+v) never ran: delivery %d %s; run %d %s", i, a, dc, d, rc, r)
			diagnoseRun(t, urls, a.ExecutionID, fmt.Sprintf("evt-%d", i))
		}
		t.Fatalf("%d of 60 runs executed; ingress answers %v", len(got), snd.codes)
	}
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

// diagnoseRun prints what the cluster holds about a run that never ran: its
// status history, every delivery of its event and their outcomes, the
// run requests in RUNS that name it, and the job consumer's state.
func diagnoseRun(t *testing.T, urls []string, runID, eventID string) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Logf("diagnose: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := runstatus.History(ctx, js, "default", runID)
	for _, r := range h {
		t.Logf("  run %s: %s attempt %d delivery %s", runID, r.Status, r.Attempt, r.DeliveryID)
	}
	if err != nil {
		t.Logf("  run history: %v", err)
	}
	scan := func(stream string, match func(m *jetstream.RawStreamMsg) bool, show func(m *jetstream.RawStreamMsg)) {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Logf("  %s: %v", stream, err)
			return
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Logf("  %s info: %v", stream, err)
			return
		}
		t.Logf("  %s state: %+v", stream, info.State)
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			if match(m) {
				show(m)
			}
		}
	}
	var deliveries []message.Delivery
	scan(bus.StreamDeliveries, func(m *jetstream.RawStreamMsg) bool {
		return strings.Contains(string(m.Data), `"eventId":"`+eventID+`"`)
	}, func(m *jetstream.RawStreamMsg) {
		var d message.Delivery
		_ = message.Decode(m.Data, message.SchemaDelivery, &d)
		deliveries = append(deliveries, d)
		t.Logf("  DELIVERIES seq %d %s msg-id %q", m.Sequence, d.ID, m.Header.Get(jetstream.MsgIDHeader))
	})
	for _, d := range deliveries {
		// A duplicate's own record, or what its run's record says.
		if r, err := runstatus.DeliveryOutcome(ctx, js, &d); err == nil {
			t.Logf("  delivery %s outcome: %s run %s error %q", d.ID, r.Status, r.RunID, r.Error)
		} else {
			t.Logf("  delivery %s outcome: %v", d.ID, err)
		}
	}
	scan(bus.StreamRuns, func(m *jetstream.RawStreamMsg) bool {
		return strings.Contains(string(m.Data), runID)
	}, func(m *jetstream.RawStreamMsg) {
		t.Logf("  RUNS seq %d msg-id %q", m.Sequence, m.Header.Get(jetstream.MsgIDHeader))
	})
	if c, err := js.Consumer(ctx, bus.StreamRuns, "job_default_ledger"); err == nil {
		if ci, err := c.Info(ctx); err == nil {
			t.Logf("  consumer job_default_ledger: delivered %+v ack floor %+v pending %d ack pending %d redelivered %d waiting %d", ci.Delivered, ci.AckFloor, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
		}
	}
	if c, err := js.Consumer(ctx, bus.StreamDeliveries, bus.ConsumerDispatcher); err == nil {
		if ci, err := c.Info(ctx); err == nil {
			t.Logf("  consumer dispatcher: delivered %+v ack floor %+v pending %d ack pending %d redelivered %d waiting %d leader %s", ci.Delivered, ci.AckFloor, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, leaderOf(ci))
		}
	}
}

func leaderOf(ci *jetstream.ConsumerInfo) string {
	if ci.Cluster == nil {
		return ""
	}
	return ci.Cluster.Leader
}

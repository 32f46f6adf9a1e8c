package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// The chaos tests break things under load on purpose and then count: every
// event a sender got accepted ran exactly once (a run re-executed after an
// executor crash counts once, as attempt 2), and nothing the sender was not
// told was accepted ran. The sender behaves like GitHub's or Stripe's: it
// retries a 503 or a dropped connection with the same event id until it gets
// a 2xx.

const chaosSecret = "chaos-secret-0123456789"

// chaosSetup creates a generic-signed webhook on a job that appends
// "<run id> <attempt>" to a file and sleeps a little, so runs are in flight
// when faults hit.
func chaosSetup(t *testing.T, s *Stack, sleep string) (endpoint, ledger string) {
	t.Helper()
	ledger = filepath.Join(t.TempDir(), "ledger")
	sec := map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Secret", "metadata": map[string]any{"name": "chaos"}, "spec": map[string]any{"value": chaosSecret}}
	if code := s.API("PUT", "/v1/secrets/chaos", sec, nil); code >= 300 {
		t.Fatalf("PUT secret: %d", code)
	}
	j := job("ledger", "/bin/sh", "-c", `echo "$HOOKRUN_RUN_ID $HOOKRUN_RUN_ATTEMPT" >> `+ledger+`; sleep `+sleep)
	j["spec"].(map[string]any)["concurrency"] = 32
	if code := s.API("PUT", "/v1/jobs/ledger", j, nil); code >= 300 {
		t.Fatalf("PUT job: %d", code)
	}
	var w struct {
		Status struct{ EndpointPath string } `json:"status"`
	}
	if code := s.API("PUT", "/v1/webhooks/chaos", webhook("chaos", "ledger", map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "chaos"}}), &w); code >= 300 {
		t.Fatalf("PUT webhook: %d", code)
	}
	return w.Status.EndpointPath, ledger
}

// sender delivers events 0..n-1 at rate per second, each retried until
// accepted, and records the executionId the ingress answered.
type sender struct {
	mu       sync.Mutex
	accepted map[string]string // event id -> executionId
	codes    map[string]int
}

func (snd *sender) run(ctx context.Context, url string, n int, rate float64) {
	mk := signedDeliveries(url, chaosSecret, "evt-", 256)
	c := benchClient(256)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int64) {
			defer wg.Done()
			for attempt := 0; ctx.Err() == nil; attempt++ {
				req := mk(i)
				resp, err := c.Do(req)
				code := "error"
				var ans struct {
					ExecutionID string `json:"executionId"`
				}
				if err == nil {
					code = strconv.Itoa(resp.StatusCode)
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					_ = json.Unmarshal(b, &ans)
				}
				snd.mu.Lock()
				snd.codes[code]++
				if code == "202" {
					snd.accepted["evt-"+strconv.FormatInt(i, 10)] = ans.ExecutionID
				}
				snd.mu.Unlock()
				if code == "202" {
					return
				}
				time.Sleep(time.Duration(min(attempt+1, 10)) * 100 * time.Millisecond)
			}
		}(int64(i))
	}
	wg.Wait()
}

// readLedger returns run id -> attempts that executed it.
func readLedger(t *testing.T, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 2 {
			out[fs[0]] = append(out[fs[0]], fs[1])
		}
	}
	return out
}

// verifyExactlyOnce waits for every accepted event's run to succeed, then
// checks the ledger: each accepted run executed once (or, when
// allowReexecution, possibly again as a later attempt after a crash), and no
// run executed that was never accepted.
func verifyExactlyOnce(t *testing.T, s *Stack, snd *sender, n int, ledger string, allowReexecution bool) {
	t.Helper()
	snd.mu.Lock()
	accepted := map[string]string{}
	for k, v := range snd.accepted {
		accepted[k] = v
	}
	codes := fmt.Sprint(snd.codes)
	snd.mu.Unlock()
	if len(accepted) != n {
		t.Fatalf("sender got %d of %d events accepted (codes %s)", len(accepted), n, codes)
	}
	runIDs := map[string]bool{}
	for _, id := range accepted {
		runIDs[id] = true
	}
	if len(runIDs) != n {
		t.Fatalf("%d distinct executionIds for %d events", len(runIDs), n)
	}
	for id := range runIDs {
		s.WaitRun(id, "succeeded", 90*time.Second)
	}
	got := readLedger(t, ledger)
	reexecuted := 0
	for id, attempts := range got {
		if !runIDs[id] {
			t.Errorf("run %s executed but was never accepted", id)
		}
		if len(attempts) > 1 {
			if !allowReexecution {
				t.Errorf("run %s executed %d times: attempts %v", id, len(attempts), attempts)
			}
			reexecuted++
			for i, a := range attempts {
				if a != strconv.Itoa(i+1) {
					t.Errorf("run %s attempts %v: re-execution must be the next attempt", id, attempts)
				}
			}
		}
	}
	for id := range runIDs {
		if len(got[id]) == 0 {
			t.Errorf("accepted run %s never executed", id)
		}
	}
	t.Logf("%d events accepted, %d runs executed, %d re-executed after a crash; sender saw %s", len(accepted), len(got), reexecuted, codes)
}

func chaosStack(t *testing.T) (*testenv.NATS, *Stack) {
	if testing.Short() {
		t.Skip("chaos tests start processes and run for seconds")
	}
	// The project's NATS configuration, with its per-service users: the
	// recovery paths (redeliveries, resumes, leader reads) must be allowed
	// under them too, not only the happy path.
	n := testenv.StartSecuredNATS(t)
	s := StartStackOn(t, n, testenv.RedisURL(t), "HOOKRUN_PUBLISH_TIMEOUT=1s", "HOOKRUN_DISPATCH_ACK_WAIT=3s", "HOOKRUN_EXECUTOR_ACK_WAIT=3s")
	t.Cleanup(func() { noViolations(t, n) })
	return n, s
}

// noViolations fails the test if NATS refused any service anything.
func noViolations(t *testing.T, n *testenv.NATS) {
	if v := n.Violations(); len(v) > 0 {
		t.Errorf("NATS permission violations: %q", v)
	}
}

func TestChaos_DispatcherKilledUnderLoad(t *testing.T) {
	_, s := chaosStack(t)
	ep, ledger := chaosSetup(t, s, "0")
	snd := &sender{accepted: map[string]string{}, codes: map[string]int{}}
	const n = 1500
	done := make(chan struct{})
	go func() { snd.run(context.Background(), s.Ingress+ep, n, 300); close(done) }()
	time.Sleep(2 * time.Second)
	s.Kill("dispatcher")
	time.Sleep(time.Second)
	s.Start("dispatcher")
	time.Sleep(1500 * time.Millisecond)
	s.Kill("dispatcher")
	s.Start("dispatcher")
	<-done
	verifyExactlyOnce(t, s, snd, n, ledger, false)
}

func TestChaos_ExecutorKilledMidRun(t *testing.T) {
	_, s := chaosStack(t)
	ep, ledger := chaosSetup(t, s, "0.3")
	snd := &sender{accepted: map[string]string{}, codes: map[string]int{}}
	const n = 600
	done := make(chan struct{})
	go func() { snd.run(context.Background(), s.Ingress+ep, n, 200); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	s.Kill("executor")
	time.Sleep(500 * time.Millisecond)
	s.Start("executor")
	<-done
	verifyExactlyOnce(t, s, snd, n, ledger, true)
}

func TestChaos_NATSRestartedUnderLoad(t *testing.T) {
	nats, s := chaosStack(t)
	ep, ledger := chaosSetup(t, s, "0")
	snd := &sender{accepted: map[string]string{}, codes: map[string]int{}}
	const n = 1200
	done := make(chan struct{})
	go func() { snd.run(context.Background(), s.Ingress+ep, n, 300); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	nats.Stop()
	// During the outage the ingress answers 503 with Retry-After.
	code, hdr := rawPost(t, s.Ingress+ep)
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("during the NATS outage: %d Retry-After=%q, want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	time.Sleep(2 * time.Second)
	nats.Start()
	<-done
	verifyExactlyOnce(t, s, snd, n, ledger, false)
	snd.mu.Lock()
	defer snd.mu.Unlock()
	if snd.codes["503"] == 0 {
		t.Errorf("no 503 seen during the outage: %v", snd.codes)
	}
}

func TestChaos_RedisStoppedAndStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH")
	}
	port := strconv.Itoa(freePortInt(t))
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		testenv.DieWithTest(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, func() error {
			out, err := exec.Command("redis-cli", "-p", port, "ping").Output()
			if err != nil || !strings.Contains(string(out), "PONG") {
				return fmt.Errorf("redis not up: %v", err)
			}
			return nil
		})
		return cmd
	}
	rs := startRedis()
	t.Cleanup(func() { _ = rs.Process.Kill(); _ = rs.Wait() })
	n := testenv.StartSecuredNATS(t)
	s := StartStackOn(t, n, "redis://127.0.0.1:"+port+"/0", "HOOKRUN_DISPATCH_PAUSE=500ms")
	t.Cleanup(func() { noViolations(t, n) })
	ep, ledger := chaosSetup(t, s, "0")
	snd := &sender{accepted: map[string]string{}, codes: map[string]int{}}
	const total = 1200
	done := make(chan struct{})
	go func() { snd.run(context.Background(), s.Ingress+ep, total, 300); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	_ = rs.Process.Kill()
	_ = rs.Wait()
	// The dispatcher reports not ready while it cannot claim.
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + s.Procs["dispatcher"].addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			return fmt.Errorf("dispatcher /readyz %d while Redis is down", resp.StatusCode)
		}
		return nil
	})
	time.Sleep(time.Second)
	rs = startRedis()
	<-done
	verifyExactlyOnce(t, s, snd, total, ledger, false)
}

func TestChaos_ClusterNodeLostUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos")
	}
	c := testenv.StartCluster(t, 3)
	s := StartStack(t, c.URL(), testenv.RedisURL(t), "HOOKRUN_STREAM_REPLICAS=3", "HOOKRUN_PUBLISH_TIMEOUT=2s", "HOOKRUN_DISPATCH_ACK_WAIT=5s", "HOOKRUN_EXECUTOR_ACK_WAIT=5s")
	ep, ledger := chaosSetup(t, s, "0")
	snd := &sender{accepted: map[string]string{}, codes: map[string]int{}}
	const n = 900
	done := make(chan struct{})
	go func() { snd.run(context.Background(), s.Ingress+ep, n, 200); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	c.Stop(0)
	time.Sleep(3 * time.Second)
	c.Start(0)
	<-done
	// A run whose executor was connected to the lost node may lose its
	// in-progress acks and be redelivered: at-least-once execution, which
	// the ledger checks is a successive attempt of the same run.
	verifyExactlyOnce(t, s, snd, n, ledger, true)
}

func rawPost(t *testing.T, url string) (int, http.Header) {
	mk := signedDeliveries(url, chaosSecret, "probe-", 64)
	resp, err := http.DefaultClient.Do(mk(time.Now().UnixNano()))
	if err != nil {
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func freePortInt(t *testing.T) int {
	a := freeAddr(t)
	_, p, _ := strings.Cut(a, ":")
	n, _ := strconv.Atoi(p)
	return n
}

package ingress

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/service"
)

// With HOOKRUN_SHUTDOWN_DELAY, an ingress told to stop goes on taking
// deliveries for that long while /readyz answers 503, so that a load
// balancer takes it out before senders' connections are refused; then it
// stops listening.
func TestRun_ShutdownDelayKeepsTakingDeliveriesWhileNotReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("drained", resource.WebhookSpec{})

	const delay = 2 * time.Second
	a, stop, done := runIngress(t, e, Config{PublishTimeout: 2 * time.Second, ShutdownDelay: delay})
	base := "http://" + a
	get := func(path string) (int, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, _, _ := get("/readyz"); code != http.StatusOK; code, _, _ = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatal("the ingress never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	stopped := time.Now()
	stop()
	time.Sleep(200 * time.Millisecond)
	if code, body, err := get("/readyz"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while stopping: %d %s %v; want 503 shutting down", code, body, err)
	}
	resp, err := http.Post(base+hookPath(w), "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatalf("a delivery while stopping: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a delivery while stopping: %d, want 202", resp.StatusCode)
	}
	// Kept-alive connections are let go while draining: the sender's next
	// delivery goes over a new one (to a ready instance), not over one
	// cut when the delay ends.
	if !resp.Close {
		t.Error("a delivery while stopping was answered without Connection: close")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		if took := time.Since(stopped); took < delay {
			t.Errorf("stopped after %v, before the delay of %v", took, delay)
		}
	case <-time.After(delay + 10*time.Second):
		t.Fatal("Run did not return after the delay")
	}
	if _, _, err := get("/readyz"); err == nil {
		t.Error("still listening after the delay")
	}
}

// A delivery whose body is still arriving when the ingress is told to stop
// (within ReadTimeout, past the publish's own bound) is read, stored and
// answered before the server closes: the shutdown's grace counts the time
// a body may take. It was the publish's bound alone: the connection was
// closed mid-body, or after the write with no answer (and the sender,
// told nothing, sent it again).
func TestRun_StopWaitsForABodyStillArriving(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("slow-body", resource.WebhookSpec{})
	// The publish's bound alone: 4 × 100 ms + 1 s + 5 s = 6.4 s.
	a, stop, done := runIngress(t, e, Config{PublishTimeout: 100 * time.Millisecond, ReadTimeout: 20 * time.Second})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + a + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the ingress never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"pad":"` + strings.Repeat("x", 66) + `"}` // 76 bytes, one each 100 ms: 7.6 s
	if _, err := io.WriteString(c, "POST "+hookPath(w)+" HTTP/1.1\r\nHost: ingress\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop()
	dribble(c, body, 100*time.Millisecond)
	got, _ := waitClosed(t, c, 30*time.Second)
	if !strings.Contains(got, " 202 ") {
		t.Fatalf("a delivery whose body was arriving at the stop: answered %q, want 202", got)
	}
	if n := len(e.storedFor(w)); n != 1 {
		t.Fatalf("%d deliveries stored, want 1", n)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

// runIngress runs an ingress of cfg (on a free port) beside e's, on e's
// NATS, and returns its address, what stops it and Run's result.
func runIngress(t *testing.T, e *env, cfg Config) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	cfg.HTTPAddr = "127.0.0.1:0"
	log := slog.New(slog.DiscardHandler)
	in := New(cfg, e.js, catalog.New(e.js, e.cfg.Box, log), nil, service.NewHealth("ingress"), log)
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, func(a net.Addr) { addr <- a }) }()
	return (<-addr).String(), stop, done
}

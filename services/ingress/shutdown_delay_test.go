package ingress

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	log := slog.New(slog.DiscardHandler)
	in := New(Config{Common: service.Common{HTTPAddr: "127.0.0.1:0"}, PublishTimeout: 2 * time.Second, ShutdownDelay: delay},
		e.js, catalog.New(e.js, e.cfg.Box, log), nil, service.NewHealth("ingress"), log)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, func(a net.Addr) { addr <- a }) }()
	base := "http://" + (<-addr).String()
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

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
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A listen error (the port is taken) must come back from Run: it cancels
// the group's context, which must not be mistaken for the caller's stop, or
// hookrun-ingress exits 0 without a word and hookrun dev waits 30 s for an
// ingress that never starts.
func TestRun_ReturnsTheListenErrorOfATakenAddress(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t)
	_, js := n.Connect()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	log := slog.New(slog.DiscardHandler)
	cfg := Config{Common: service.Common{HTTPAddr: taken.Addr().String()}}
	in := New(cfg, js, catalog.New(js, testenv.NewConfig(t, js).Box, log), nil, service.NewHealth("ingress"), log)

	done := make(chan error, 1)
	go func() { done <- in.Run(context.Background(), nil) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
			t.Fatalf("Run on a taken address = %v, want its listen error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run on a taken address did not return")
	}
}

// With HOOKRUN_OPS_ADDR the metrics are served there only: the senders'
// port, which is public, answers /metrics as any unknown path, and keeps
// the probes a load balancer polls.
func TestRun_OpsAddrServesTheMetricsApartFromTheSendersPort(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t)
	_, js := n.Connect()
	log := slog.New(slog.DiscardHandler)
	ops := testenv.FreeAddr(t)
	cfg := Config{Common: service.Common{HTTPAddr: "127.0.0.1:0", OpsAddr: ops}, PublishTimeout: time.Second}
	in := New(cfg, js, catalog.New(js, testenv.NewConfig(t, js).Box, log), nil, service.NewHealth("ingress"), log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, func(a net.Addr) { addrs <- a }) }()
	var public string
	select {
	case a := <-addrs:
		public = "http://" + a.String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start")
	}
	get := func(url string) (int, string) {
		t.Helper()
		var code int
		var body string
		testenv.Eventually(t, 5*time.Second, func() error {
			resp, err := http.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			code, body = resp.StatusCode, string(b)
			return nil
		})
		return code, body
	}
	if code, body := get("http://" + ops + "/metrics"); code != 200 || !strings.Contains(body, "hookrun_ingress_") {
		t.Fatalf("ops /metrics = %d %.200s", code, body)
	}
	if code, body := get(public + "/metrics"); code != 404 || !strings.Contains(body, "endpoint_not_found") {
		t.Fatalf("public /metrics = %d %.200s, want the 404 of an unknown path", code, body)
	}
	for _, base := range []string{public, "http://" + ops} {
		if code, _ := get(base + "/healthz"); code != 200 {
			t.Fatalf("%s/healthz = %d", base, code)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after stop: %v", err)
	}
}

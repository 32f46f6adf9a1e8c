package ingress

import (
	"context"
	"log/slog"
	"net"
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

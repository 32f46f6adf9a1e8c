package ingress

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// With Redis unreachable the ingress still stores deliveries (only the
// duplicate flag past JetStream's window needs Redis), so it must stay
// ready: a load balancer or Kubernetes would otherwise take every ingress
// out at once. /readyz names Redis as degraded. A service that needs Redis
// (the dispatcher's claims) is not ready on the same connections.
func TestReadiness_RedisOutageLeavesTheIngressReady(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t)
	n.Connect() // lays out the streams and buckets, as the keys service would
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	common := service.Common{HTTPAddr: testenv.FreeAddr(t), NATSURL: n.URL, RedisURL: "redis://" + testenv.FreeAddr(t) + "/0", Replicas: 1}

	other, err := service.Open(ctx, "dispatcher", common, log)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Health.Ready(ctx); err == nil || !strings.HasPrefix(err.Error(), "redis:") {
		t.Fatalf("a service that needs Redis: Ready = %v, want a redis failure", err)
	}

	d, err := service.Open(ctx, "ingress", common, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in, err := FromDeps(ctx, Config{Common: common}, d)
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan net.Addr, 1)
	go func() { _ = in.Run(ctx, func(a net.Addr) { addr <- a }) }()
	url := "http://" + (<-addr).String() + "/readyz"
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body["degraded"], "redis:") {
			return &readyErr{resp.StatusCode, body}
		}
		return nil
	})
}

type readyErr struct {
	code int
	body map[string]string
}

func (e *readyErr) Error() string {
	b, _ := json.Marshal(e.body)
	return "readyz " + http.StatusText(e.code) + " " + string(b)
}

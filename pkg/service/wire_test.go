package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A service started before NATS answers probes at once: alive, not ready,
// and a sender gets 503 with Retry-After (not a refused connection). Once
// NATS is there Open returns and hands the address to the service.
func TestOpen_ServesProbesWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	t.Run("one-address", func(t *testing.T) { t.Parallel(); testServesProbesWhileWaiting(t, false) })
	t.Run("ops-address", func(t *testing.T) { t.Parallel(); testServesProbesWhileWaiting(t, true) })
}

// testServesProbesWhileWaiting: with an ops address (HOOKRUN_OPS_ADDR) the
// metrics are there while the service starts, as they are after, and not
// on the service's own address.
func testServesProbesWhileWaiting(t *testing.T, withOps bool) {
	n := testenv.StartNATS(t)
	n.Stop()
	addr := testenv.FreeAddr(t)
	metricsAddr, opsAddr := addr, ""
	if withOps {
		opsAddr = testenv.FreeAddr(t)
		metricsAddr = opsAddr
	}
	type opened struct {
		d   *Deps
		err error
	}
	done := make(chan opened, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		d, err := Open(ctx, "probe", Common{HTTPAddr: addr, OpsAddr: opsAddr, NATSURL: n.URL, Replicas: 1}, slog.New(slog.DiscardHandler))
		done <- opened{d, err}
	}()

	getAt := func(addr, path string) (int, http.Header, string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b), nil
	}
	get := func(path string) (int, http.Header, string, error) { return getAt(addr, path) }
	testenv.Eventually(t, 10*time.Second, func() error {
		code, _, body, err := get("/healthz")
		if err == nil && code != http.StatusOK {
			t.Fatalf("/healthz while starting: %d %s", code, body)
		}
		return err
	})
	code, _, body, err := get("/readyz")
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Fatalf("/readyz while starting: %d %s %v", code, body, err)
	}
	code, hdr, body, err := get("/v1/hooks/anything")
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err != nil || code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "unavailable" {
		t.Fatalf("a delivery while starting: %d Retry-After %q %s %v", code, hdr.Get("Retry-After"), body, err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		code, _, body, err := getAt(metricsAddr, "/metrics")
		if err == nil && (code != http.StatusOK || !strings.Contains(body, `hookrun_ready{service="probe"} 0`)) {
			t.Fatalf("/metrics while starting: %d, hookrun_ready not 0", code)
		}
		return err
	})
	if withOps {
		if code, _, _, _ := get("/metrics"); code == http.StatusOK {
			t.Fatal("/metrics served on the service's address beside HOOKRUN_OPS_ADDR")
		}
	}

	n.Start()
	n.Connect() // lays out the streams and buckets, as the keys service would
	var o opened
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Open did not return once NATS was up")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.d.Close()
	// The address is free again for the service's own server.
	for _, a := range []string{addr, opsAddr} {
		if a == "" {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("the starting server kept %s: %v", a, err)
		}
		ln.Close()
	}
}

// An asynchronous publish whose ack never comes (here: NATS refuses the
// subject, and answers nothing) fails after PublishAsyncTimeout rather than
// staying pending for ever; 4096 such would stall every later publish.
func TestOpen_AsyncPublishWithoutAckFails(t *testing.T) {
	t.Parallel()
	n := testenv.StartSecuredNATS(t)
	n.Connect() // as admin: lays out the streams and buckets
	d, err := Open(context.Background(), "dispatcher", Common{NATSURL: n.URL, NATSUser: "dispatcher", NATSPassword: n.Users["dispatcher"], Replicas: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.JS.PublishAsync("hookrun.deliveries.default.hook.dlv_x", []byte("{}")) // not the dispatcher's to publish
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ok():
		t.Fatal("a refused publish was acknowledged")
	case <-f.Err():
	case <-time.After(PublishAsyncTimeout + 5*time.Second):
		t.Fatalf("no answer %s after the publish: it stays pending", PublishAsyncTimeout+5*time.Second)
	}
	if p := d.JS.PublishAsyncPending(); p != 0 {
		t.Fatalf("%d publishes still pending", p)
	}
}

// HOOKRUN_RETENTION reaches the streams: a service started with it sets the
// MaxAge of DELIVERIES and STATUS, also on streams that already exist.
func TestOpen_AppliesRetention(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t) // streams created with the default retention
	d, err := Open(context.Background(), "keys", Common{NATSURL: n.URL, Replicas: 1, Retention: 30 * time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{bus.StreamDeliveries, bus.StreamStatus} {
		s, err := d.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.MaxAge; got != 30*time.Hour {
			t.Errorf("%s MaxAge %s, want 30h", name, got)
		}
	}
}

// Only the keys service lays out the streams and buckets; another service
// waits for them (deploy/nats/users.conf allows it no stream update), and
// leaves their settings to keys.
func TestOpen_OnlyKeysLaysOutStreams(t *testing.T) {
	t.Parallel()
	n := testenv.StartSecuredNATS(t) // no streams yet
	as := func(name string) Common {
		return Common{NATSURL: n.URL, NATSUser: name, NATSPassword: n.Users[name], Replicas: 1, Retention: 30 * time.Hour}
	}
	opened := make(chan error, 1)
	go func() {
		d, err := Open(context.Background(), "ingress", as("ingress"), slog.New(slog.DiscardHandler))
		if err == nil {
			t.Cleanup(d.Close)
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("the ingress opened before any stream existed: %v", err)
	case <-time.After(2 * time.Second):
	}
	k, err := Open(context.Background(), "keys", as("keys"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the ingress still waits after keys laid out the streams")
	}
	if v := n.Violations(); len(v) > 0 {
		t.Fatalf("permission violations: %q", v)
	}
	// A later retention is applied by keys only.
	d, err := Open(context.Background(), "dispatcher", Common{NATSURL: n.URL, NATSUser: "dispatcher", NATSPassword: n.Users["dispatcher"], Replicas: 1, Retention: 40 * time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := k.JS.Stream(context.Background(), bus.StreamDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 30*time.Hour {
		t.Fatalf("DELIVERIES MaxAge %s after the dispatcher started with 40h, want keys' 30h", got)
	}
}

// Connected to NATS but without the streams and buckets (the keys service
// has not created them yet), /readyz says so, and names the first one
// missing: not "waiting for NATS", which sent operators to a NATS that
// was fine.
func TestOpen_ReadyzSaysItWaitsForTheKeysService(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t) // up, no streams
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		d, err := Open(ctx, "ingress", Common{HTTPAddr: addr, NATSURL: n.URL, Replicas: 1}, slog.New(slog.DiscardHandler))
		if err == nil {
			d.Close()
		}
		done <- err
	}()
	var reason string
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct{ Reason string }
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return err
		}
		reason = r.Reason
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(reason, "waiting for the keys service") {
			return fmt.Errorf("/readyz: %d %q", resp.StatusCode, reason)
		}
		return nil
	})
	if !strings.Contains(reason, "does not exist yet") || strings.Contains(reason, "waiting for NATS") {
		t.Errorf("/readyz reason %q: want the keys service and the first stream missing, not NATS", reason)
	}

	n.Connect() // lays out the streams and buckets, as the keys service would
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Open did not return once the streams were there")
	}
}

// With its credentials in HOOKRUN_NATS_URL (nats://ingress:PW@host) and no
// HOOKRUN_NATS_USER, a service still takes its user's reply inbox,
// _INBOX_ingress: with _INBOX. deploy/nats/users.conf refused its
// subscription, every request timed out, and it stayed not ready for good.
// Its log holds the user, never the password.
func TestOpen_TakesTheNATSUserFromTheURL(t *testing.T) {
	t.Parallel()
	n := testenv.StartSecuredNATS(t)
	n.Connect() // as admin: lays out the streams and buckets
	var logs testenv.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil)).With("service", "ingress")
	url := strings.Replace(n.URL, "nats://", "nats://ingress:"+n.Users["ingress"]+"@", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := Open(ctx, "ingress", Common{NATSURL: url, Replicas: 1}, log)
	if err != nil {
		t.Fatalf("Open with the user in the URL: %v; violations %q", err, n.Violations())
	}
	defer d.Close()
	if err := d.Health.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if v := n.Violations(); len(v) > 0 {
		t.Fatalf("permission violations: %q", v)
	}
	if got := logs.String(); strings.Contains(got, n.Users["ingress"]) || !strings.Contains(got, "nats://ingress:xxxxx@") {
		t.Errorf("the log holds the password, or not the user:\n%s", got)
	}
}

// HOOKRUN_REDIS_URL set for every service at once (hookrun dev, a shared
// environment) opens Redis only where it is used: an executor or keys
// given it would otherwise be not ready while Redis is down.
func TestOpen_OnlyTheIngressAndDispatcherOpenRedis(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dead := "redis://" + testenv.FreeAddr(t) + "/0" // nothing listens there
	for _, name := range []string{"keys", "ingress", "dispatcher", "executor"} {
		wants := name == "ingress" || name == "dispatcher"
		d, err := Open(ctx, name, Common{NATSURL: n.URL, Replicas: 1, RedisURL: dead}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := d.Redis != nil; got != wants {
			t.Errorf("%s: Redis opened = %v, want %v", name, got, wants)
		}
		checked := false
		for _, c := range d.Health.snapshot() {
			checked = checked || c.name == "redis"
		}
		if checked != wants {
			t.Errorf("%s: readiness checks Redis = %v, want %v", name, checked, wants)
		}
		d.Close()
	}
}

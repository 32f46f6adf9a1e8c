package ingress

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
)

// While JetStream stalls, the bodies waiting to be stored are bounded
// (HOOKRUN_MAX_PENDING_BYTES): past the bound a delivery is answered 503
// with Retry-After at once and not stored, instead of piling up in the
// ingress' memory; the bound frees as the held deliveries are answered.
// One body alone over the bound is still taken.
func TestPending_BodiesWaitingForAStalledJetStreamAreBounded(t *testing.T) {
	t.Parallel()
	stall := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(stall) }) }) // a failure ends the stall too
	var stalled atomic.Int32
	e := newEnv(t, func(c *Config) {
		c.MaxPendingBytes = 100
		c.publishWithin = func(nc *nats.Conn, m *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
			if strings.Contains(string(m.Data), "stall-me") {
				stalled.Add(1)
				<-stall
			}
			return bus.PublishWithin(nc, m, timeout)
		}
	})
	e.job("report")
	w := e.webhook("pending", resource.WebhookSpec{})
	path := hookPath(w)

	held := `{"pad":"` + strings.Repeat("x", 60) + `","k":"stall"}` // 77 bytes
	first := make(chan reply, 1)
	go func() { first <- e.post(path, held, "X-Test", "stall-me") }() // the body is stored base64
	deadline := time.Now().Add(10 * time.Second)
	for stalled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first delivery never reached its publish")
		}
		time.Sleep(5 * time.Millisecond)
	}

	overloaded := testutil.ToFloat64(mOverloaded)
	refused := e.post(path, `{"small":"`+strings.Repeat("y", 30)+`"}`) // 43 bytes: 120 > 100
	wantError(t, refused, 503, "unavailable")
	if refused.Header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", refused.Header)
	}
	if testutil.ToFloat64(mOverloaded) <= overloaded {
		t.Fatal("hookrun_ingress_overloaded_total did not count the refusal")
	}
	// A GET holds no body: it is not refused.
	bodiless := e.webhook("pending-get", resource.WebhookSpec{Methods: []string{"GET"}})
	wantAccepted(t, e.do(e.request("GET", hookPath(bodiless), nil)), 202)

	release.Do(func() { close(stall) })
	wantAccepted(t, <-first, 202)
	if got := e.storedFor(w); len(got) != 1 {
		t.Fatalf("%d deliveries stored, want only the one held through the stall", len(got))
	}
	// Answered, the first delivery's bytes are free again.
	wantAccepted(t, e.post(path, `{"small":"`+strings.Repeat("y", 30)+`"}`), 202)
	wantAccepted(t, e.post(path, `{"big":"`+strings.Repeat("z", 200)+`"}`), 202)
}

func TestPendingBodies_TakeAndGive(t *testing.T) {
	p := pendingBodies{max: 10}
	if !p.take(8) || p.take(3) || !p.take(2) || p.take(1) {
		t.Fatal("want 8 and 2 taken, 3 and 1 refused, within 10")
	}
	if !p.take(0) {
		t.Fatal("nothing to hold is always taken")
	}
	p.give(10)
	if !p.take(25) {
		t.Fatal("one body alone over the bound is taken")
	}
	if p.take(1) {
		t.Fatal("taken beside a body over the bound")
	}
	p.give(25)
	unbounded := pendingBodies{}
	if !unbounded.take(1<<40) || !unbounded.take(1<<40) {
		t.Fatal("max 0 bounds nothing")
	}
}

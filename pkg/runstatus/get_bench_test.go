package runstatus_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// BenchmarkGet: one status read from the stream leader (Get), against a
// direct get of the same message (GetDirect, which a lagging replica may
// answer stale; the executor's fast path). Client and server share the
// process, so ns/op counts both sides.
func BenchmarkGet(b *testing.B) {
	_, js := testenv.StartNATS(b).Connect()
	ctx := context.Background()
	now := time.Now().UTC()
	const n = 1000
	for i := range n {
		r := &message.Run{ID: fmt.Sprintf("run_%d", i), Namespace: "default", Job: "j", Status: message.StatusQueued, QueuedAt: &now, WebhookPayload: `{"x":1}`}
		if err := runstatus.Publish(ctx, js, r); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("leader", func(b *testing.B) {
		defer cpuPerOp(b)()
		i := 0
		for b.Loop() {
			if _, err := runstatus.Get(ctx, js, fmt.Sprintf("run_%d", i%n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("direct", func(b *testing.B) {
		s, err := js.Stream(ctx, bus.StreamStatus)
		if err != nil {
			b.Fatal(err)
		}
		defer cpuPerOp(b)()
		i := 0
		for b.Loop() {
			if _, err := runstatus.GetDirect(ctx, s, fmt.Sprintf("run_%d", i%n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// cpuPerOp reports the process' CPU time (client and embedded server) per
// operation: what a read costs the machine, apart from its latency.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkList: the first page of 100 runs of a STATUS stream of 100 000
// runs stored a few seconds before the last 200, read whole (the last event
// of every subject) and from the end (the default above fullScanBelow).
// The stream spans seconds where a real one spans days: the clock margin is
// cut to 100 ms, else the first window (1 s of margin and 1 s to place
// runs in) would be a third of the stream, which is read whole instead.
func BenchmarkList(b *testing.B) {
	_, js := testenv.StartNATS(b).Connect()
	ctx := context.Background()
	publish := func(prefix string, n int) {
		var futs []jetstream.PubAckFuture
		for i := range n {
			now := time.Now().UTC()
			futs = append(futs, storeAsync(b, js, message.Run{ID: fmt.Sprintf("run_%s%06d", prefix, i), Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusSucceeded, QueuedAt: &now, WebhookPayload: `{"x":1}`}))
		}
		waitAcks(b, futs)
	}
	publish("a", 100_000)
	time.Sleep(3 * time.Second)
	publish("b", 200)
	for _, c := range []struct {
		name     string
		fullScan uint64
	}{{"whole", 1 << 62}, {"recent", 20_000}} {
		b.Run(c.name, func(b *testing.B) {
			defer runstatus.SetWindow(c.fullScan, 2000)()
			defer runstatus.SetClockMargin(100 * time.Millisecond)()
			defer cpuPerOp(b)()
			for b.Loop() {
				p, err := runstatus.ListPage(ctx, js, runstatus.Filter{Limit: 100})
				if err != nil || len(p.Runs) != 100 || p.Runs[0].ID != "run_b000199" {
					b.Fatalf("page of %d runs, %v", len(p.Runs), err)
				}
			}
		})
	}
}

package runstatus_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

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

package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

func TestEnsure_IsIdempotentAndCreatesEverything(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect() // Ensure once
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Ensure(ctx, js, bus.Options{}); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	for _, sc := range bus.StreamConfigs(bus.Options{}) {
		s, err := js.Stream(ctx, sc.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", sc.Name, err)
		}
		info, _ := s.Info(ctx)
		if info.Config.Storage != jetstream.FileStorage {
			t.Errorf("stream %s is not file storage", sc.Name)
		}
	}
	runs, _ := js.Stream(ctx, bus.StreamRuns)
	if info, _ := runs.Info(ctx); info.Config.Retention != jetstream.WorkQueuePolicy {
		t.Errorf("RUNS retention %v, want work queue", info.Config.Retention)
	}
	for _, kc := range bus.BucketConfigs(bus.Options{}) {
		if _, err := js.KeyValue(ctx, kc.Bucket); err != nil {
			t.Errorf("bucket %s: %v", kc.Bucket, err)
		}
	}
}

func TestSubjects_PlaceIDsInTheirToken(t *testing.T) {
	if got := bus.DeliverySubject("default", "gh", "dlv_1"); got != "hookrun.deliveries.default.gh.dlv_1" {
		t.Errorf("DeliverySubject = %q", got)
	}
	if got := bus.RunSubject("default", "report"); got != "hookrun.runs.default.report" {
		t.Errorf("RunSubject = %q", got)
	}
	if got := bus.StatusByIDFilter("run_x"); got != "hookrun.status.*.run_x" {
		t.Errorf("StatusByIDFilter = %q", got)
	}
}

func TestSafeToken_RefusesSubjectSyntax(t *testing.T) {
	for _, s := range []string{"", "a.b", "*", ">", "a b", "a\tb", "x>"} {
		if bus.SafeToken(s) {
			t.Errorf("SafeToken(%q) = true", s)
		}
	}
	for _, s := range []string{"run_abc", "dlv_1", "ep_x-y"} {
		if !bus.SafeToken(s) {
			t.Errorf("SafeToken(%q) = false", s)
		}
	}
}

func TestEnsure_RetentionSetsAndUpdatesDeliveriesAndStatus(t *testing.T) {
	n := testenv.StartNATS(t) // Ensure with the defaults
	_, js := n.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	maxAge := func(name string) time.Duration {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		return info.Config.MaxAge
	}
	// The cancel marks last as long: a cancel of a run whose delivery
	// waits in a backlog longer than a day still applies when it comes.
	retained := []string{bus.StreamDeliveries, bus.StreamStatus, "KV_" + bus.BucketCancels}
	for _, name := range retained {
		if got := maxAge(name); got != bus.DefaultRetention {
			t.Errorf("%s MaxAge %s by default, want %s", name, got, bus.DefaultRetention)
		}
	}
	// An existing deployment changing HOOKRUN_RETENTION: the streams follow.
	if err := bus.Ensure(ctx, js, bus.Options{Retention: 36 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, name := range retained {
		if got := maxAge(name); got != 36*time.Hour {
			t.Errorf("%s MaxAge %s after Ensure with 36h", name, got)
		}
	}
	// Work queues keep what is not done yet, whatever the retention.
	for _, name := range []string{bus.StreamRuns, bus.StreamRetries} {
		if got := maxAge(name); got != 0 {
			t.Errorf("%s MaxAge %s, want none", name, got)
		}
	}
}

func TestCancelMark_AppliesToItsDeliveryOnly(t *testing.T) {
	at := time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		mark     []byte
		delivery string
		want     bool
	}{
		{bus.CancelMark("dlv_a", at), "dlv_a", true},
		{bus.CancelMark("dlv_a", at), "dlv_b", false},
		{bus.CancelMark("", at), "dlv_b", true},          // no delivery known: any
		{[]byte(at.Format(time.RFC3339)), "dlv_b", true}, // an older release's mark: any
	} {
		if got := bus.CancelMarkApplies(c.mark, c.delivery); got != c.want {
			t.Errorf("CancelMarkApplies(%q, %q) = %v, want %v", c.mark, c.delivery, got, c.want)
		}
	}
}

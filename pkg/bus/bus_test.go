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

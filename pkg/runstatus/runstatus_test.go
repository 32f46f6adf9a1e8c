package runstatus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

func TestRunstatus_LastEventIsCurrentAndHistoryKeepsAll(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	if _, err := runstatus.Get(ctx, js, "run_missing"); !errors.Is(err, runstatus.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v, want ErrNotFound", err)
	}
	t0 := time.Now().UTC()
	for i, st := range []string{message.StatusQueued, message.StatusRunning, message.StatusSucceeded} {
		q := t0.Add(time.Duration(i) * time.Millisecond)
		r := &message.Run{ID: "run_a", Namespace: "default", Webhook: "w", Job: "j", Status: st, QueuedAt: &q}
		if err := runstatus.Publish(ctx, js, r); err != nil {
			t.Fatal(err)
		}
	}
	later := t0.Add(time.Second)
	if err := runstatus.Publish(ctx, js, &message.Run{ID: "run_b", Namespace: "default", Webhook: "w", Job: "k", Status: message.StatusFailed, QueuedAt: &later}); err != nil {
		t.Fatal(err)
	}
	if err := runstatus.Publish(ctx, js, &message.Run{Kind: message.KindDelivery, ID: "dlv_a", Namespace: "default", Webhook: "w", Status: message.DeliveryDispatched}); err != nil {
		t.Fatal(err)
	}

	r, err := runstatus.Get(ctx, js, "run_a")
	if err != nil || r.Status != message.StatusSucceeded {
		t.Fatalf("Get = %+v, %v; want succeeded", r, err)
	}
	h, err := runstatus.History(ctx, js, "default", "run_a")
	if err != nil || len(h) != 3 || h[0].Status != message.StatusQueued || h[2].Status != message.StatusSucceeded {
		t.Fatalf("History = %+v, %v", h, err)
	}
	runs, err := runstatus.List(ctx, js, runstatus.Filter{})
	if err != nil || len(runs) != 2 || runs[0].ID != "run_b" || runs[1].ID != "run_a" {
		t.Fatalf("List = %+v, %v; want run_b then run_a, no delivery records", runs, err)
	}
	runs, err = runstatus.List(ctx, js, runstatus.Filter{Job: "j", Status: message.StatusSucceeded})
	if err != nil || len(runs) != 1 || runs[0].ID != "run_a" {
		t.Fatalf("filtered List = %+v, %v", runs, err)
	}

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ch, err := runstatus.Watch(wctx, js, "default", "run_a")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for r := range ch {
		seen = append(seen, r.Status)
	}
	if len(seen) != 3 || seen[2] != message.StatusSucceeded {
		t.Fatalf("Watch saw %v, want the three events ending at succeeded", seen)
	}
}

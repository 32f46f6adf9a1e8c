package catalog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// watchDeadline bounds how long a change takes to reach the catalog.
const watchDeadline = 10 * time.Second

// TestCatalog_FollowsKV: puts, endpoint rotations and deletes in the KV
// buckets reach the catalog through its watch. Normally within
// milliseconds; the deadline leaves room for a loaded machine.
func TestCatalog_FollowsKV(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect()
	cfg := testenv.NewConfig(t, js)
	cfg.Job(resource.Job{Metadata: resource.Meta{Name: "j1"}, Spec: resource.JobSpec{Command: []string{"true"}}})

	cat := catalog.New(js, cfg.Box, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cat.Run(ctx) }()
	select {
	case <-cat.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("catalog not ready")
	}
	if _, ok := cat.Job("default", "j1"); !ok {
		t.Fatal("initial job not loaded")
	}

	w := cfg.Webhook(resource.Webhook{Metadata: resource.Meta{Name: "w1"}, Spec: resource.WebhookSpec{Job: "j1"}})
	testenv.Eventually(t, watchDeadline, func() error {
		if got, ok := cat.WebhookByEndpoint(w.Status.EndpointID); !ok || got.Metadata.Name != "w1" {
			return errNotYet
		}
		return nil
	})
	// Rotating the endpoint drops the old id from the index.
	old := w.Status.EndpointID
	w.Status.EndpointID = ""
	w2 := cfg.Webhook(*w)
	testenv.Eventually(t, watchDeadline, func() error {
		if _, ok := cat.WebhookByEndpoint(old); ok {
			return errNotYet
		}
		if _, ok := cat.WebhookByEndpoint(w2.Status.EndpointID); !ok {
			return errNotYet
		}
		return nil
	})
	// Deletes are seen too.
	kv, _ := js.KeyValue(ctx, bus.BucketJobs)
	if err := kv.Delete(ctx, bus.ConfigKey("default", "j1")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, watchDeadline, func() error {
		if _, ok := cat.Job("default", "j1"); ok {
			return errNotYet
		}
		return nil
	})
}

func TestCatalog_SecretValuesHonourGrace(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect()
	cfg := testenv.NewConfig(t, js)
	cfg.Secret("default", "s1", "new-value", "old-value", time.Hour)
	cfg.Secret("default", "s2", "new-value", "old-value", -time.Second)

	cat := catalog.New(js, cfg.Box, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cat.Run(ctx) }()
	<-cat.Ready()
	got, err := cat.SecretValues("default", "s1", time.Now())
	if err != nil || len(got) != 2 || got[0] != "new-value" || got[1] != "old-value" {
		t.Fatalf("in grace: %v %v", got, err)
	}
	got, err = cat.SecretValues("default", "s2", time.Now())
	if err != nil || len(got) != 1 || got[0] != "new-value" {
		t.Fatalf("after grace: %v %v", got, err)
	}
	if _, err := cat.SecretValues("default", "missing", time.Now()); err == nil {
		t.Fatal("missing secret gave no error")
	}
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errNotYet = constErr("not yet")

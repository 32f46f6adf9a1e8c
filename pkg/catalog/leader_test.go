package catalog_test

import (
	"context"
	"testing"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// ReadLeader tells a record that is there, readable or not (one a newer
// release wrote, which a Catalog drops), from one that is not.
func TestReadLeader_TellsDeletedFromUnreadable(t *testing.T) {
	nc, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	cfg := testenv.NewConfig(t, js)
	cfg.Job(resource.Job{Metadata: resource.Meta{Name: "readable"}, Spec: resource.JobSpec{Command: []string{"true"}}})
	kv, err := js.KeyValue(ctx, bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "default.unreadable", []byte(`{"metadata":{"name":"unreadable"},"spec":{"command":"echo hi"}}`)); err != nil {
		t.Fatal(err)
	}
	cfg.Job(resource.Job{Metadata: resource.Meta{Name: "deleted"}, Spec: resource.JobSpec{Command: []string{"true"}}})
	if err := kv.Delete(ctx, "default.deleted"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key             string
		found, readable bool
	}{
		{"default.readable", true, true},
		{"default.unreadable", true, false},
		{"default.deleted", false, false},
		{"default.never", false, false},
	} {
		var j resource.Job
		found, readable, err := catalog.ReadLeader(ctx, nc, bus.BucketJobs, c.key, &j)
		if err != nil || found != c.found || readable != c.readable {
			t.Errorf("%s: found %v readable %v (%v), want found %v readable %v", c.key, found, readable, err, c.found, c.readable)
		}
		if readable && j.Metadata.Name != "readable" {
			t.Errorf("%s: decoded %+v", c.key, j)
		}
	}
}

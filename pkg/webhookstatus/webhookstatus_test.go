package webhookstatus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/testenv"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

func TestWriter_RecordsLastErrorAndDeliveries(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	w := webhookstatus.NewWriter(js)

	if s, err := webhookstatus.Get(ctx, js, "default", "gh"); err != nil || s.LastError != "" || s.LastDeliveryAt != nil {
		t.Fatalf("status of an untouched webhook = %+v, %v", s, err)
	}
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	if err := w.Delivered(ctx, "default", "gh", "uid-1", t0); err != nil {
		t.Fatal(err)
	}
	if err := w.Error(ctx, "default", "gh", "uid-1", "cannot resolve job arguments"); err != nil {
		t.Fatal(err)
	}
	// Within a second of the last write, a delivery is not written again.
	if err := w.Delivered(ctx, "default", "gh", "uid-1", t0.Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	s, err := webhookstatus.Get(ctx, js, "default", "gh")
	if err != nil {
		t.Fatal(err)
	}
	if s.LastError != "cannot resolve job arguments" || s.LastErrorAt == nil || s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(t0) {
		t.Fatalf("status = %+v; want the error and the first delivery time", s)
	}
	if err := w.Delivered(ctx, "default", "gh", "uid-1", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s, _ = webhookstatus.Get(ctx, js, "default", "gh"); !s.LastDeliveryAt.Equal(t0.Add(2*time.Second)) || s.LastError == "" {
		t.Fatalf("status after a later delivery = %+v", s)
	}
	if err := webhookstatus.Clear(ctx, js, "default", "gh"); err != nil {
		t.Fatal(err)
	}
	if s, _ = webhookstatus.Get(ctx, js, "default", "gh"); s.LastError != "" {
		t.Fatalf("status after Clear = %+v", s)
	}
}

// countingJS counts the KV buckets opened through it.
type countingJS struct {
	jetstream.JetStream
	opened atomic.Int64
}

func (c *countingJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	c.opened.Add(1)
	return c.JetStream.KeyValue(ctx, bucket)
}

// Opening the bucket is a JetStream API request of its own: a Writer does
// it once, not for every write.
func TestWriter_OpensTheBucketOnce(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	c := &countingJS{JetStream: js}
	w := webhookstatus.NewWriter(c)
	t0 := time.Now().UTC()
	for i := range 3 {
		if err := w.Delivered(ctx, "default", "gh", "uid-1", t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := w.Error(ctx, "default", "gh", "uid-1", "boom"); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.opened.Load(); n != 1 {
		t.Fatalf("the status bucket was opened %d times for 6 writes, want once", n)
	}
}

// A webhook deleted and made again under its name is another webhook: a
// write for the earlier one (its uid) that lands after the delete shows
// its uid, and the new one's first write starts the record over rather
// than keeping the earlier one's lastError.
func TestWriter_AWriteOfAnotherUIDStartsTheRecordOver(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	w := webhookstatus.NewWriter(js)
	if err := w.Error(ctx, "default", "gh", "uid-old", "job j: cannot start command: no such file"); err != nil {
		t.Fatal(err)
	}
	if s, _ := webhookstatus.Get(ctx, js, "default", "gh"); s.UID != "uid-old" || s.LastError == "" {
		t.Fatalf("status = %+v; want uid-old's lastError", s)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := w.Delivered(ctx, "default", "gh", "uid-new", at); err != nil {
		t.Fatal(err)
	}
	s, _ := webhookstatus.Get(ctx, js, "default", "gh")
	if s.UID != "uid-new" || s.LastError != "" || s.LastErrorAt != nil || s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(at) {
		t.Fatalf("status = %+v; want uid-new's delivery only", s)
	}
}

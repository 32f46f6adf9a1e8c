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

// A webhook deleted and made again under its name is another webhook.
// keys claims the record for the new one; a write for the earlier one (its
// uid) that lands after that is dropped, wherever it falls among the new
// one's writes; a write without a uid keeps the record's; a record of an
// older writer (no uid) is adopted.
func TestWriter_AWriteOfAnotherUIDIsDroppedOnceTheRecordIsClaimed(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	w := webhookstatus.NewWriter(js)
	// Between the delete and the new webhook: a late write of the old one.
	if err := w.Error(ctx, "default", "gh", "uid-old", "job j: cannot start command: gone"); err != nil {
		t.Fatal(err)
	}
	if err := webhookstatus.Claim(ctx, js, "default", "gh", "uid-new"); err != nil {
		t.Fatal(err)
	}
	if s, _ := webhookstatus.Get(ctx, js, "default", "gh"); s.UID != "uid-new" || s.LastError != "" {
		t.Fatalf("status after the claim = %+v; want uid-new's, empty", s)
	}
	if err := w.Error(ctx, "default", "gh", "uid-new", "job j: cannot start command: no such file"); err != nil {
		t.Fatal(err)
	}
	if err := w.Error(ctx, "default", "gh", "uid-old", "job j: a late one"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := w.Delivered(ctx, "default", "gh", "", at); err != nil {
		t.Fatal(err)
	}
	s, _ := webhookstatus.Get(ctx, js, "default", "gh")
	if s.UID != "uid-new" || s.LastError != "job j: cannot start command: no such file" || s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(at) {
		t.Fatalf("status = %+v; want uid-new's error and the delivery", s)
	}

	// A record an older writer left (no uid) is adopted.
	kv, err := js.KeyValue(ctx, "hookrun_webhook_status")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "default.old", []byte(`{"lastError":"from an older release"}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Delivered(ctx, "default", "old", "uid-9", at); err != nil {
		t.Fatal(err)
	}
	if s, _ := webhookstatus.Get(ctx, js, "default", "old"); s.UID != "uid-9" || s.LastError != "from an older release" || s.LastDeliveryAt == nil {
		t.Fatalf("older record after a write = %+v; want it adopted by uid-9", s)
	}
}

// The once-a-second throttle of lastDeliveryAt is per webhook, uid and
// all: a webhook made again under a name has its first delivery recorded
// however soon after the earlier one's last.
func TestWriter_TheDeliveryThrottleIsPerWebhookNotPerName(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	w := webhookstatus.NewWriter(js)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	if err := w.Delivered(ctx, "default", "gh", "uid-old", t0); err != nil {
		t.Fatal(err)
	}
	if err := webhookstatus.Claim(ctx, js, "default", "gh", "uid-new"); err != nil {
		t.Fatal(err)
	}
	if err := w.Delivered(ctx, "default", "gh", "uid-new", t0.Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if s, _ := webhookstatus.Get(ctx, js, "default", "gh"); s.UID != "uid-new" || s.LastDeliveryAt == nil || !s.LastDeliveryAt.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("status = %+v; want uid-new's first delivery", s)
	}
}

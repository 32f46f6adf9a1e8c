package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

func TestLastKV_ReadsValuesRevisionsAndDeletions(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, js := n.Connect()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "default.a", []byte(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := bus.LastKV(ctx, nc, bus.BucketJobs, "default.a")
	if err != nil || string(e.Value) != `{"v":1}` || e.Revision != rev {
		t.Fatalf("LastKV = %+v, %v; want the value at revision %d", e, err, rev)
	}
	for _, k := range []string{"default.never", "bad key", "a..b", ".a", ""} {
		if _, err := bus.LastKV(ctx, nc, bus.BucketJobs, k); !errors.Is(err, bus.ErrKVKeyNotFound) {
			t.Errorf("LastKV(%q) = %v, want not found", k, err)
		}
	}
	if err := kv.Delete(ctx, "default.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.LastKV(ctx, nc, bus.BucketJobs, "default.a"); !errors.Is(err, bus.ErrKVKeyNotFound) {
		t.Fatalf("after delete: %v, want not found", err)
	}
	if _, err := kv.Put(ctx, "default.b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "default.b"); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.LastKV(ctx, nc, bus.BucketJobs, "default.b"); !errors.Is(err, bus.ErrKVKeyNotFound) {
		t.Fatalf("after purge: %v, want not found", err)
	}
}

// On a bucket with three replicas every value is read back right after
// its write, through a connection to any node.
func TestLastKV_ReadsItsOwnWritesOnAReplicatedBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testenv.StartCluster(t, 3)
	c.WaitJetStream()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := bus.EnsureRetry(ctx, js, bus.Options{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bus.BucketSecrets)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		key := fmt.Sprintf("default.s%d", i)
		if _, err := kv.Create(ctx, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.LastKV(ctx, nc, bus.BucketSecrets, key); err != nil {
			t.Fatalf("write %d not read back: %v", i, err)
		}
	}
}

// MsgIDAt names the message id stored at a sequence, and says when nothing
// is stored there: never written, or deleted.
func TestMsgIDAt_NamesTheIDAtASequenceOrNothing(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, js := n.Connect()
	ctx := context.Background()
	m := nats.NewMsg(bus.RunSubject("default", "job"))
	m.Data = []byte("{}")
	ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID("run-1:d-1"))
	if err != nil {
		t.Fatal(err)
	}
	if id, found, err := bus.MsgIDAt(ctx, nc, bus.StreamRuns, ack.Sequence); err != nil || !found || id != "run-1:d-1" {
		t.Fatalf("MsgIDAt(%d) = %q, %v, %v; want run-1:d-1", ack.Sequence, id, found, err)
	}
	for _, seq := range []uint64{0, ack.Sequence + 1} {
		if id, found, err := bus.MsgIDAt(ctx, nc, bus.StreamRuns, seq); err != nil || found {
			t.Errorf("MsgIDAt(%d) = %q, %v, %v; want nothing", seq, id, found, err)
		}
	}
	s, err := js.Stream(ctx, bus.StreamRuns)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	if id, found, err := bus.MsgIDAt(ctx, nc, bus.StreamRuns, ack.Sequence); err != nil || found {
		t.Fatalf("after delete: %q, %v, %v; want nothing", id, found, err)
	}
	if _, _, err := bus.MsgIDAt(ctx, nc, "NO_SUCH_STREAM", 1); err == nil {
		t.Fatal("MsgIDAt on a missing stream: no error")
	}
}

// A leader read that nobody answers (no leader, or a subject NATS refuses
// without a word) ends with an error after LeaderGetTimeout even when the
// caller's context has no deadline (an HTTP request's): no request hangs.
func TestMsgIDAt_UnansweredReadTimesOut(t *testing.T) {
	t.Parallel()
	// NATS refuses the ingress' user this read, and answers nothing.
	n := testenv.StartSecuredNATS(t)
	n.Connect()
	nc, err := nats.Connect(n.URL, nats.UserInfo("ingress", n.Users["ingress"]), nats.CustomInboxPrefix(bus.InboxPrefix("ingress")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := bus.MsgIDAt(context.Background(), nc, bus.StreamRuns, 1)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an unanswered read succeeded")
		}
		if d := time.Since(start); d < bus.LeaderGetTimeout-time.Second {
			t.Fatalf("gave up after %s, before LeaderGetTimeout", d)
		}
	case <-time.After(bus.LeaderGetTimeout + 5*time.Second):
		t.Fatal("an unanswered leader read still waits")
	}
}

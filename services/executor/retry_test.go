package executor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// fakeMsg is a run request message as far as the retry helpers read it.
type fakeMsg struct {
	jetstream.Msg
	retry     int // 0: the dispatcher's original
	delivered uint64
}

func (f fakeMsg) Headers() nats.Header {
	h := nats.Header{}
	if f.retry > 0 {
		h.Set(bus.HeaderRetryAttempt, strconv.Itoa(f.retry))
	}
	return h
}

func (f fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: f.delivered}, nil
}

// Every crash point of a retry (schedule the copy, store the status, ack
// the original) leaves exactly one request that runs the next attempt,
// whichever of the copy and the redelivered original comes first.
func TestOwnedElsewhere_OneRequestRunsEachAttempt(t *testing.T) {
	at := time.Now()
	retrying := &message.Run{Status: message.StatusQueued, Attempt: 1, RetryAt: &at}
	for _, tc := range []struct {
		name  string
		copy  int // 0: the dispatcher's request
		cur   *message.Run
		owned bool
	}{
		{"first run", 0, &message.Run{Status: message.StatusQueued}, false},
		{"original redelivered after the retry status (the ack was lost)", 0, retrying, true},
		{"the copy, due", 2, retrying, false},
		{"a copy for another attempt", 3, retrying, true},
		{"crash after scheduling, before the status: the original runs attempt 2", 0, &message.Run{Status: message.StatusRunning, Attempt: 1}, false},
		{"then the copy finds the original's attempt 2 running", 2, &message.Run{Status: message.StatusRunning, Attempt: 2}, true},
		{"the copy came first: it runs attempt 2", 2, retrying, false},
		{"then the original, redelivered, finds the copy running", 0, &message.Run{Status: message.StatusRunning, Attempt: 2, Copy: 2}, true},
		{"the copy redelivered: its executor died running attempt 2", 2, &message.Run{Status: message.StatusRunning, Attempt: 2, Copy: 2}, false},
		{"a copy when no retry is scheduled (scheduling failed after storing it)", 2, &message.Run{Status: message.StatusQueued, Attempt: 1}, true},
		{"original held by a release without scheduling (no retryAt)", 0, &message.Run{Status: message.StatusQueued, Attempt: 1}, false},
		{"a copy whose next retry could not be scheduled holds it: back, it runs the attempt", 2, &message.Run{Status: message.StatusQueued, Attempt: 2, Copy: 2}, false},
		{"another copy while that one holds it", 3, &message.Run{Status: message.StatusQueued, Attempt: 2, Copy: 2}, true},
		{"the original while that copy holds it", 0, &message.Run{Status: message.StatusQueued, Attempt: 2, Copy: 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := ownedElsewhere(tc.copy, tc.cur); got != tc.owned {
				t.Fatalf("owned elsewhere = %v (%s), want %v", got, why, tc.owned)
			}
		})
	}
}

// A hand-back that cannot succeed soon (a status record this release
// cannot decode) backs off with each redelivery instead of coming back
// every second.
func TestRedeliveryBackoff_GrowsToAMinute(t *testing.T) {
	for delivered, want := range map[uint64]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 50: time.Minute} {
		if got := bus.RedeliveryBackoff(fakeMsg{delivered: delivered}); got != want {
			t.Errorf("after %d deliveries: %s, want %s", delivered, got, want)
		}
	}
}

// A due retry whose move into RUNS is answered "duplicate" while RUNS holds
// no such message (a write a clustered JetStream lost with its leader: its
// message id stays in the duplicate window) is stored under the next id of
// its series, not acked as moved: the run, whose status says that copy
// owns it, would wait for it for ever.
func TestExecutor_DueRetryAnsweredAsADuplicateNotHeldIsStoredAgain(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("dup-retry", `exit 3`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(3*time.Second)
	})
	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusQueued, 1) // attempt 1 failed, attempt 2 scheduled
	// The lost write: the id of attempt 2's copy in RUNS' duplicate
	// window, no message holding it.
	ctx := context.Background()
	m := nats.NewMsg(bus.RunSubject("default", "nobody"))
	m.Data = []byte("lost")
	ack, err := e.js.PublishMsg(ctx, m, jetstream.WithMsgID(retryMsgID(rr.ID, rr.DeliveryID, 2)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.js.Stream(ctx, bus.StreamRuns)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	r := e.final(rr, 30*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "attempt", r.Attempt, 2)
}

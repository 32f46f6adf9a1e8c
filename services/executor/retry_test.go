package executor

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
)

// fakeMsg is a run request message as far as staleForRetry reads it.
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
// the original) leaves exactly one message to run the next attempt.
func TestStaleForRetry_OneMessageRunsEachAttempt(t *testing.T) {
	at := time.Now()
	retrying := &message.Run{Status: message.StatusQueued, Attempt: 1, RetryAt: &at}
	for _, tc := range []struct {
		name  string
		m     fakeMsg
		cur   *message.Run
		stale bool
	}{
		{"first run", fakeMsg{delivered: 1}, &message.Run{Status: message.StatusQueued}, false},
		{"original redelivered after the retry status (crash before the ack)", fakeMsg{delivered: 2}, retrying, true},
		{"original redelivered before the retry status (crash after scheduling): runs attempt 2 now", fakeMsg{delivered: 2}, &message.Run{Status: message.StatusRunning, Attempt: 1}, false},
		{"original held by a release without scheduling (no retryAt)", fakeMsg{delivered: 2}, &message.Run{Status: message.StatusQueued, Attempt: 1}, false},
		{"the copy, due", fakeMsg{retry: 2, delivered: 1}, retrying, false},
		{"the copy after the original ran attempt 2 already", fakeMsg{retry: 2, delivered: 1}, &message.Run{Status: message.StatusRunning, Attempt: 2}, true},
		{"the copy redelivered: its executor died running attempt 2", fakeMsg{retry: 2, delivered: 2}, &message.Run{Status: message.StatusRunning, Attempt: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := staleForRetry(tc.m, tc.cur); got != tc.stale {
				t.Fatalf("stale = %v (%s), want %v", got, why, tc.stale)
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

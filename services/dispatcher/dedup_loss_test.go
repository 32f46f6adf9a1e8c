package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// Redis lost its claims (FLUSHDB; a failover to a replica without them):
// a sender's retry inside the event's dedup window then claims the event
// afresh. The run's record still says the event was queued within the
// window, so the retry is that run's duplicate, whether the run has ended
// or is still in flight. Before, it ran again once the run had ended,
// over the first run's record, and waited for ever while it ran.
func TestDispatcher_RetryInsideTheWindowAfterRedisLostItsClaimsIsADuplicate(t *testing.T) {
	t.Parallel()
	rp := startRedis(t) // a Redis of this test's own: it is flushed
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: rp.addr()})
	t.Cleanup(func() { rc.Close() })
	e := newEnv(t, "redis", rc)
	w := e.hook("flushed", nil)
	e.start(nil)
	ctx := context.Background()
	for _, c := range []struct {
		event string
		ended bool
	}{
		{"evt-ended", true},
		{"evt-in-flight", false},
	} {
		first := e.deliver(w, c.event, `{}`)
		want(t, c.event+": first outcome", e.outcome(first).Status, message.DeliveryDispatched)
		wantStatus := message.StatusQueued
		if c.ended {
			r := e.run(first.RunID)
			now := time.Now().UTC()
			r.Status, r.Attempt, r.StartedAt, r.FinishedAt = message.StatusSucceeded, 1, &now, &now
			if err := runstatus.Publish(ctx, e.js, r); err != nil {
				t.Fatal(err)
			}
			wantStatus = message.StatusSucceeded
		}
		if err := rc.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		retry := e.deliver(w, c.event, `{}`)
		out := e.outcome(retry)
		want(t, c.event+": retry's outcome", out.Status, message.DeliveryDuplicate)
		want(t, c.event+": retry's run", out.RunID, first.RunID)
		want(t, c.event+": retry's record is its own", out.ID, retry.ID)
		r := e.run(first.RunID)
		want(t, c.event+": run's delivery", r.DeliveryID, first.ID)
		want(t, c.event+": run status", r.Status, wantStatus)
		want(t, c.event+": requests of the run", e.runsPerID()[first.RunID], 1)
	}
}

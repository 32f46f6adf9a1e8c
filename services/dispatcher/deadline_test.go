package dispatcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// slowFilter costs about n² CEL steps on a body whose array a holds n
// numbers, none a million apart: true, after comparing every pair.
const slowFilter = `!body.a.exists(x, body.a.exists(y, x == y + 1000000.0))`

// slowBody is a body of n numbers for slowFilter, padded to at least pad
// bytes (the filter's cost limit grows with the body).
func slowBody(n, pad int) string {
	xs := make([]string, n)
	for i := range xs {
		xs[i] = fmt.Sprintf("%d.5", i)
	}
	return fmt.Sprintf(`{"a":[%s],"pad":%q}`, strings.Join(xs, ","), strings.Repeat("p", pad))
}

// A batch of deliveries whose filters together take longer than the
// batch's deadline (here about 13 ms each, 64 of them, against 500 ms)
// still gets dispatched: the deliveries decided in time are stored, only
// the others are handed back. Before, the batch was handed back whole, came
// back whole and missed its deadline again, for ever.
func TestDispatcher_SlowFiltersPastTheBatchDeadlineStillDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	e.conf.AckWait = 2 * time.Second // 250 ms for deciding: each filter well within it
	w := e.hook("slow", func(w *resource.Webhook) { w.Spec.Filter = slowFilter })
	var all []message.Delivery
	for i := range 64 { // stored before the dispatcher starts: they come in one batch
		all = append(all, e.deliver(w, fmt.Sprintf("evt-%02d", i), slowBody(150, 0)))
	}
	e.start(nil)
	for _, d := range all {
		want(t, "outcome of "+d.EventID, e.outcome(d).Status, message.DeliveryDispatched)
	}
	want(t, "run requests", len(e.runRequests()), len(all))
}

// A delivery whose filter alone outlasts the time a batch has for
// deciding cannot be dispatched within the deadline, however often it
// comes back: after a few tries its run fails, with why, instead of coming
// back for ever.
func TestDispatcher_DeliveryTooSlowToDecideAloneFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("too-slow", func(w *resource.Webhook) { w.Spec.Filter = slowFilter })
	e.start(nil)
	// About 8 M steps, within the cost limit of a 1.4 MB body: several
	// times the whole 250 ms deadline of a batch with a 1 s AckWait.
	d := e.deliver(w, "evt-slow", slowBody(1000, 1400<<10))
	want(t, "delivery outcome", e.outcome(d).Status, message.DeliveryRejected)
	r := e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "HOOKRUN_DISPATCH_ACK_WAIT") || !strings.Contains(r.Error, "filter") {
		t.Fatalf("run error %q should say the filter takes too long, and what to change", r.Error)
	}
	want(t, "run requests", len(e.runRequests()), 0)
	// The stream goes on.
	fast := e.hook("fast", nil)
	want(t, "next delivery", e.outcome(e.deliver(fast, "evt-fast", `{}`)).Status, message.DeliveryDispatched)
}

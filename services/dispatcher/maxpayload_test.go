package dispatcher

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A run's status record holds the payload (up to 64 KiB) and the
// arguments as JSON strings, where each control byte takes six bytes
// (\u0001), while the run request carries the payload in base64: a
// record can be larger than its run request, which is measured, and over
// NATS' max_payload when the request is not. Such a record is stored
// without its payload (a marker says so), and a record of a run that will
// not run without its arguments' values too; the run request keeps them
// whole. Before, the record's publish failed and the delivery was handed
// back every second, for ever.
func TestDispatcher_StatusRecordOverMaxPayloadIsCutToFit(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, testenv.StartNATSWith(t, embednats.Options{MaxPayload: 1 << 20}), "redis")
	e.conf.AckWait = largeBodyAckWait
	arg := func(n int) resource.Job {
		var args []resource.Arg
		for i := range n {
			args = append(args, resource.Arg{Name: fmt.Sprintf("a%d", i), Value: "{{ .body }}"})
		}
		return resource.Job{Metadata: resource.Meta{Name: fmt.Sprintf("args-%d", n)}, Spec: resource.JobSpec{Command: []string{"true"}, Args: args}}
	}
	two := e.hook("two-args", nil, arg(2))
	many := e.hook("many-args", nil, arg(24))
	e.start(nil)
	lt := strings.Repeat("\x01", 64<<10)
	body := lt
	text := func(d *message.Delivery) {
		d.ContentType = "text/plain"
		d.Header = map[string][]string{"Content-Type": {"text/plain"}}
	}

	// Two arguments of 64 KB of \x01: the request (about 860 KB) fits, the
	// record with its payload (1.15 MB) does not.
	d := e.deliver(two, "evt-two", body, text)
	want(t, "delivery outcome", e.outcome(d).Status, message.DeliveryDispatched)
	r := e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusQueued)
	want(t, "payload in the record", r.WebhookPayload, message.PayloadLeftOut)
	want(t, "argument in the record", r.Args["a1"], lt)
	rrs := e.runRequests()
	want(t, "run requests", len(rrs), 1)
	want(t, "argument in the request", rrs[0].Args["a0"], lt)
	want(t, "payload in the request", string(rrs[0].Payload), body)

	// 24 of them: the request is over max_payload, the run fails, and so
	// would its record but for its arguments, left out.
	d = e.deliver(many, "evt-many", body, text)
	want(t, "delivery outcome", e.outcome(d).Status, message.DeliveryRejected)
	r = e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "max_payload") {
		t.Fatalf("run error %q should say what is over NATS' max_payload", r.Error)
	}
	want(t, "argument in the failed record", r.Args["a23"], message.ArgLeftOut)
	want(t, "run requests", len(e.runRequests()), 1)
}

// A run request NATS refuses as over its max_payload (runRequestSize
// bounds it from above, so only a server whose limit shrank can) would be
// refused on every try: the run fails with why, over its queued status,
// rather than the delivery coming back for ever.
func TestDispatcher_RunRequestRefusedAsTooLargeFailsTheRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("refused", nil)
	e.start(func(d *Dispatcher) {
		d.publishFault = func(subject string) error {
			if strings.HasPrefix(subject, "hookrun.runs.") {
				return nats.ErrMaxPayload
			}
			return nil
		}
	})
	d := e.deliver(w, "evt-refused", `{}`)
	want(t, "delivery outcome", e.outcome(d).Status, message.DeliveryRejected)
	r := e.run(d.RunID)
	want(t, "run status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "max_payload") {
		t.Fatalf("run error %q should say the run request is over NATS' max_payload", r.Error)
	}
	want(t, "finished", r.FinishedAt != nil, true)
	e.allAcked()
	want(t, "run requests", len(e.runRequests()), 0)
}

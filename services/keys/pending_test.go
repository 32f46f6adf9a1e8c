package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// acceptDelivery publishes a delivery to DELIVERIES with the message id
// the ingress gives it.
func acceptDelivery(t *testing.T, a *testAPI, d message.Delivery) uint64 {
	t.Helper()
	return publishDelivery(t, a, d, d.ReplayOf != "")
}

func newDelivery(ns, webhook, eventID string) message.Delivery {
	d := message.Delivery{
		ID: ident.NewDeliveryID(), Namespace: ns, Webhook: webhook, Job: "report", EventID: eventID,
		Method: "POST", ContentType: "application/json", Body: []byte(`{"topic":"AI"}`),
		Principal: "key:k1", ReceivedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	d.RunID = ident.RunID("uid-"+webhook, eventID, "")
	return d
}

// The ingress answers "status": "queued" with the executionId before a
// dispatcher has stored anything of the run: reading it at once finds it
// queued, until the dispatchers' ack floor passes its delivery.
func TestRuns_ARunNotDispatchedYetIsFoundQueued(t *testing.T) {
	a := newTestAPI(t)
	for i := range 20 { // others before it, not dispatched either
		acceptDelivery(t, a, newDelivery("default", "gh", "evt-other-"+string(rune('a'+i))))
	}
	d := newDelivery("default", "gh", "evt-1")
	acceptDelivery(t, a, d)
	acceptDelivery(t, a, newDelivery("ops", "gh", "evt-after"))

	m := a.must(200, "GET", "/v1/runs/"+d.RunID, nil).JSON()
	if m["id"] != d.RunID || m["status"] != "queued" || m["webhook"] != "gh" || m["job"] != "report" || m["deliveryId"] != d.ID ||
		m["webhook_event_id"] != "evt-1" || m["webhook_payload"] != `{"topic":"AI"}` || m["webhook_source"] != "apikey" || m["queuedAt"] == nil {
		t.Fatalf("a run not dispatched yet: %v", m)
	}
	a.must(200, "GET", "/v1/runs/"+d.RunID+"?namespace=default", nil)
	checkError(t, a.do("GET", "/v1/runs/"+d.RunID+"?namespace=ops", nil), http.StatusNotFound, "not_found", "run "+d.RunID)

	// Its events stream waits for the statuses a dispatcher stores.
	req, _ := http.NewRequest("GET", a.URL+"/v1/runs/"+d.RunID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("events of a run not dispatched yet: %d", resp.StatusCode)
	}
	got := make(chan sseEvent, 16)
	go readSSE(resp, got)
	publishRun(t, a, message.Run{Kind: message.KindRun, ID: d.RunID, Namespace: "default", Webhook: "gh", Job: "report", DeliveryID: d.ID, Status: message.StatusSucceeded})
	select {
	case ev := <-got:
		if ev.name != "status" || !json.Valid([]byte(ev.data)) {
			t.Fatalf("first event: %+v", ev)
		}
		var r message.Run
		_ = json.Unmarshal([]byte(ev.data), &r)
		if r.Status != message.StatusSucceeded {
			t.Fatalf("first status: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no status came")
	}

	// A delivery past the floor that a dispatcher decided apart from a run
	// (acks land out of order: a duplicate has a record of its own) is
	// not shown queued.
	dup := newDelivery("default", "gh", "evt-dup")
	acceptDelivery(t, a, dup)
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: dup.ID, Namespace: "default", Webhook: "gh", RunID: dup.RunID, Status: message.DeliveryDuplicate})
	checkError(t, a.do("GET", "/v1/runs/"+dup.RunID, nil), http.StatusNotFound, "not_found", "run "+dup.RunID)

	// A run id no delivery names is still not found, and so is one whose
	// delivery the dispatchers are past (it would have a status of its own).
	checkError(t, a.do("GET", "/v1/runs/run_nope", nil), http.StatusNotFound, "not_found", "run run_nope")
	other := newDelivery("default", "gh", "evt-2")
	acceptDelivery(t, a, other)
	a.must(200, "GET", "/v1/runs/"+other.RunID, nil)
	ctx := context.Background()
	cons, err := a.js.CreateOrUpdateConsumer(ctx, bus.StreamDeliveries, jetstream.ConsumerConfig{Durable: bus.ConsumerDispatcher, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			_ = msg.DoubleAck(ctx)
		}
		if n == 0 {
			break
		}
	}
	checkError(t, a.do("GET", "/v1/runs/"+other.RunID, nil), http.StatusNotFound, "not_found", "run "+other.RunID)
	// The look-ups' consumers are gone: only the dispatchers' is left.
	testenv.Eventually(t, 5*time.Second, func() error {
		info, err := a.js.Stream(ctx, bus.StreamDeliveries)
		if err != nil {
			return err
		}
		if n := info.CachedInfo().State.Consumers; n != 1 {
			return fmt.Errorf("%d consumers on DELIVERIES", n)
		}
		return nil
	})
}

// A cancel that finds the run only by the look-up of deliveries not
// dispatched yet, whose second read finds it queued after all, stores its
// "cancelled" over that queued only: a run an executor started and ended
// meanwhile keeps its final status. It was stored over anything, and a
// succeeded run read "cancelled while queued".
func TestRuns_CancelOfARunQueuedDuringTheLookUpIsStoredOverThatQueuedOnly(t *testing.T) {
	a := newTestAPI(t)
	d := newDelivery("default", "gh", "evt-race")
	acceptDelivery(t, a, d)
	a.svc.afterPendingScan = func() {
		// A dispatcher queued the run while keys read DELIVERIES.
		publishRun(t, a, message.Run{Kind: message.KindRun, ID: d.RunID, Namespace: "default", Webhook: "gh", Job: "report", DeliveryID: d.ID, Status: message.StatusQueued})
	}
	a.svc.beforeCancelStatus = func() {
		// An executor ran it meanwhile, and it succeeded.
		zero := 0
		publishRun(t, a, message.Run{Kind: message.KindRun, ID: d.RunID, Namespace: "default", Webhook: "gh", Job: "report", DeliveryID: d.ID, Status: message.StatusSucceeded, Attempt: 1, ExitCode: &zero})
	}
	a.must(http.StatusAccepted, "POST", "/v1/runs/"+d.RunID+"/cancel", nil)
	if st := a.must(http.StatusOK, "GET", "/v1/runs/"+d.RunID, nil).JSON()["status"]; st != message.StatusSucceeded {
		t.Fatalf("status after the cancel: %v; want the executor's succeeded kept", st)
	}
}

// A cancel of a run whose delivery no dispatcher has decided yet (the
// dispatchers down, or behind a backlog) ends the run at once: its
// "cancelled" is stored as the run's first status, with the delivery's id
// and the webhook's callback, so it reads cancelled (not queued until a
// dispatcher and an executor reach it), the callback is sent, and the
// dispatcher that comes to the delivery finds the run ended. It was only a
// mark, and the run read queued meanwhile.
func TestRuns_CancelOfARunNotDispatchedYetEndsItAtOnce(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	d := deliveryToNewWebhook(t, a, "gh", "evt-cancel-early", nil)

	got := a.must(http.StatusAccepted, "POST", "/v1/runs/"+d.RunID+"/cancel", nil).JSON()
	if got["status"] != message.StatusCancelled || got["deliveryId"] != d.ID || got["finishedAt"] == nil {
		t.Fatalf("cancel of a run not dispatched yet: %v", got)
	}
	m := a.must(http.StatusOK, "GET", "/v1/runs/"+d.RunID, nil).JSON()
	if m["status"] != message.StatusCancelled || m["error"] != message.CancelledWhileQueued || m["deliveryId"] != d.ID || m["webhook_event_id"] != "evt-cancel-early" {
		t.Fatalf("the run after its cancel: %v", m)
	}
	r, seq, err := runstatus.GetSeq(context.Background(), a.js, d.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Callback == nil || r.Callback.URL != "https://cb.example.com/hook" || r.Kind != message.KindRun || r.Attempt != 0 || r.StartedAt != nil {
		t.Fatalf("the stored record: %+v (callback %+v)", r, r.Callback)
	}
	// It is the run's first status: a dispatcher's "queued", which
	// expects none, is refused.
	q := *r
	q.Status, q.FinishedAt, q.Error, q.Callback = message.StatusQueued, nil, "", nil
	if _, err := runstatus.PublishFirst(context.Background(), a.js, &q); !errors.Is(err, runstatus.ErrNotLatest) {
		t.Fatalf("a dispatcher's queued after the cancel: %v; want it refused", err)
	}
	if _, after, _ := runstatus.GetSeq(context.Background(), a.js, d.RunID); after != seq {
		t.Fatalf("the run's status moved from %d to %d", seq, after)
	}
	checkError(t, a.do("POST", "/v1/runs/"+d.RunID+"/cancel", nil), http.StatusConflict, "run_finished", "cancelled")
}

// A dispatcher that stores the run's "queued" between the look-up and the
// cancel's store wins: the cancel is stored over that queued (keeping the
// arguments the dispatcher resolved), not as a first status beside it.
func TestRuns_CancelOfARunNotDispatchedYetThatADispatcherQueuesMeanwhile(t *testing.T) {
	a := newTestAPI(t)
	d := newDelivery("default", "gh", "evt-cancel-race")
	acceptDelivery(t, a, d)
	once := false
	a.svc.beforeCancelStatus = func() {
		if once {
			return
		}
		once = true
		publishRun(t, a, message.Run{Kind: message.KindRun, ID: d.RunID, Namespace: "default", Webhook: "gh", Job: "report", DeliveryID: d.ID, Status: message.StatusQueued, Args: map[string]string{"topic": "AI"}})
	}
	got := a.must(http.StatusAccepted, "POST", "/v1/runs/"+d.RunID+"/cancel", nil).JSON()
	if got["status"] != message.StatusCancelled {
		t.Fatalf("cancel: %v", got)
	}
	r, err := runstatus.Get(context.Background(), a.js, d.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != message.StatusCancelled || r.Args["topic"] != "AI" {
		t.Fatalf("the run after its cancel: %+v; want cancelled over the dispatcher's queued", r)
	}
}

// deliveryToNewWebhook makes webhook name (with a callback; mod shapes its
// spec) and accepts a delivery of eventID to it, with the run id the
// ingress gives it (of the webhook's uid).
func deliveryToNewWebhook(t *testing.T, a *testAPI, name, eventID string, mod func(spec map[string]any)) message.Delivery {
	t.Helper()
	spec := map[string]any{"job": "report", "callback": map[string]any{"url": "https://cb.example.com/hook"}}
	if mod != nil {
		mod(spec)
	}
	w := a.must(201, "PUT", "/v1/webhooks/"+name, webhookDoc(name, spec)).JSON()
	uid, _ := w["metadata"].(map[string]any)["uid"].(string)
	if uid == "" {
		t.Fatalf("webhook without a uid: %v", w)
	}
	d := newDelivery("default", name, eventID)
	d.RunID = ident.RunID(uid, eventID, "")
	acceptDelivery(t, a, d)
	return d
}

// The callback of a run cancelled before it was dispatched is the
// webhook's that took the delivery: none when that webhook was deleted and
// made again under its name since (a new uid: its receiver must not get
// the old webhook's run), or is disabled (the dispatcher would have
// rejected the delivery, with no callback). The run is cancelled all the
// same.
func TestRuns_CancelOfARunNotDispatchedYetCallsBackOnlyItsOwnEnabledWebhook(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	again := deliveryToNewWebhook(t, a, "again", "evt-1", nil)
	a.must(200, "DELETE", "/v1/webhooks/again", nil)
	a.must(201, "PUT", "/v1/webhooks/again", webhookDoc("again", map[string]any{"job": "report", "callback": map[string]any{"url": "https://new.example.com/hook"}}))
	disabled := deliveryToNewWebhook(t, a, "off", "evt-2", nil)
	a.must(200, "PUT", "/v1/webhooks/off", webhookDoc("off", map[string]any{"job": "report", "disabled": true, "callback": map[string]any{"url": "https://cb.example.com/hook"}}))
	for name, d := range map[string]message.Delivery{"made again": again, "disabled": disabled} {
		if st := a.must(http.StatusAccepted, "POST", "/v1/runs/"+d.RunID+"/cancel", nil).JSON()["status"]; st != message.StatusCancelled {
			t.Fatalf("%s: cancel answered %v", name, st)
		}
		r, err := runstatus.Get(context.Background(), a.js, d.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != message.StatusCancelled || r.Callback != nil {
			t.Fatalf("%s: the stored record is %s with callback %+v; want cancelled without one", name, r.Status, r.Callback)
		}
	}
}

// A dispatcher that decides the delivery meanwhile as a run that will not
// run (filtered) has ended it: the cancel answers 409 run_finished, not
// 202 with the filtered run.
func TestRuns_CancelOfARunADispatcherFiltersMeanwhileIsRunFinished(t *testing.T) {
	a := newTestAPI(t)
	d := newDelivery("default", "gh", "evt-filtered")
	acceptDelivery(t, a, d)
	a.svc.beforeCancelStatus = func() {
		publishRun(t, a, message.Run{Kind: message.KindRun, ID: d.RunID, Namespace: "default", Webhook: "gh", Job: "report", DeliveryID: d.ID, Status: message.StatusFiltered})
	}
	checkError(t, a.do("POST", "/v1/runs/"+d.RunID+"/cancel", nil), http.StatusConflict, "run_finished", "filtered")
	if st := a.must(http.StatusOK, "GET", "/v1/runs/"+d.RunID, nil).JSON()["status"]; st != message.StatusFiltered {
		t.Fatalf("status after the cancel: %v; want filtered kept", st)
	}
}

package keys

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
)

// storeDelivery publishes a delivery to DELIVERIES as the ingress would,
// with its delivery id as message id (as a replay's).
func storeDelivery(t *testing.T, a *testAPI, d message.Delivery) {
	t.Helper()
	publishDelivery(t, a, d, true)
}

// publishDelivery publishes d to DELIVERIES, with the message id of a
// replay (its delivery id) or, when !byDelivery, the one the ingress gives
// a delivery (naming its run), and returns its sequence.
func publishDelivery(t *testing.T, a *testAPI, d message.Delivery, byDelivery bool) uint64 {
	t.Helper()
	d.Schema = message.SchemaDelivery
	data, _ := json.Marshal(d)
	m := nats.NewMsg(bus.DeliverySubject(d.Namespace, d.Webhook, d.ID))
	m.Data = data
	m.Header.Set(bus.HeaderSchema, message.SchemaDelivery)
	ack, err := a.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(bus.DeliveryMsgID(d.Namespace, d.Webhook, d.RunID, d.ID, byDelivery)))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func TestDeliveries_GetAndReplay(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	wh := a.must(201, "PUT", "/v1/webhooks/gh", webhookDoc("gh", map[string]any{"job": "report"})).JSON()
	uid := path(wh, "metadata", "uid").(string)

	orig := message.Delivery{
		ID: ident.NewDeliveryID(), Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-1",
		Method: "POST", ContentType: "application/json", Body: []byte(`{"topic":"AI"}`),
		Header: map[string][]string{"X-Github-Event": {"push"}}, Principal: "endpoint", ReceivedAt: time.Now().UTC(),
	}
	orig.RunID = ident.RunID(uid, orig.EventID, "")
	storeDelivery(t, a, orig)
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: orig.ID, Webhook: "gh", Job: "report", RunID: orig.RunID, Status: message.DeliveryDispatched})

	m := a.must(200, "GET", "/v1/deliveries/"+orig.ID, nil).JSON()
	if m["id"] != orig.ID || m["eventId"] != "evt-1" || m["runId"] != orig.RunID || m["bodyText"] != `{"topic":"AI"}` || path(m, "outcome", "status") != "dispatched" {
		t.Fatalf("delivery: %v", m)
	}
	checkError(t, a.do("GET", "/v1/deliveries/dlv_nope", nil), 404, "not_found", "delivery dlv_nope")
	checkError(t, a.do("GET", "/v1/deliveries/a.*", nil), 404, "not_found", "")
	// Delivery ids are unique across namespaces; ?namespace= only narrows.
	a.must(200, "GET", "/v1/deliveries/"+orig.ID+"?namespace=default", nil)
	checkError(t, a.do("GET", "/v1/deliveries/"+orig.ID+"?namespace=ops", nil), 404, "not_found", "delivery "+orig.ID)
	checkError(t, a.do("POST", "/v1/deliveries/"+orig.ID+"/replay?namespace=ops", nil), 404, "not_found", "delivery "+orig.ID)

	r := a.must(202, "POST", "/v1/deliveries/"+orig.ID+"/replay", nil).JSON()
	newID, _ := r["deliveryId"].(string)
	if r["accepted"] != true || r["replayOf"] != orig.ID || newID == "" || newID == orig.ID || r["eventId"] != "evt-1" || r["status"] != "queued" {
		t.Fatalf("replay: %v", r)
	}
	if r["executionId"] == orig.RunID || r["executionId"] != ident.RunID(uid, "evt-1", newID) {
		t.Fatalf("a replay is a new run: %v (original %s)", r["executionId"], orig.RunID)
	}
	rep := a.must(200, "GET", "/v1/deliveries/"+newID, nil).JSON()
	if rep["replayOf"] != orig.ID || rep["bodyText"] != `{"topic":"AI"}` || path(rep, "header", "X-Github-Event") == nil {
		t.Fatalf("stored replay: %v", rep)
	}
	// Replaying again makes yet another delivery: replays bypass the
	// stream's duplicate window.
	r2 := a.must(202, "POST", "/v1/deliveries/"+orig.ID+"/replay", nil).JSON()
	if r2["deliveryId"] == newID {
		t.Fatalf("second replay reused the delivery id")
	}
	checkError(t, a.do("POST", "/v1/deliveries/dlv_nope/replay", nil), 404, "not_found", "")

	// Once the webhook is gone there is nothing to replay into.
	a.must(200, "DELETE", "/v1/webhooks/gh", nil)
	checkError(t, a.do("POST", "/v1/deliveries/"+orig.ID+"/replay", nil), 404, "not_found", "webhook default/gh")
}

// The dispatcher stores no outcome record for a delivery that has a run
// record of its own: GET /v1/deliveries/{id} tells its outcome from the
// run's record, as long as that record is the delivery's.
func TestDeliveries_OutcomeFromTheRunsRecord(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	wh := a.must(201, "PUT", "/v1/webhooks/gh", webhookDoc("gh", map[string]any{"job": "report"})).JSON()
	uid := path(wh, "metadata", "uid").(string)
	// deliver stores a delivery of event; its run is the event's, or
	// runOf's (the same event again, past the stream's duplicate window).
	deliver := func(event string, runOf ...message.Delivery) message.Delivery {
		d := message.Delivery{
			ID: ident.NewDeliveryID(), Namespace: "default", Webhook: "gh", Job: "report", EventID: event,
			Method: "POST", Body: []byte(`{}`), Principal: "endpoint", ReceivedAt: time.Now().UTC(),
		}
		d.RunID = ident.RunID(uid, event, "")
		if len(runOf) > 0 {
			d.RunID = runOf[0].RunID
		}
		storeDelivery(t, a, d)
		return d
	}
	outcome := func(d message.Delivery) map[string]any {
		t.Helper()
		m := a.must(200, "GET", "/v1/deliveries/"+d.ID, nil).JSON()
		o, _ := m["outcome"].(map[string]any)
		return o
	}
	started := time.Now().UTC()
	for _, c := range []struct {
		run       message.Run
		want, err string
	}{
		{message.Run{Status: message.StatusQueued}, "dispatched", ""},
		{message.Run{Status: message.StatusSucceeded, Attempt: 1, StartedAt: &started}, "dispatched", ""},
		{message.Run{Status: message.StatusFailed, Attempt: 2, StartedAt: &started, Error: "exit status 1"}, "dispatched", ""},
		{message.Run{Status: message.StatusCancelled}, "dispatched", ""},
		{message.Run{Status: message.StatusFiltered}, "filtered", ""},
		{message.Run{Status: message.StatusRejected, Error: "job gone"}, "rejected", "job gone"},
		{message.Run{Status: message.StatusFailed, Error: "args: missing ref"}, "rejected", "args: missing ref"}, // failed before it could run
	} {
		d := deliver("evt-" + c.run.Status + c.run.Error)
		if o := outcome(d); o != nil {
			t.Fatalf("outcome before the dispatcher: %v", o)
		}
		r := c.run
		r.ID, r.Webhook, r.Job, r.DeliveryID = d.RunID, "gh", "report", d.ID
		publishRun(t, a, r)
		o := outcome(d)
		if o["status"] != c.want || o["kind"] != message.KindDelivery || o["id"] != d.ID || o["runId"] != d.RunID || o["webhook_event_id"] != d.EventID || (o["error"] != nil || c.err != "") && o["error"] != c.err {
			t.Errorf("run %s (attempt %d, error %q): outcome %v, want %s (error %q)", r.Status, r.Attempt, r.Error, o, c.want, c.err)
		}
	}
	// The same event sent again after its dedup window: the run's record
	// is the later delivery's now, so the first one's outcome is not known.
	first := deliver("evt-twice")
	again := deliver("evt-twice-later", first)
	publishRun(t, a, message.Run{ID: first.RunID, Webhook: "gh", Job: "report", DeliveryID: again.ID, Status: message.StatusQueued})
	if o := outcome(first); o != nil {
		t.Errorf("first delivery's outcome from a later delivery's run: %v", o)
	}
	if o := outcome(again); o["status"] != "dispatched" {
		t.Errorf("later delivery's outcome: %v", o)
	}
	// A duplicate keeps a record of its own, which wins.
	dup := deliver("evt-twice-dup", first)
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: dup.ID, Webhook: "gh", RunID: dup.RunID, DeliveryID: dup.ID, Status: message.DeliveryDuplicate})
	if o := outcome(dup); o["status"] != "duplicate" {
		t.Errorf("duplicate's outcome: %v", o)
	}
}

// The ingress answers 404 for a disabled webhook: it triggers nothing, and
// neither does a replay of one of its deliveries. Nothing is stored, and
// the delivery replays again once the webhook is enabled.
func TestDeliveries_ReplayOfADisabledWebhookIsRefused(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	wh := a.must(201, "PUT", "/v1/webhooks/gh", webhookDoc("gh", map[string]any{"job": "report", "disabled": true})).JSON()
	uid := path(wh, "metadata", "uid").(string)
	orig := message.Delivery{
		ID: ident.NewDeliveryID(), Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-1",
		Method: "POST", Body: []byte(`{}`), Principal: "endpoint", ReceivedAt: time.Now().UTC(),
	}
	orig.RunID = ident.RunID(uid, orig.EventID, "")
	storeDelivery(t, a, orig)
	stored := func() uint64 {
		t.Helper()
		st, err := a.js.Stream(context.Background(), bus.StreamDeliveries)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := stored()
	checkError(t, a.do("POST", "/v1/deliveries/"+orig.ID+"/replay", nil), 409, "webhook_disabled", "webhook default/gh is disabled")
	if n := stored(); n != before {
		t.Fatalf("a refused replay stored %d deliveries", n-before)
	}
	a.must(200, "PUT", "/v1/webhooks/gh", webhookDoc("gh", map[string]any{"job": "report"}))
	a.must(202, "POST", "/v1/deliveries/"+orig.ID+"/replay", nil)
}

// A replay of a delivery whose webhook's job is gone is refused, as the
// ingress answers job_not_runnable for it: it used to be 202 "queued",
// then rejected by the dispatcher. It replays once the job is back.
func TestDeliveries_ReplayOfAWebhookWithoutItsJobIsRefused(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	wh := a.must(201, "PUT", "/v1/webhooks/gh", webhookDoc("gh", map[string]any{"job": "report"})).JSON()
	orig := message.Delivery{
		ID: ident.NewDeliveryID(), Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-1",
		Method: "POST", Body: []byte(`{}`), Principal: "endpoint", ReceivedAt: time.Now().UTC(),
	}
	orig.RunID = ident.RunID(path(wh, "metadata", "uid").(string), orig.EventID, "")
	storeDelivery(t, a, orig)
	a.must(200, "DELETE", "/v1/jobs/report", nil)
	checkError(t, a.do("POST", "/v1/deliveries/"+orig.ID+"/replay", nil), 409, "job_not_runnable", "job default/report of webhook gh does not exist")
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	a.must(202, "POST", "/v1/deliveries/"+orig.ID+"/replay", nil)
}

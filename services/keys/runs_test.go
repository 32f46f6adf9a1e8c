package keys

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// publishRun stores a status event as the dispatcher or executor would.
func publishRun(t *testing.T, a *testAPI, r message.Run) {
	t.Helper()
	if r.Namespace == "" {
		r.Namespace = "default"
	}
	if r.QueuedAt == nil {
		q := time.Now().UTC()
		r.QueuedAt = &q
	}
	if err := runstatus.Publish(context.Background(), a.js, &r); err != nil {
		t.Fatal(err)
	}
}

func TestRuns_GetAndListWithFilters(t *testing.T) {
	a := newTestAPI(t)
	base := time.Now().UTC().Add(-time.Hour)
	at := func(m int) *time.Time { x := base.Add(time.Duration(m) * time.Minute); return &x }
	zero := 0
	publishRun(t, a, message.Run{ID: "run_a", Webhook: "gh", Job: "report", Status: message.StatusQueued, QueuedAt: at(1)})
	publishRun(t, a, message.Run{ID: "run_a", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, QueuedAt: at(1), ExitCode: &zero, Output: "done\n",
		WebhookPayload: `{"topic":"AI"}`, WebhookEventID: "evt-1", WebhookSource: "github"})
	publishRun(t, a, message.Run{ID: "run_b", Webhook: "gh", Job: "report", Status: message.StatusFailed, QueuedAt: at(2)})
	publishRun(t, a, message.Run{ID: "run_c", Webhook: "form", Job: "triage", Status: message.StatusRunning, QueuedAt: at(3)})
	publishRun(t, a, message.Run{ID: "run_d", Namespace: "ops", Webhook: "gh", Job: "report", Status: message.StatusQueued, QueuedAt: at(4)})
	// A delivery outcome shares the stream but is not a run.
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_x", Webhook: "gh", Status: message.DeliveryDispatched, QueuedAt: at(5)})

	m := a.must(200, "GET", "/v1/runs/run_a", nil).JSON()
	for k, want := range map[string]any{"id": "run_a", "webhook": "gh", "job": "report", "status": "succeeded", "exitCode": 0.0, "output": "done\n",
		"webhook_payload": `{"topic":"AI"}`, "webhook_event_id": "evt-1", "webhook_source": "github"} {
		if m[k] != want {
			t.Errorf("run field %s = %v, want %v", k, m[k], want)
		}
	}
	if m["queuedAt"] == nil || m["webhook_received_at"] == nil {
		t.Errorf("run lacks times: %v", m)
	}
	checkError(t, a.do("GET", "/v1/runs/run_nope", nil), 404, "not_found", "run run_nope")
	checkError(t, a.do("GET", "/v1/runs/dlv_x", nil), 404, "not_found", "")
	checkError(t, a.do("GET", "/v1/runs/a.b", nil), 404, "not_found", "")
	// Every field API.md lists is there, null or empty until the run has it.
	q := a.must(200, "GET", "/v1/runs/run_d", nil).JSON()
	for _, k := range []string{"id", "webhook", "job", "status", "attempt", "exitCode", "queuedAt", "startedAt", "finishedAt",
		"output", "error", "webhook_payload", "webhook_event_id", "webhook_received_at", "webhook_source"} {
		if _, ok := q[k]; !ok {
			t.Errorf("a queued run lacks %q: %v", k, q)
		}
	}
	if q["exitCode"] != nil || q["startedAt"] != nil || q["output"] != "" || q["attempt"] != 0.0 {
		t.Errorf("a queued run's empty fields: %v", q)
	}
	// Run ids are unique across namespaces; ?namespace= only narrows.
	a.must(200, "GET", "/v1/runs/run_d", nil)
	a.must(200, "GET", "/v1/runs/run_d?namespace=ops", nil)
	checkError(t, a.do("GET", "/v1/runs/run_d?namespace=default", nil), 404, "not_found", "run run_d")
	checkError(t, a.do("GET", "/v1/runs/run_a?namespace=ops", nil), 404, "not_found", "run run_a")
	checkError(t, a.do("GET", "/v1/runs/run_d/events?namespace=default", nil), 404, "not_found", "run run_d")
	checkError(t, a.do("POST", "/v1/runs/run_d/cancel?namespace=default", nil), 404, "not_found", "run run_d")
	if r := a.must(200, "GET", "/v1/runs?namespace=nobody", nil); !strings.Contains(string(r.Body), `"runs":[]`) {
		t.Errorf("an empty list is not []: %s", r.Body)
	}

	ids := func(q string) string {
		t.Helper()
		var out struct {
			Runs []message.Run `json:"runs"`
		}
		if err := json.Unmarshal(a.must(200, "GET", "/v1/runs"+q, nil).Body, &out); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, r := range out.Runs {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	for q, want := range map[string]string{
		"": "run_d,run_c,run_b,run_a",
		// A webhook or job is named in ?namespace=, "default" when absent
		// (gh in ops is another webhook); without one, all namespaces.
		"?webhook=gh":                             "run_b,run_a",
		"?webhook=gh&namespace=ops":               "run_d",
		"?job=report":                             "run_b,run_a",
		"?job=triage":                             "run_c",
		"?status=failed":                          "run_b",
		"?status=queued":                          "run_d",
		"?webhook=gh&status=queued":               "",
		"?webhook=gh&status=queued&namespace=ops": "run_d",
		"?limit=2":                                "run_d,run_c",
		"?job=none":                               "",
	} {
		if got := ids(q); got != want {
			t.Errorf("GET /v1/runs%s = %q, want %q", q, got, want)
		}
	}
	for q, msg := range map[string]string{
		"?limit=0":        "limit: must be a number from 1 to 1000",
		"?limit=x":        "limit",
		"?status=done":    "status: must be one of queued, running",
		"?webhook=a.b":    "webhook: must match",
		"?job=*":          "job: must match",
		"?namespace=a>.b": "namespace",
	} {
		checkError(t, a.do("GET", "/v1/runs"+q, nil), 400, "invalid_request", msg)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readSSE reads events from an open stream until it ends.
func readSSE(resp *http.Response, got chan<- sseEvent) {
	sc := bufio.NewScanner(resp.Body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		case line == "" && ev.name != "":
			got <- ev
			ev = sseEvent{}
		}
	}
	close(got)
}

// A client that joins a running run first gets what it printed so far,
// from the executor running it, and then the live lines the snapshot did
// not hold: each line once, in order; a later attempt's lines, numbered
// from 1 again, all.
func TestRuns_EventsOfARunningRunStartWithItsOutputSoFar(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{ID: "run_join", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	// The executor running it: lines 1 and 2 published before the client came.
	sub, err := a.nc.Subscribe(bus.OutputSnapshotSubject("run_join"), func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Data: []byte("start\nstep 2\n"), Header: nats.Header{bus.HeaderLine: []string{"2"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	req, _ := http.NewRequest("GET", a.URL+"/v1/runs/run_join/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan sseEvent, 32)
	go readSSE(resp, got)
	var outputs []string
	var events []string
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-got:
			if !ok {
				done = true
				break
			}
			events = append(events, ev.name)
			if ev.name == "output" {
				outputs = append(outputs, ev.data)
				if len(outputs) == 2 {
					// Line 2 again (in flight while the snapshot was
					// taken), then line 3; then the run ends.
					pub := func(n int, text string) {
						m := &nats.Msg{Subject: bus.OutputSubject("run_join"), Data: []byte(text), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(n)}}}
						if err := a.nc.PublishMsg(m); err != nil {
							t.Error(err)
						}
					}
					pub(2, "step 2\n")
					pub(3, "end\n")
				}
				if len(outputs) == 3 {
					// The run is redelivered: attempt 2 numbers its lines from 1.
					publishRun(t, a, message.Run{ID: "run_join", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 2})
				}
				if len(outputs) == 4 {
					publishRun(t, a, message.Run{ID: "run_join", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 2, Output: "again\n"})
				}
			}
			if ev.name == "status" && strings.Contains(ev.data, `"attempt":2`) && len(outputs) == 3 {
				m := &nats.Msg{Subject: bus.OutputSubject("run_join"), Data: []byte("again\n"), Header: nats.Header{bus.HeaderLine: []string{"1"}}}
				if err := a.nc.PublishMsg(m); err != nil {
					t.Error(err)
				}
			}
		case <-deadline:
			t.Fatalf("stream did not end; events %v outputs %v", events, outputs)
		}
	}
	if want := []string{`"start\n"`, `"step 2\n"`, `"end\n"`, `"again\n"`}; strings.Join(outputs, ",") != strings.Join(want, ",") {
		t.Fatalf("output events %v, want %v (events %v)", outputs, want, events)
	}
}

func TestRuns_EventsStreamStatusesAndOutputUntilTheRunEnds(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{ID: "run_sse", Webhook: "gh", Job: "report", Status: message.StatusQueued})

	req, _ := http.NewRequest("GET", a.URL+"/v1/runs/run_sse/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := make(chan sseEvent, 32)
	go readSSE(resp, got)
	next := func() sseEvent {
		t.Helper()
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatal("the stream ended early")
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
		return sseEvent{}
	}
	status := func(ev sseEvent) string {
		var r message.Run
		if ev.name != "status" || json.Unmarshal([]byte(ev.data), &r) != nil {
			t.Fatalf("not a status event: %+v", ev)
		}
		return r.Status
	}
	if s := status(next()); s != "queued" {
		t.Fatalf("first event %q", s)
	}
	publishRun(t, a, message.Run{ID: "run_sse", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	if s := status(next()); s != "running" {
		t.Fatalf("second event %q", s)
	}
	// Live output lines arrive as output events. The stream subscribed
	// before it answered, on this same connection, so one publish is seen.
	if err := a.nc.Publish(bus.OutputSubject("run_sse"), []byte("line one\n")); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.name != "output" || ev.data != `"line one\n"` {
		t.Fatalf("want the output line, got %+v", ev)
	}
	// The final record's output holds a line the stream did not carry live
	// (still in flight): it is sent before the final status.
	publishRun(t, a, message.Run{ID: "run_sse", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Output: "line one\nline two\n"})
	if ev := next(); ev.name != "output" || ev.data != `"line two\n"` {
		t.Fatalf("want the trailing line, got %+v", ev)
	}
	if s := status(next()); s != "succeeded" {
		t.Fatalf("final event %q", s)
	}
	select {
	case _, ok := <-got:
		if ok {
			t.Fatal("an event after the final status")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end with the run")
	}

	// A finished run replays its events and ends at once.
	resp2, err := http.DefaultClient.Do(req.Clone(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	got2 := make(chan sseEvent, 32)
	go readSSE(resp2, got2)
	var seen []string
	for ev := range got2 {
		seen = append(seen, ev.name)
	}
	// and, having missed the live lines, gets the whole output before the end.
	if strings.Join(seen, ",") != "status,status,output,output,status" {
		t.Fatalf("replayed events %v", seen)
	}
	checkError(t, a.do("GET", "/v1/runs/run_none/events", nil), 404, "not_found", "")
}

func TestUnsent_IsTheOutputNotYetSentLive(t *testing.T) {
	for _, tc := range []struct {
		output, sent string
		fromStart    bool
		want         string
	}{
		{"a\nb\n", "", true, "a\nb\n"},
		{"a\nb\n", "a\n", true, "b\n"},
		{"a\nb\n", "a\nb\n", true, ""},
		{"[dropped]\nx\ny\n", "x\n", true, "y\n"},
		{"a\nb\n", "zzz\n", true, ""},
		// Sent from the start: the same text later in the tail is not it.
		{"a\nb\nc\na\nb\n", "a\nb\n", true, "c\na\nb\n"},
		// Sent only from line 4 on (joined without a snapshot): the same
		// text at the tail's start is not it (it sent c, a, b again).
		{"a\nb\nc\na\nb\n", "a\nb\n", false, ""},
		{"a\nb\nc\na\nb\nd\n", "a\nb\n", false, "d\n"},
		// A tail cut to its end (marked) after more than it was sent live:
		// the lines after the sent text are unsent.
		{message.OutputTruncated + "c\nd\ne\n", "a\nb\nc\nd\n", true, "e\n"},
		{message.OutputTruncated + "c\nd\n", "a\nb\nc\nd\n", true, ""},
		{message.OutputTruncated + "x\ny\n", "a\nb\n", true, ""},
		// A chance overlap (the tail's first "\n" ends the sent text too)
		// is not the sent text's end: nothing is sent again.
		{message.OutputTruncated + "\n" + strings.Repeat("x\n", 400), strings.Repeat("a\n", 400), true, ""},
	} {
		if got := unsent(tc.output, tc.sent, tc.fromStart); got != tc.want {
			t.Errorf("unsent(%q, %q, %v) = %q, want %q", tc.output, tc.sent, tc.fromStart, got, tc.want)
		}
	}
}

// The reviewer's case: an attempt of 3000 lines, over the 64 KiB the
// record keeps, whose last two lines were still in flight at its end.
func TestUnsent_OfALargeCutOutput(t *testing.T) {
	var full strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&full, "line %05d ...........................\n", i)
	}
	all := full.String()
	tail := message.OutputTruncated + all[len(all)-64<<10:]
	cut := strings.LastIndex(all[:len(all)-1], "\n")
	cut = strings.LastIndex(all[:cut], "\n") + 1
	if got := unsent(tail, all[:cut], true); got != all[cut:] {
		t.Fatalf("unsent = %q, want the last two lines %q", got, all[cut:])
	}
	// Sent text whose end the tail does not hold says nothing of it.
	if got := unsent(tail, all[:cut]+"line lost\n", true); got != "" {
		t.Fatalf("unsent after text the tail does not hold is %q", got)
	}
}

func TestRuns_CancelAQueuedRun(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{ID: "run_q", Webhook: "gh", Job: "report", Status: message.StatusQueued})
	// An executor listens for cancels of running runs on core NATS.
	sub, err := a.nc.SubscribeSync(bus.CancelSubject("run_q"))
	if err != nil {
		t.Fatal(err)
	}
	m := a.must(202, "POST", "/v1/runs/run_q/cancel", nil).JSON()
	if m["status"] != "cancelled" {
		t.Fatalf("cancel: %v", m)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no cancel message: %v", err)
	}
	kv, err := a.js.KeyValue(context.Background(), bus.BucketCancels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), "run_q"); err != nil {
		t.Fatalf("no cancel mark: %v", err)
	}
	if s := a.must(200, "GET", "/v1/runs/run_q", nil).JSON()["status"]; s != "cancelled" {
		t.Fatalf("status after cancel: %v", s)
	}
	checkError(t, a.do("POST", "/v1/runs/run_q/cancel", nil), 409, "run_finished", "cancelled")
	checkError(t, a.do("POST", "/v1/runs/run_none/cancel", nil), 404, "not_found", "")

	// A running run gets the message; its executor stores the final status.
	publishRun(t, a, message.Run{ID: "run_r", Webhook: "gh", Job: "report", Status: message.StatusRunning})
	if s := a.must(202, "POST", "/v1/runs/run_r/cancel", nil).JSON()["status"]; s != "running" {
		t.Fatalf("cancel of a running run answered %v", s)
	}
}

// An executor that starts a queued run while it is being cancelled keeps
// it: keys stores "cancelled" only over the "queued" it read, and the
// executor, which has the run tracked by then, stops it and stores how it
// ended.
func TestRuns_CancelDoesNotOverwriteARunThatJustStarted(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{ID: "run_s", DeliveryID: "dlv_s", Webhook: "gh", Job: "report", Status: message.StatusQueued})
	a.svc.beforeCancelStatus = func() {
		publishRun(t, a, message.Run{ID: "run_s", DeliveryID: "dlv_s", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	}
	if s := a.must(202, "POST", "/v1/runs/run_s/cancel", nil).JSON()["status"]; s != "running" {
		t.Fatalf("cancel answered %v, want the run as it is now (running)", s)
	}
	if s := a.must(200, "GET", "/v1/runs/run_s", nil).JSON()["status"]; s != "running" {
		t.Fatalf("status after cancel: %v; keys overwrote the executor's running", s)
	}
}

// A run cancelled while it waits for a retry shows no exit code, start or
// retry time of the attempt that failed (it showed "exit 1" and a duration
// running up to the cancel); its attempt number and that attempt's output
// stay.
func TestRuns_CancelWhileWaitingForARetryClearsTheFailedAttempt(t *testing.T) {
	a := newTestAPI(t)
	started := time.Now().UTC().Add(-time.Minute)
	retryAt := time.Now().UTC().Add(time.Hour)
	one := 1
	publishRun(t, a, message.Run{ID: "run_retry", Webhook: "gh", Job: "report", Status: message.StatusQueued, Attempt: 1,
		StartedAt: &started, ExitCode: &one, RetryAt: &retryAt, Output: "boom\n", Error: "attempt 1 failed (exit status 1); retrying in 1h"})
	m := a.must(202, "POST", "/v1/runs/run_retry/cancel", nil).JSON()
	got := a.must(200, "GET", "/v1/runs/run_retry", nil).JSON()
	for _, r := range []map[string]any{m, got} {
		if r["status"] != "cancelled" || r["exitCode"] != nil || r["startedAt"] != nil || r["retryAt"] != nil || r["finishedAt"] == nil ||
			r["attempt"] != 1.0 || r["output"] != "boom\n" || r["error"] != message.CancelledWhileQueued {
			t.Fatalf("cancelled while waiting for a retry: %v", r)
		}
	}
}

// A page that does not hold every matching run says where the next one
// starts ("next", passed back as ?cursor= with the same filters); the last
// page has none.
func TestRuns_ListPagesWithACursor(t *testing.T) {
	a := newTestAPI(t)
	base := time.Now().UTC().Add(-time.Hour)
	for i := range 5 {
		q := base.Add(time.Duration(i) * time.Minute)
		publishRun(t, a, message.Run{ID: "run_p" + strconv.Itoa(i), Webhook: "gh", Job: "report", Status: message.StatusSucceeded, QueuedAt: &q})
	}
	publishRun(t, a, message.Run{ID: "run_other", Webhook: "form", Job: "report", Status: message.StatusSucceeded})
	var got []string
	q := "?webhook=gh&limit=2"
	for pages := 0; ; pages++ {
		var page struct {
			Runs []message.Run `json:"runs"`
			Next *string       `json:"next"`
		}
		if err := json.Unmarshal(a.must(200, "GET", "/v1/runs"+q, nil).Body, &page); err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Runs {
			got = append(got, r.ID)
		}
		if page.Next == nil {
			break
		}
		if pages == 3 {
			t.Fatalf("more pages than runs: %v", got)
		}
		q = "?webhook=gh&limit=2&cursor=" + url.QueryEscape(*page.Next)
	}
	if strings.Join(got, ",") != "run_p4,run_p3,run_p2,run_p1,run_p0" {
		t.Fatalf("runs over the pages: %v", got)
	}
	checkError(t, a.do("GET", "/v1/runs?cursor=nope", nil), 400, "invalid_request", "cursor")
}

// The executors' bookkeeping in a run's record (which request ran it, and
// its RUNS sequence; how many lines it published live) is not shown; how
// many attempts an executor's stop interrupted is.
func TestRuns_ViewLeavesOutTheExecutorsBookkeeping(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{ID: "run_books", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 3,
		Copy: 2, RequestSeq: 42, OutputLines: 7, Interrupted: 1})
	for _, path := range []string{"/v1/runs/run_books", "/v1/runs"} {
		body := string(a.must(200, "GET", path, nil).Body)
		for _, k := range []string{`"copy"`, `"requestSeq"`, `"outputLines"`} {
			if strings.Contains(body, k) {
				t.Errorf("GET %s shows %s: %s", path, k, body)
			}
		}
		if !strings.Contains(body, `"interrupted":1`) {
			t.Errorf("GET %s lacks interrupted: %s", path, body)
		}
	}
}

// A stored record this release cannot read (a newer release's, during a
// rolling upgrade) is a 500 saying to upgrade keys: asking again gets the
// same answer, so not a 503 with Retry-After (it was), nor a bare 500.
func TestRuns_AnUnreadableRecordSaysToUpgradeKeys(t *testing.T) {
	a := newTestAPI(t)
	ctx := context.Background()
	garbled := func(subject string) {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = []byte(`{"schema":"hookrun.run.v9","status":`)
		m.Header.Set(bus.HeaderSchema, "hookrun.run.v9")
		if _, err := a.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	garbled(bus.StatusSubject("default", "run_garbled"))
	garbled(bus.DeliverySubject("default", "gh", "dlv_garbled"))
	for _, path := range []string{"/v1/runs/run_garbled", "/v1/deliveries/dlv_garbled"} {
		ans := a.do("GET", path, nil)
		checkError(t, ans, 500, "unreadable_record", "upgrade keys")
		if ans.Header.Get("Retry-After") != "" {
			t.Fatalf("%s: Retry-After on an answer that will not change: %v", path, ans.Header)
		}
	}
	checkError(t, a.do("POST", "/v1/runs/run_garbled/cancel", nil), 500, "unreadable_record", "upgrade keys")
}

// Lists that read the whole STATUS stream (here a small one; on a large
// stream a deep page or a filter few recent runs match) run two at a time:
// a third waits for one of them, and past wholeScanWait answers 503 with
// Retry-After rather than take keys' CPU and memory from everything else.
// A list's slot is given back when it ends.
func TestRuns_ListsReadingTheWholeHistoryAreBounded(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{Kind: message.KindRun, ID: "run_bounded", Webhook: "gh", Job: "report", Status: message.StatusSucceeded})
	old := wholeScanWait
	wholeScanWait = 200 * time.Millisecond
	defer func() { wholeScanWait = old }()
	for range cap(a.svc.wholeScans) {
		a.svc.wholeScans <- struct{}{} // two lists reading the whole stream
	}
	ans := a.do("GET", "/v1/runs", nil)
	checkError(t, ans, http.StatusServiceUnavailable, "unavailable", "whole run history")
	if ans.Header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q", ans.Header.Get("Retry-After"))
	}
	// One ends: the next list runs, and gives its slot back.
	<-a.svc.wholeScans
	runs := a.must(http.StatusOK, "GET", "/v1/runs", nil).JSON()["runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["id"] != "run_bounded" {
		t.Fatalf("runs: %v", runs)
	}
	if n := len(a.svc.wholeScans); n != cap(a.svc.wholeScans)-1 {
		t.Fatalf("%d slots taken after the list ended; want %d", n, cap(a.svc.wholeScans)-1)
	}
	// A list waiting for a slot gets it when one is given back.
	a.svc.wholeScans <- struct{}{}
	time.AfterFunc(50*time.Millisecond, func() { <-a.svc.wholeScans })
	a.must(http.StatusOK, "GET", "/v1/runs", nil)
}

// A cancel that reads the run running while its attempt fails and the
// executor stores it waiting for a retry cancels that queued status: the
// cancel message found the command gone, and the mark would only be read
// when the retry is due, perhaps hours away.
func TestRuns_CancelOfARunWhoseAttemptEndsForARetryCancelsTheRetry(t *testing.T) {
	a := newTestAPI(t)
	now := time.Now().UTC()
	run := message.Run{Kind: message.KindRun, ID: "run_retrying", Webhook: "gh", Job: "report", DeliveryID: "dlv_1", Status: message.StatusRunning, Attempt: 1, StartedAt: &now}
	publishRun(t, a, run)
	a.svc.afterCancelMark = func() {
		retryAt := time.Now().Add(time.Hour).UTC()
		q := run
		q.Status, q.RetryAt, q.Error = message.StatusQueued, &retryAt, "attempt 1 failed (exit status 3); retrying in 1h0m0s"
		publishRun(t, a, q)
	}
	got := a.must(http.StatusAccepted, "POST", "/v1/runs/run_retrying/cancel", nil).JSON()
	if got["status"] != message.StatusCancelled {
		t.Fatalf("cancel: %v", got)
	}
	r, err := runstatus.Get(context.Background(), a.js, "run_retrying")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != message.StatusCancelled || r.RetryAt != nil || r.Attempt != 1 {
		t.Fatalf("the run after its cancel: %+v; want cancelled, no retry", r)
	}
}

// The queued status a cancel of a running run finds after its mark is
// cancelled only when it is that delivery's: a later delivery of the event
// (sent again after its dedup window) queued under the run id meanwhile is
// not the run the cancel read, and its mark does not name it.
func TestRuns_CancelOfARunningRunLeavesALaterDeliverysQueuedRun(t *testing.T) {
	a := newTestAPI(t)
	now := time.Now().UTC()
	run := message.Run{Kind: message.KindRun, ID: "run_resent", Webhook: "gh", Job: "report", DeliveryID: "dlv_1", Status: message.StatusRunning, Attempt: 1, StartedAt: &now}
	publishRun(t, a, run)
	a.svc.afterCancelMark = func() {
		publishRun(t, a, message.Run{Kind: message.KindRun, ID: "run_resent", Webhook: "gh", Job: "report", DeliveryID: "dlv_2", Status: message.StatusQueued})
	}
	a.must(http.StatusAccepted, "POST", "/v1/runs/run_resent/cancel", nil)
	r, err := runstatus.Get(context.Background(), a.js, "run_resent")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != message.StatusQueued || r.DeliveryID != "dlv_2" {
		t.Fatalf("the later delivery's run after the cancel: %s of %s; want it queued still", r.Status, r.DeliveryID)
	}
}

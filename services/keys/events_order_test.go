package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// openEvents opens a run's event stream and returns its events as they come.
func openEvents(t *testing.T, a *testAPI, id string) <-chan sseEvent {
	t.Helper()
	return openEventsAt(t, a, "/v1/runs/"+id+"/events")
}

func openEventsAt(t *testing.T, a *testAPI, path string) <-chan sseEvent {
	t.Helper()
	got := make(chan sseEvent, 64)
	go readSSE(openStream(t, a, path, nil), got)
	return got
}

// openStream opens an event stream with the given request headers.
func openStream(t *testing.T, a *testAPI, path string, header http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", a.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	return resp
}

// collectEvents reads the stream to its end and describes each event:
// "status queued/0" (status and attempt) or "output <text>".
func collectEvents(t *testing.T, got <-chan sseEvent) []string {
	t.Helper()
	var evs []string
	for _, ev := range drain(t, got) {
		switch ev.name {
		case "status":
			var r message.Run
			if err := json.Unmarshal([]byte(ev.data), &r); err != nil {
				t.Fatalf("status event %q: %v", ev.data, err)
			}
			evs = append(evs, "status "+r.Status+"/"+strconv.Itoa(r.Attempt))
		case "output":
			var line string
			if err := json.Unmarshal([]byte(ev.data), &line); err != nil {
				t.Fatalf("output event %q: %v", ev.data, err)
			}
			evs = append(evs, "output "+strings.TrimSuffix(line, "\n"))
		}
	}
	return evs
}

// drain reads a stream's events until it ends, for 10 s at most.
func drain[T any](t *testing.T, got <-chan T) []T {
	t.Helper()
	var evs []T
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-got:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-deadline:
			t.Fatalf("the stream did not end; events so far: %v", evs)
		}
	}
}

// publishLine publishes a live output line of run id, numbered as the
// executor numbers them (from 1 in each attempt), naming its attempt as the
// executor does (0: as an executor too old to name it).
func publishLine(t *testing.T, a *testAPI, id string, attempt, n int, text string) {
	t.Helper()
	m := &nats.Msg{Subject: bus.OutputSubject(id), Data: []byte(text), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(n)}}}
	if attempt > 0 {
		m.Header.Set(bus.HeaderAttempt, strconv.Itoa(attempt))
	}
	if err := a.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

// answerSnapshots plays the executor running run id: it answers a request
// for the output so far with text, whose last line is numbered n.
func answerSnapshots(t *testing.T, a *testAPI, id, text string, n int) {
	t.Helper()
	sub, err := a.nc.Subscribe(bus.OutputSnapshotSubject(id), func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Data: []byte(text), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(n)}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

func wantEvents(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// A client that joins a running run gets the run's statuses so far before
// any of its output: queued, running, then what it printed (the snapshot,
// then the live lines), as `hookrun runs watch` shows it.
func TestRuns_EventsSendTheRunningStatusBeforeItsOutput(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_order"
	started := time.Now().UTC()
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusQueued})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1, StartedAt: &started})
	answerSnapshots(t, a, id, "start 1\n", 1)

	got := openEvents(t, a, id)
	// The next line comes at once, likely before the stream has replayed
	// the statuses from STATUS.
	publishLine(t, a, id, 0, 2, "tick 1\n")
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &started, Output: "start 1\ntick 1\n"})

	wantEvents(t, collectEvents(t, got), []string{
		"status queued/0",
		"status running/1",
		"output start 1",
		"output tick 1",
		"status succeeded/1",
	})
}

// A run whose attempts fail and are retried: every attempt's status and
// output, each attempt's output after its "running" and before the status
// that ends it — the attempt that failed before the client came included
// (its output is in the retry's "queued" record), the attempt running when
// it came (its snapshot, then live lines) and the ones after.
func TestRuns_EventsShowEveryAttemptsOutputAfterItsRunningStatus(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_retries"
	run := func(status string, attempt int, output string) message.Run {
		now := time.Now().UTC()
		r := message.Run{ID: id, Webhook: "gh", Job: "report", Status: status, Attempt: attempt, Output: output}
		if attempt > 0 {
			r.StartedAt = &now
		}
		if status == message.StatusQueued && attempt > 0 {
			at := now.Add(time.Second)
			r.RetryAt, r.Error = &at, "attempt "+strconv.Itoa(attempt)+" failed (exit status 1); retrying in 1s"
		}
		if message.Final(status) {
			code := 1
			r.FinishedAt, r.ExitCode = &now, &code
		}
		return r
	}
	publishRun(t, a, run(message.StatusQueued, 0, ""))
	publishRun(t, a, run(message.StatusRunning, 1, ""))
	publishRun(t, a, run(message.StatusQueued, 1, "try 1\n"))
	publishRun(t, a, run(message.StatusRunning, 2, ""))
	answerSnapshots(t, a, id, "try 2\n", 1)

	got := openEvents(t, a, id)
	// Attempt 2 goes on, fails and is retried; attempt 3 fails for good.
	publishLine(t, a, id, 2, 2, "more 2\n")
	publishRun(t, a, run(message.StatusQueued, 2, "try 2\nmore 2\n"))
	publishRun(t, a, run(message.StatusRunning, 3, ""))
	publishLine(t, a, id, 3, 1, "try 3\n")
	publishRun(t, a, run(message.StatusFailed, 3, "try 3\n"))

	wantEvents(t, collectEvents(t, got), []string{
		"status queued/0",
		"status running/1",
		"output try 1",
		"status queued/1",
		"status running/2",
		"output try 2",
		"output more 2",
		"status queued/2",
		"status running/3",
		"output try 3",
		"status failed/3",
	})

	// Replayed once it has ended: the same, every attempt's output from
	// the record that ended it.
	wantEvents(t, collectEvents(t, openEvents(t, a, id)), []string{
		"status queued/0",
		"status running/1",
		"output try 1",
		"status queued/1",
		"status running/2",
		"output try 2",
		"output more 2",
		"status queued/2",
		"status running/3",
		"output try 3",
		"status failed/3",
	})
}

// A client that comes while a retry waits, and a cancel of that retry:
// the failed attempt's output once, not again with the "cancelled" record
// that repeats it.
func TestRuns_EventsDoNotRepeatAnEndedAttemptsOutput(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_cancelled_retry"
	now := time.Now().UTC()
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusQueued})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1, StartedAt: &now})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusQueued, Attempt: 1, StartedAt: &now, Output: "try 1\n", RetryAt: &now})
	got := openEvents(t, a, id)
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusCancelled, Attempt: 1, StartedAt: &now, FinishedAt: &now, Output: "try 1\n"})
	wantEvents(t, collectEvents(t, got), []string{
		"status queued/0",
		"status running/1",
		"output try 1",
		"status queued/1",
		"status cancelled/1",
	})
}

// A watcher keeps a bounded part of the output it was sent, however much a
// run prints.
func TestRuns_EventStreamKeepsABoundedPartOfTheSentOutput(t *testing.T) {
	st := &runStream{w: echo.NewResponse(discardWriter{httptest.NewRecorder()}, echo.New())}
	line := strings.Repeat("x", 1023) + "\n"
	for range 5 << 10 { // 5 MiB
		st.writeOutput(line)
	}
	if len(st.sent) > 2*maxSentKept {
		t.Fatalf("kept %d bytes of 5 MiB sent", len(st.sent))
	}
	if !strings.HasSuffix(string(st.sent), line+line) {
		t.Fatal("the tail of what was sent is not kept")
	}
}

// discardWriter is a ResponseWriter that drops the body.
type discardWriter struct{ *httptest.ResponseRecorder }

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// An event delivered again after its dedup window runs again under the
// same run id. The stream shows the run of the delivery current when the
// client came, not the earlier run's statuses, and does not end at that
// earlier run's final status.
func TestRuns_EventsOfAReusedRunIDShowTheCurrentDeliverysRun(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_reused"
	now := time.Now().UTC()
	run := func(delivery, status string, attempt int, output string) message.Run {
		r := message.Run{ID: id, DeliveryID: delivery, Webhook: "gh", Job: "report", Status: status, Attempt: attempt, Output: output}
		if attempt > 0 {
			r.StartedAt = &now
		}
		return r
	}
	publishRun(t, a, run("dlv_1", message.StatusQueued, 0, ""))
	publishRun(t, a, run("dlv_1", message.StatusRunning, 1, ""))
	publishRun(t, a, run("dlv_1", message.StatusSucceeded, 1, "first run\n"))
	publishRun(t, a, run("dlv_2", message.StatusQueued, 0, ""))
	publishRun(t, a, run("dlv_2", message.StatusRunning, 1, ""))
	answerSnapshots(t, a, id, "second run\n", 1)

	got := openEvents(t, a, id)
	publishLine(t, a, id, 1, 2, "more\n")
	publishRun(t, a, run("dlv_2", message.StatusFailed, 1, "second run\nmore\n"))
	wantEvents(t, collectEvents(t, got), []string{
		"status queued/0",
		"status running/1",
		"output second run",
		"output more",
		"status failed/1",
	})
}

// A later delivery's run that starts before the stream reached the end of
// the run it shows is followed to its own end, its attempts counted anew:
// its output comes live, though the client came during an attempt of the
// earlier run numbered higher.
func TestRuns_EventsGoOnToALaterDeliverysRun(t *testing.T) {
	const id = "run_reused_later"
	now := time.Now().UTC()
	rec := httptest.NewRecorder()
	st := &runStream{w: echo.New().NewContext(nil, rec).Response(), liveFrom: 3}
	lines := make(chan outputLine)
	for _, r := range []message.Run{
		{ID: id, DeliveryID: "dlv_1", Status: message.StatusRunning, Attempt: 3, StartedAt: &now},
		{ID: id, DeliveryID: "dlv_1", Status: message.StatusSucceeded, Attempt: 3, Output: "one\n"},
		{ID: id, DeliveryID: "dlv_2", Status: message.StatusQueued},
		{ID: id, DeliveryID: "dlv_2", Status: message.StatusRunning, Attempt: 1, StartedAt: &now},
	} {
		st.status(&r, lines)
	}
	st.line(outputLine{text: []byte("two\n"), n: 1})
	if !strings.Contains(rec.Body.String(), "data: \"two\\n\"") {
		t.Fatalf("the later run's line was not sent live:\n%s", rec.Body.String())
	}
	st.status(&message.Run{ID: id, DeliveryID: "dlv_2", Status: message.StatusSucceeded, Attempt: 1, Output: "two\n"}, lines)
	if n := strings.Count(rec.Body.String(), "data: \"two\\n\""); n != 1 {
		t.Fatalf("the later run's line sent %d times:\n%s", n, rec.Body.String())
	}
}

// `hookrun send --wait` follows the delivery it sent: with ?delivery= the
// stream waits for that delivery's run (here not queued yet: the earlier
// run under the same id has ended), shows it, and ends with it.
func TestRuns_EventsOfOneDelivery(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_one_delivery"
	now := time.Now().UTC()
	run := func(delivery, status string, attempt int, output string) message.Run {
		r := message.Run{ID: id, DeliveryID: delivery, Webhook: "gh", Job: "report", Status: status, Attempt: attempt, Output: output}
		if attempt > 0 {
			r.StartedAt = &now
		}
		return r
	}
	// The ingress stores each delivery before it answers with its id (the
	// event ids differ only so that the stream's duplicate window, which the
	// second delivery of an event has outlived, keeps both).
	for _, d := range []string{"dlv_1", "dlv_2"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
	}
	publishRun(t, a, run("dlv_1", message.StatusQueued, 0, ""))
	publishRun(t, a, run("dlv_1", message.StatusRunning, 1, ""))
	publishRun(t, a, run("dlv_1", message.StatusSucceeded, 1, "first run\n"))

	got := openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_2")
	time.Sleep(200 * time.Millisecond)
	publishRun(t, a, run("dlv_2", message.StatusQueued, 0, ""))
	publishRun(t, a, run("dlv_2", message.StatusRunning, 1, ""))
	publishRun(t, a, run("dlv_2", message.StatusFailed, 1, "second run\n"))
	publishRun(t, a, run("dlv_3", message.StatusQueued, 0, ""))
	wantEvents(t, collectEvents(t, got), []string{
		"status queued/0",
		"status running/1",
		"output second run",
		"status failed/1",
	})
	// The earlier delivery's run, asked for by its delivery: its own
	// statuses, ending at its end though later ones follow.
	wantEvents(t, collectEvents(t, openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_1")), []string{
		"status queued/0",
		"status running/1",
		"output first run",
		"status succeeded/1",
	})
	checkError(t, a.do("GET", "/v1/runs/"+id+"/events?delivery=a.b", nil), 400, "invalid_request", "delivery")
}

// A live line of an attempt that has ended, arriving after the next
// attempt's "running" (lines and statuses travel apart), is not shown as the
// next attempt's output: lines name their attempt.
func TestRuns_EventsDropALateLineOfAnEndedAttempt(t *testing.T) {
	const id = "run_late_line"
	now := time.Now().UTC()
	rec := httptest.NewRecorder()
	st := &runStream{w: echo.New().NewContext(nil, rec).Response(), liveFrom: 1}
	lines := make(chan outputLine)
	for _, r := range []message.Run{
		{ID: id, Status: message.StatusRunning, Attempt: 2, StartedAt: &now},
		{ID: id, Status: message.StatusQueued, Attempt: 2, Output: "try 2\nmore 2\n", RetryAt: &now},
		{ID: id, Status: message.StatusRunning, Attempt: 3, StartedAt: &now},
	} {
		st.status(&r, lines)
	}
	st.line(outputLine{text: []byte("more 2\n"), n: 2, attempt: 2}) // late
	st.line(outputLine{text: []byte("try 3\n"), n: 1, attempt: 3})
	st.status(&message.Run{ID: id, Status: message.StatusFailed, Attempt: 3, Output: "try 3\n"}, lines)
	var outputs []string
	for _, ev := range strings.Split(rec.Body.String(), "\n\n") {
		if o, ok := strings.CutPrefix(ev, "event: output\n"); ok {
			// A live line's event carries its attempt and number as its id.
			if id, rest, ok := strings.Cut(o, "\n"); ok && strings.HasPrefix(id, "id: ") {
				o = strings.TrimPrefix(id, "id: ") + " " + rest
			}
			outputs = append(outputs, strings.TrimPrefix(o, "data: "))
		}
	}
	if want := []string{`"try 2\n"`, `"more 2\n"`, `3.1 data: "try 3\n"`}; strings.Join(outputs, " ") != strings.Join(want, " ") {
		t.Fatalf("outputs %v, want %v", outputs, want)
	}
	// The status after the numbered line leaves its id alone: an
	// EventSource keeps it as where to resume (Last-Event-ID), through a
	// retry's backoff too.
	if body := rec.Body.String(); !strings.HasSuffix(body, "event: status\ndata: "+body[strings.LastIndex(body, "data: ")+len("data: "):]) || strings.Contains(body, "id:\n") {
		t.Fatalf("the event after a numbered line clears the id:\n%s", body)
	}
}

// A stream of one delivery's run (?delivery=) shows that run's output only:
// live lines of a later delivery's run under the same run id are not its
// own, though both count attempts from 1.
func TestRuns_EventsOfOneDeliveryShowNoOtherDeliverysLines(t *testing.T) {
	const id = "run_two_deliveries"
	now := time.Now().UTC()
	rec := httptest.NewRecorder()
	st := &runStream{w: echo.New().NewContext(nil, rec).Response(), liveFrom: 1, only: "dlv_1"}
	lines := make(chan outputLine)
	st.status(&message.Run{ID: id, DeliveryID: "dlv_1", Status: message.StatusRunning, Attempt: 1, StartedAt: &now}, lines)
	st.line(outputLine{text: []byte("later\n"), n: 1, attempt: 1, delivery: "dlv_2"})
	st.status(&message.Run{ID: id, DeliveryID: "dlv_1", Status: message.StatusSucceeded, Attempt: 1, Output: "first\n"}, lines)
	var outputs []string
	for _, ev := range strings.Split(rec.Body.String(), "\n\n") {
		if o, ok := strings.CutPrefix(ev, "event: output\ndata: "); ok {
			outputs = append(outputs, o)
		}
	}
	if want := []string{`"first\n"`}; strings.Join(outputs, " ") != strings.Join(want, " ") {
		t.Fatalf("outputs %v, want %v", outputs, want)
	}
}

// eventsAnswer opens an event stream and returns the answer's status and,
// unless it is the stream itself (200, not read: it may never end), its body.
func eventsAnswer(t *testing.T, a *testAPI, path string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ans := answer{Code: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		ans.Body, _ = io.ReadAll(resp.Body)
	}
	return ans
}

// ?delivery= names a delivery of the run: a stream for one that does not
// exist, or is another run's, would wait for statuses that never come. It
// is not found; a delivery of the run, current or earlier, is streamed.
func TestRuns_EventsOfADeliveryNotTheRunsAreNotFound(t *testing.T) {
	a := newTestAPI(t)
	const id, other = "run_with_deliveries", "run_other"
	now := time.Now().UTC()
	for _, d := range []struct{ id, run string }{{"dlv_early", id}, {"dlv_current", id}, {"dlv_others", other}} {
		storeDelivery(t, a, message.Delivery{ID: d.id, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d.id, RunID: d.run, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_early", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "early\n"})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_current", Webhook: "gh", Job: "report", Status: message.StatusFailed, Attempt: 1, StartedAt: &now, Output: "current\n"})
	publishRun(t, a, message.Run{ID: other, DeliveryID: "dlv_others", Webhook: "gh", Job: "report", Status: message.StatusQueued})

	for _, d := range []string{"dlv_nope", "dlv_others"} {
		checkError(t, eventsAnswer(t, a, "/v1/runs/"+id+"/events?delivery="+d), 404, "not_found", "delivery "+d+" of run "+id)
	}
	wantEvents(t, collectEvents(t, openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_early")), []string{"output early", "status succeeded/1"})
	wantEvents(t, collectEvents(t, openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_current")), []string{"output current", "status failed/1"})
}

// A run id that is not a subject token is no run: not found, as GET
// /v1/runs/{id} answers, and never a subscription on a subject made of it
// (one that fails, answered 503, or "*", every run's output).
func TestRuns_EventsOfAnIDThatIsNotASubjectTokenAreNotFound(t *testing.T) {
	a := newTestAPI(t)
	for _, id := range []string{"a%20b", "a.b", "%2A", "%3E", "a%09b"} {
		t.Run(id, func(t *testing.T) {
			checkError(t, a.do("GET", "/v1/runs/"+id, nil), 404, "not_found", "")
			ans := eventsAnswer(t, a, "/v1/runs/"+id+"/events")
			checkError(t, ans, 404, "not_found", "")
			if ans.Header.Get("Retry-After") != "" {
				t.Fatalf("Retry-After on a 404: %v", ans.Header)
			}
		})
	}
}

// A duplicate that only the dispatcher's dedup claim caught was answered as
// a new delivery, so a client may follow it by its own id: the stream is
// the run it repeats, and it ends with that run, not never.
func TestRuns_EventsOfADuplicateDeliveryFollowTheRun(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_dup"
	now := time.Now().UTC()
	for _, d := range []string{"dlv_first", "dlv_dup"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "first\n"})
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_dup", DeliveryID: "dlv_dup", RunID: id, Webhook: "gh", Job: "report", Status: message.DeliveryDuplicate, FinishedAt: &now})
	wantEvents(t, collectEvents(t, openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_dup")), []string{"status duplicate/0", "output first", "status succeeded/1"})
}

// A duplicate whose record the dispatcher stores only after the client
// came: the stream watches for it beside the run's statuses and then
// follows the run it repeats (before, it waited until the client left).
func TestRuns_EventsOfADeliveryFoundDuplicateLaterFollowTheRun(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_dup_later"
	now := time.Now().UTC()
	for _, d := range []string{"dlv_first", "dlv_dup"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1, StartedAt: &now})
	got := openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_dup")
	time.Sleep(200 * time.Millisecond) // the stream is waiting for dlv_dup's statuses
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_dup", DeliveryID: "dlv_dup", RunID: id, Webhook: "gh", Job: "report", Status: message.DeliveryDuplicate, FinishedAt: &now})
	time.Sleep(200 * time.Millisecond)
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "first\n"})
	wantEvents(t, collectEvents(t, got), []string{"status duplicate/0", "status running/1", "output first", "status succeeded/1"})
}

// A delivery rejected apart from the run it would repeat (its webhook
// deleted before the dispatcher came to it) has a record of its own, and
// that record is all its stream sends, whether stored before the client
// came or after.
func TestRuns_EventsOfADeliveryRejectedApartFromTheRunEnd(t *testing.T) {
	for _, later := range []bool{false, true} {
		t.Run(map[bool]string{false: "stored before", true: "stored after"}[later], func(t *testing.T) {
			a := newTestAPI(t)
			const id = "run_own"
			now := time.Now().UTC()
			for _, d := range []string{"dlv_first", "dlv_late"} {
				storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
			}
			publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "first\n"})
			own := message.Run{Kind: message.KindDelivery, ID: "dlv_late", DeliveryID: "dlv_late", RunID: id, Webhook: "gh", Job: "report", Status: message.StatusRejected, Error: "webhook gh no longer exists", FinishedAt: &now}
			if !later {
				publishRun(t, a, own)
			}
			got := openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_late")
			if later {
				time.Sleep(200 * time.Millisecond)
				publishRun(t, a, own)
			}
			wantEvents(t, collectEvents(t, got), []string{"status rejected/0"})
		})
	}
}

// A record of its own that does not stand for the run — the "dispatched"
// a dispatcher before the seventh session stored for every delivery, kept
// for the retention — leaves the stream on the run's statuses of that
// delivery, stored or arriving.
func TestRuns_EventsOfADeliveryWithAnOldDispatchedRecordFollowItsRun(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_old_record"
	now := time.Now().UTC()
	for _, d := range []string{"dlv_old", "dlv_new"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_old", DeliveryID: "dlv_old", RunID: id, Webhook: "gh", Job: "report", Status: message.DeliveryDispatched})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_old", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "old\n"})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_new", Webhook: "gh", Job: "report", Status: message.StatusQueued})
	wantEvents(t, collectEvents(t, openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_old")), []string{"output old", "status succeeded/1"})

	// Arriving while the stream waits for the delivery's statuses.
	storeDelivery(t, a, message.Delivery{ID: "dlv_later", Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-later", RunID: id, ReceivedAt: now})
	got := openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_later")
	time.Sleep(200 * time.Millisecond)
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_later", DeliveryID: "dlv_later", RunID: id, Webhook: "gh", Job: "report", Status: message.DeliveryDispatched})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_later", Webhook: "gh", Job: "report", Status: message.StatusQueued})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_later", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "later\n"})
	wantEvents(t, collectEvents(t, got), []string{"status queued/0", "output later", "status succeeded/1"})
}

// A client that joined a running attempt the executor gave no snapshot of
// has been sent only the live lines after it came: at the attempt's end
// the tail's start is not taken for them though its text is the same (it
// sent "c", "a", "b" again, and the CLI printed them twice).
func TestRuns_EventsJoinedWithoutASnapshotSendNoLineTwice(t *testing.T) {
	now := time.Now().UTC()
	rec := httptest.NewRecorder()
	st := &runStream{w: echo.New().NewContext(nil, rec).Response(), liveFrom: 1, joinedRunning: true, snapshotAttempt: 1}
	lines := make(chan outputLine)
	st.status(&message.Run{ID: "run_j", Status: message.StatusRunning, Attempt: 1, StartedAt: &now}, lines)
	st.line(outputLine{text: []byte("a\n"), n: 4, attempt: 1})
	st.line(outputLine{text: []byte("b\n"), n: 5, attempt: 1})
	st.status(&message.Run{ID: "run_j", Status: message.StatusSucceeded, Attempt: 1, Output: "a\nb\nc\na\nb\n"}, lines)
	if got := strings.Count(rec.Body.String(), "event: output"); got != 2 {
		t.Fatalf("%d output events, want the 2 live lines:\n%s", got, rec.Body.String())
	}
}

// The watch for a delivery's own record ends when that record comes: a
// duplicate's stream goes on with the run it repeats, possibly for hours,
// and kept a STATUS consumer of the delivery's subject open all along.
func TestRuns_EventsOfADeliveryFoundDuplicateStopWatchingTheDelivery(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_dup_watch"
	now := time.Now().UTC()
	for _, d := range []string{"dlv_first", "dlv_dupw"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1, StartedAt: &now})
	got := openEventsAt(t, a, "/v1/runs/"+id+"/events?delivery=dlv_dupw")
	watching := func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := a.js.Stream(ctx, bus.StreamStatus)
		if err != nil {
			return 0, err
		}
		n := 0
		infos := s.ListConsumers(ctx)
		for info := range infos.Info() {
			if info.Config.FilterSubject == bus.StatusSubject("default", "dlv_dupw") || slices.Contains(info.Config.FilterSubjects, bus.StatusSubject("default", "dlv_dupw")) {
				n++
			}
		}
		return n, infos.Err()
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if n, err := watching(); err != nil || n != 1 {
			return fmt.Errorf("%d consumers of the delivery's subject (%v), want 1 while its record may come", n, err)
		}
		return nil
	})
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_dupw", DeliveryID: "dlv_dupw", RunID: id, Webhook: "gh", Job: "report", Status: message.DeliveryDuplicate, FinishedAt: &now})
	testenv.Eventually(t, 5*time.Second, func() error {
		if n, err := watching(); err != nil || n != 0 {
			return fmt.Errorf("%d consumers of the delivery's subject (%v) once its record came, the stream still open", n, err)
		}
		return nil
	})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "first\n"})
	wantEvents(t, collectEvents(t, got), []string{"status duplicate/0", "status running/1", "output first", "status succeeded/1"})
}

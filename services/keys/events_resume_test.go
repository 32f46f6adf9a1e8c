package keys

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

// openEventsFrom opens a run's event stream as a reconnecting EventSource
// does (Last-Event-ID: lastID, none when "") and returns its events, each
// described as "output <id> <text>" or "status <status>/<attempt>".
func openEventsFrom(t *testing.T, a *testAPI, id, lastID string) <-chan string {
	t.Helper()
	header := http.Header{}
	if lastID != "" {
		header.Set("Last-Event-ID", lastID)
	}
	resp := openStream(t, a, "/v1/runs/"+id+"/events", header)
	got := make(chan string, 64)
	go func() {
		defer close(got)
		sc := bufio.NewScanner(resp.Body)
		var name, evID, data string
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case line == "id:":
				evID = ""
			case strings.HasPrefix(line, "id: "):
				evID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && name == "output":
				var text string
				_ = json.Unmarshal([]byte(data), &text)
				got <- "output " + evID + " " + strings.TrimSuffix(text, "\n")
				name = ""
			case line == "" && name == "status":
				var r message.Run
				_ = json.Unmarshal([]byte(data), &r)
				got <- "status " + r.Status + "/" + strconv.Itoa(r.Attempt)
				name = ""
			}
		}
	}()
	return got
}

// nextEvents returns the stream's next n events.
func nextEvents(t *testing.T, got <-chan string, n int) []string {
	t.Helper()
	var evs []string
	for len(evs) < n {
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("the stream ended after %v", evs)
			}
			evs = append(evs, ev)
		case <-time.After(5 * time.Second):
			t.Fatalf("no event within 5s after %v", evs)
		}
	}
	return evs
}

// A client reconnecting to a running run with the id of the last line it
// got (an EventSource's Last-Event-ID) gets the lines after it only, each
// with its id; a client without one gets the lines so far with their ids.
func TestRuns_EventsResumeAfterTheLastEventID(t *testing.T) {
	a := newTestAPI(t)
	publishRun(t, a, message.Run{ID: "run_resume", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	answerSnapshots(t, a, "run_resume", "one\ntwo\nthree\n", 3)

	fresh := openEventsFrom(t, a, "run_resume", "")
	wantEvents(t, nextEvents(t, fresh, 4), []string{"status running/1", "output 1.1 one", "output 1.2 two", "output 1.3 three"})

	back := openEventsFrom(t, a, "run_resume", "1.2")
	wantEvents(t, nextEvents(t, back, 2), []string{"status running/1", "output 1.3 three"})
	publishLine(t, a, "run_resume", 1, 4, "four\n")
	wantEvents(t, nextEvents(t, back, 1), []string{"output 1.4 four"})
	wantEvents(t, nextEvents(t, fresh, 1), []string{"output 1.4 four"})

	// Back after the line the snapshot ends with: nothing of it again.
	late := openEventsFrom(t, a, "run_resume", "1.4")
	publishLine(t, a, "run_resume", 1, 5, "five\n")
	wantEvents(t, nextEvents(t, late, 2), []string{"status running/1", "output 1.5 five"})
}

// A client reconnecting after the attempt it had lines of ended (and the
// run went on to a retry) gets that attempt's remaining lines from its
// record, and nothing of an attempt before it.
func TestRuns_EventsResumeIntoEndedAttempts(t *testing.T) {
	a := newTestAPI(t)
	id := "run_resume_end"
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusQueued, Attempt: 1, Output: "a1\nb1\n", OutputLines: 2})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 2})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusFailed, Attempt: 2, Output: "a2\nb2\nc2\n", OutputLines: 3})

	wantEvents(t, drain(t, openEventsFrom(t, a, id, "2.1")), []string{
		"status running/1", "status queued/1", "status running/2", "output 2.2 b2", "output 2.3 c2", "status failed/2",
	})
	wantEvents(t, drain(t, openEventsFrom(t, a, id, "1.2")), []string{
		"status running/1", "status queued/1", "status running/2", "output 2.1 a2", "output 2.2 b2", "output 2.3 c2", "status failed/2",
	})
	// Without an id: every line, numbered.
	wantEvents(t, drain(t, openEventsFrom(t, a, id, "")), []string{
		"status running/1", "output 1.1 a1", "output 1.2 b1", "status queued/1", "status running/2", "output 2.1 a2", "output 2.2 b2", "output 2.3 c2", "status failed/2",
	})
}

// Where a tail's lines cannot be matched to their numbers (lines dropped
// before the kept tail, a long line published in pieces), it is sent whole
// and without ids: some lines twice rather than one missed.
func TestRuns_EventsResumeSendsATailItCannotNumberWhole(t *testing.T) {
	a := newTestAPI(t)
	id := "run_resume_cut"
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	publishRun(t, a, message.Run{ID: id, Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1,
		Output: message.OutputTruncated + "y\nz\n", OutputLines: 3})
	wantEvents(t, drain(t, openEventsFrom(t, a, id, "1.2")), []string{
		"status running/1", "output  […output truncated…]", "output  y", "output  z", "status succeeded/1",
	})
}

// An output line's id names its delivery ("<attempt>.<n>.<delivery>"): a
// client that reconnects with the id of an earlier delivery's run (the
// event sent again under the same run id) gets all of the current one's
// lines.
func TestRuns_EventsResumeOnlyWithinTheDeliveryTheIDNames(t *testing.T) {
	a := newTestAPI(t)
	id := "run_resume_dlv"
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_two", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_two", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, Output: "x\ny\nz\n", OutputLines: 3})
	wantEvents(t, drain(t, openEventsFrom(t, a, id, "1.2.dlv_two")), []string{
		"status running/1", "output 1.3.dlv_two z", "status succeeded/1",
	})
	wantEvents(t, drain(t, openEventsFrom(t, a, id, "1.2.dlv_one")), []string{
		"status running/1", "output 1.1.dlv_two x", "output 1.2.dlv_two y", "output 1.3.dlv_two z", "status succeeded/1",
	})
	// An id of a release before the delivery was in it still resumes.
	wantEvents(t, drain(t, openEventsFrom(t, a, id, "1.2")), []string{
		"status running/1", "output 1.3.dlv_two z", "status succeeded/1",
	})
}

// The final status of a delivery's run carries an id
// ("<attempt>.end.<delivery>"); an EventSource reconnecting with it, as it
// does whenever a stream ends, gets 204 No Content, which stops it, rather
// than the finished run replayed every few seconds. A run that moved on
// since (the event's later delivery) is sent whole.
func TestRuns_EventsReconnectAfterTheEndGetsNoContent(t *testing.T) {
	a := newTestAPI(t)
	id := "run_ended"
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_one", Webhook: "gh", Job: "report", Status: message.StatusRunning, Attempt: 1})
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_one", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, Output: "x\n", OutputLines: 1})

	resp := openStream(t, a, "/v1/runs/"+id+"/events", nil)
	body, _ := io.ReadAll(resp.Body)
	lastID := ""
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			lastID = v
		}
	}
	if lastID != "1.end.dlv_one" {
		t.Fatalf("the stream's last id is %q, want the final status' 1.end.dlv_one:\n%s", lastID, body)
	}
	reconnect := func(lastID string) int {
		req, _ := http.NewRequest("GET", a.URL+"/v1/runs/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Last-Event-ID", lastID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := reconnect(lastID); code != http.StatusNoContent {
		t.Fatalf("reconnecting after the end: HTTP %d, want 204", code)
	}
	// The event sent again later: a new delivery's run under the same id.
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_two", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, Output: "y\n", OutputLines: 1})
	if code := reconnect(lastID); code != http.StatusOK {
		t.Fatalf("reconnecting after the end of an earlier delivery's run: HTTP %d, want 200 and the new run", code)
	}
	wantEvents(t, drain(t, openEventsFrom(t, a, id, lastID)), []string{"output 1.1.dlv_two y", "status succeeded/1"})
}

// A reconnect after the end of a stream of one delivery (?delivery=) gets
// 204 too, when that delivery is not the run's current one: a duplicate's
// stream (it ends with the run it repeats), one rejected apart from the
// run (its own record ends it, now with an id), and an earlier delivery
// of a run id a later one reuses. Each was replayed whole on every
// reconnect.
func TestRuns_EventsReconnectAfterTheEndOfOneDeliveryGetsNoContent(t *testing.T) {
	a := newTestAPI(t)
	const id = "run_ends"
	now := time.Now().UTC()
	for _, d := range []string{"dlv_first", "dlv_dup", "dlv_late", "dlv_next"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-" + d, RunID: id, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_first", Webhook: "gh", Job: "report", Status: message.StatusSucceeded, Attempt: 1, StartedAt: &now, Output: "first\n", OutputLines: 1})
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_dup", DeliveryID: "dlv_dup", RunID: id, Webhook: "gh", Job: "report", Status: message.DeliveryDuplicate, FinishedAt: &now})
	publishRun(t, a, message.Run{Kind: message.KindDelivery, ID: "dlv_late", DeliveryID: "dlv_late", RunID: id, Webhook: "gh", Job: "report", Status: message.StatusRejected, Error: "webhook gh no longer exists", FinishedAt: &now})

	lastIDOf := func(path string) string {
		resp := openStream(t, a, path, nil)
		body, _ := io.ReadAll(resp.Body)
		last := ""
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				last = v
			}
		}
		return last
	}
	reconnect := func(path, lastID string) int {
		req, _ := http.NewRequest("GET", a.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Last-Event-ID", lastID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	check := func(delivery, wantLast string) {
		t.Helper()
		path := "/v1/runs/" + id + "/events?delivery=" + delivery
		last := lastIDOf(path)
		if last != wantLast {
			t.Fatalf("%s: the stream's last id is %q, want %q", delivery, last, wantLast)
		}
		if code := reconnect(path, last); code != http.StatusNoContent {
			t.Errorf("%s: reconnecting after the end: HTTP %d, want 204", delivery, code)
		}
	}
	check("dlv_dup", "1.end.dlv_first")
	check("dlv_late", "0.end.dlv_late")
	// A later delivery of the event reuses the run id once the first ended.
	publishRun(t, a, message.Run{ID: id, DeliveryID: "dlv_next", Webhook: "gh", Job: "report", Status: message.StatusQueued})
	check("dlv_first", "1.end.dlv_first")

	// A run that ended before it ran (cancelled while queued: attempt 0),
	// followed by a later delivery of its event.
	const zero = "run_ends_queued"
	for _, d := range []string{"dlv_cancelled", "dlv_after"} {
		storeDelivery(t, a, message.Delivery{ID: d, Namespace: "default", Webhook: "gh", Job: "report", EventID: "evt-zero", RunID: zero, ReceivedAt: now})
	}
	publishRun(t, a, message.Run{ID: zero, DeliveryID: "dlv_cancelled", Webhook: "gh", Job: "report", Status: message.StatusCancelled, FinishedAt: &now})
	publishRun(t, a, message.Run{ID: zero, DeliveryID: "dlv_after", Webhook: "gh", Job: "report", Status: message.StatusQueued})
	path := "/v1/runs/" + zero + "/events?delivery=dlv_cancelled"
	if last := lastIDOf(path); last != "0.end.dlv_cancelled" {
		t.Fatalf("dlv_cancelled: the stream's last id is %q, want 0.end.dlv_cancelled", last)
	}
	if code := reconnect(path, "0.end.dlv_cancelled"); code != http.StatusNoContent {
		t.Errorf("dlv_cancelled: reconnecting after the end: HTTP %d, want 204", code)
	}
}

// followRun failing (NATS answering nothing) hands back a stop function
// all the same: the handler defers it, and a nil one panicked, turning the
// 503 into a 500.
func TestFollowRun_FailingGivesAStopToCall(t *testing.T) {
	a := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, stop, err := a.svc.followRun(ctx, nil, &message.Run{ID: "run_x", Namespace: "default", DeliveryID: "dlv_x", Status: message.StatusQueued}, "", resumePoint{})
	if err == nil {
		t.Fatal("followRun with an ended context did not fail")
	}
	if stop == nil {
		t.Fatal("followRun failed with a nil stop")
	}
	stop()
}

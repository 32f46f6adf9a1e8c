package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadEvents_ParsesServerSentEvents(t *testing.T) {
	in := ": keep-alive\n\nevent: status\ndata: {\"a\":1}\n\nevent: output\nid: 1.7\ndata: line1\ndata: line2\n\r\ndata: no name\n\n"
	var got []sseEvent
	if err := readEvents(strings.NewReader(in), func(ev sseEvent) bool { got = append(got, ev); return true }); err != nil {
		t.Fatal(err)
	}
	want := []sseEvent{{"status", `{"a":1}`, ""}, {"output", "line1\nline2", "1.7"}, {"", "no name", ""}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	n := 0
	_ = readEvents(strings.NewReader(in), func(sseEvent) bool { n++; return false })
	if n != 1 {
		t.Fatalf("stopping after the first event read %d", n)
	}
}

// fakeEvents serves /v1/runs/{id}/events: 404 for the first notFound
// calls, then the given stream; the first break calls end mid-run.
func fakeEvents(t *testing.T, notFound, breaks int32, stream string) (*apiClient, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n <= notFound {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"run run_x not found"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if n <= notFound+breaks {
			fmt.Fprint(w, strings.SplitAfter(stream, "\n\n")[0]) // the first event only
			return
		}
		fmt.Fprint(w, stream)
	}))
	t.Cleanup(srv.Close)
	return &apiClient{base: srv.URL, token: "t", ns: "default", http: srv.Client()}, &calls
}

const runStream = `event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","status":"queued"}

event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","status":"running","attempt":1}

event: output
data: "hello"

event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","status":"failed","exitCode":2,"output":"hello\n","error":"exit status 2"}

`

func TestWatchRun_WaitsForTheRunReconnectsAndPrintsEachEventOnce(t *testing.T) {
	c, calls := fakeEvents(t, 2, 1, runStream)
	var out bytes.Buffer
	r, err := watchRun(context.Background(), c, "run_x", "", &out, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "run run_x: queued\nrun run_x: running (attempt 1)\nhello\nrun run_x: failed (exit 2): exit status 2\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
	if calls.Load() != 4 {
		t.Fatalf("%d calls: want 2 not found, 1 broken stream, 1 whole", calls.Load())
	}
	if exitCode(runResult(r)) != codeRunFailed {
		t.Fatalf("a failed run: %v", runResult(r))
	}
}

func TestWatchRun_PrintsTheOutputOfARunThatEndedBeforeTheWatch(t *testing.T) {
	stream := strings.Replace(runStream, "event: output\ndata: \"hello\"\n\n", "", 1)
	stream = strings.Replace(stream, `"failed","exitCode":2`, `"succeeded","exitCode":0`, 1)
	stream = strings.Replace(stream, `,"error":"exit status 2"`, "", 1)
	c, _ := fakeEvents(t, 0, 0, stream)
	var out bytes.Buffer
	r, err := watchRun(context.Background(), c, "run_x", "", &out, 0)
	if err != nil || runResult(r) != nil {
		t.Fatalf("%v %v", r, err)
	}
	if !strings.Contains(out.String(), "hello\nrun run_x: succeeded (exit 0)") {
		t.Fatalf("printed %q", out.String())
	}
}

func TestWatchRun_GivesUpOnARunThatNeverAppears(t *testing.T) {
	c, _ := fakeEvents(t, 1<<30, 0, "")
	start := time.Now()
	_, err := watchRun(context.Background(), c, "run_x", "", &bytes.Buffer{}, 300*time.Millisecond)
	if exitCode(err) != codeNotFound || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c2, _ := fakeEvents(t, 0, 1<<30, runStream) // a stream that always breaks
	if _, err := watchRun(ctx, c2, "run_x", "", &bytes.Buffer{}, time.Second); exitCode(err) == codeOK {
		t.Fatal("a stream that never ends the run: want an error")
	}
}

// A send's --wait follows the delivery it sent: it asks the API for that
// delivery's run, and takes no other delivery's statuses under the same run
// id for its own (an earlier run of the event, sent again after its dedup
// window, ended before it).
func TestWatchRun_FollowsTheDeliveryItSent(t *testing.T) {
	var query atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query.Store(r.URL.RawQuery)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","deliveryId":"dlv_1","status":"succeeded","output":"old\n"}

event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","deliveryId":"dlv_2","status":"queued"}

event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","deliveryId":"dlv_2","status":"failed","exitCode":3,"output":"new\n"}

`)
	}))
	t.Cleanup(srv.Close)
	c := &apiClient{base: srv.URL, token: "t", ns: "default", http: srv.Client()}
	var out bytes.Buffer
	r, err := watchRun(context.Background(), c, "run_x", "dlv_2", &out, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.DeliveryID != "dlv_2" || r.Status != "failed" {
		t.Fatalf("final %+v, want dlv_2's failed run", r)
	}
	if q, _ := query.Load().(string); !strings.Contains(q, "delivery=dlv_2") {
		t.Fatalf("events asked with %q, want delivery=dlv_2", q)
	}
	if strings.Contains(out.String(), "old") || !strings.Contains(out.String(), "new") {
		t.Fatalf("printed:\n%s\nwant the second delivery's run only", out.String())
	}
}

// runs watch RUN --timeout that never read anything of the run says what
// it met, not that the run is still going: a run not found exits 3, an
// API that never answered 5.
func TestCLI_WatchTimeoutOfARunNeverReadSaysWhy(t *testing.T) {
	f := newFakeAPI(t)
	r := f.execCLI("runs", "watch", "run_nope", "--timeout", "1s", "--start-timeout", "1m")
	if r.Code != codeNotFound || !strings.Contains(r.Stderr, "run_nope not found") || strings.Contains(r.Stderr, "has not ended") {
		t.Fatalf("a run not found: %s", r)
	}
	r = runCLI("runs", "watch", "run_prod", "--timeout", "1s", "--api-url", "http://127.0.0.1:1", "--token", "tok")
	if r.Code != codeUnavailable || strings.Contains(r.Stderr, "has not ended") {
		t.Fatalf("an API that does not answer: %s", r)
	}
}

// A watch whose first try found no run but whose later try got the run's
// stream (the run exists, nothing has come yet) says at --timeout that the
// run has not ended, not that it was not found.
func TestCLI_WatchTimeoutAfterTheStreamCameSaysNotEnded(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "run run_x not found"}})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": waiting\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	r := runCLI("runs", "watch", "run_x", "--timeout", "2s", "--start-timeout", "1m", "--api-url", srv.URL, "--token", "tok")
	if r.Code != codeError || !strings.Contains(r.Stderr, "has not ended yet") {
		t.Fatalf("a run whose stream came after a 404: %s", r)
	}
}

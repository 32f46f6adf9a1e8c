package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sseStatus is a status event as the keys service sends it
// (services/keys/events.go): the run's whole record; fields are more of
// its JSON fields, each with a leading comma.
func sseStatus(status string, attempt int, fields ...string) string {
	return fmt.Sprintf(`event: status
data: {"schema":"hookrun.run.v1","kind":"run","id":"run_x","deliveryId":"dlv_1","status":%q,"attempt":%d%s}

`, status, attempt, strings.Join(fields, ""))
}

// sseOutput is an output event: the text as a JSON string.
func sseOutput(texts ...string) string {
	var b strings.Builder
	for _, s := range texts {
		j, _ := json.Marshal(s)
		fmt.Fprintf(&b, "event: output\ndata: %s\n\n", j)
	}
	return b.String()
}

// withOutput is the output field of a record that ends an attempt.
func withOutput(s string) string {
	j, _ := json.Marshal(s)
	return `,"exitCode":0,"output":` + string(j)
}

// fakeStreams serves /v1/runs/{id}/events: the given streams one per
// request, the last one again for any later request. A stream that does
// not reach a final status is one that broke: the watch reconnects.
func fakeStreams(t *testing.T, streams ...string) (*apiClient, *atomic.Int32) {
	t.Helper()
	return fakeStreamsSeeing(t, func(*http.Request) {}, streams...)
}

// fakeStreamsSeeing is fakeStreams that shows each request to see.
func fakeStreamsSeeing(t *testing.T, see func(*http.Request), streams ...string) (*apiClient, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		see(r)
		n := int(calls.Add(1))
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, streams[min(n, len(streams))-1])
	}))
	t.Cleanup(srv.Close)
	return &apiClient{base: srv.URL, token: "t", ns: "default", http: srv.Client()}, &calls
}

// numbered is lines from to to of "line N\n".
func numbered(from, to int) []string {
	var ls []string
	for i := from; i <= to; i++ {
		ls = append(ls, fmt.Sprintf("line %d\n", i))
	}
	return ls
}

// After a reconnection the keys service sends the run again from its
// first status: the running attempt's output so far, the whole output of
// the attempts that ended. The watch prints each part of it once.
func TestWatchRun_ReconnectedPrintsTheOutputOnce(t *testing.T) {
	const running1 = "run run_x: running (attempt 1)\n"
	const succeeded = "run run_x: succeeded (exit 0)\n"
	cases := []struct {
		name    string
		streams []string
		want    string
	}{
		{
			name: "the running attempt's lines sent again",
			streams: []string{
				sseStatus("running", 1) + sseOutput("line1\n"),
				sseStatus("running", 1) + sseOutput("line1\n", "line2\n") + sseStatus("succeeded", 1, withOutput("line1\nline2\n")),
			},
			want: running1 + "line1\nline2\n" + succeeded,
		},
		{
			name: "a broken stream each time, every one sending more",
			streams: []string{
				sseStatus("running", 1) + sseOutput("line1\n"),
				sseStatus("running", 1) + sseOutput("line1\n", "line2\n"),
				sseStatus("running", 1) + sseOutput("line1\n", "line2\n", "line3\n") + sseStatus("succeeded", 1, withOutput("line1\nline2\nline3\n")),
			},
			want: running1 + "line1\nline2\nline3\n" + succeeded,
		},
		{
			name: "the attempt ended meanwhile: its record's tail, not live lines",
			streams: []string{
				sseStatus("running", 1) + sseOutput("a\n", "b"),
				sseStatus("running", 1) + sseOutput("a\n", "bc\n", "d\n") + sseStatus("succeeded", 1, withOutput("a\nbc\nd\n")),
			},
			want: running1 + "a\nbc\nd\n" + succeeded,
		},
		{
			name: "a retried run, whose attempts print the same",
			streams: []string{
				sseStatus("running", 1) + sseOutput("start\n", "fail\n") + sseStatus("queued", 1, withOutput("start\nfail\n")) +
					sseStatus("running", 2) + sseOutput("start\n"),
				sseStatus("running", 1) + sseOutput("start\n", "fail\n") + sseStatus("queued", 1, withOutput("start\nfail\n")) +
					sseStatus("running", 2) + sseOutput("start\n", "ok\n") + sseStatus("succeeded", 2, withOutput("start\nok\n")),
			},
			want: running1 + "start\nfail\nrun run_x: queued\nrun run_x: running (attempt 2)\nstart\nok\n" + succeeded,
		},
		{
			name: "the running attempt stored again",
			streams: []string{
				sseStatus("running", 1) + sseOutput("one\n") + sseStatus("running", 1) + sseOutput("two\n"),
				sseStatus("running", 1) + sseOutput("one\n", "two\n") + sseStatus("running", 1) + sseOutput("three\n") + sseStatus("succeeded", 1, withOutput("one\ntwo\nthree\n")),
			},
			want: running1 + "one\ntwo\nthree\n" + succeeded,
		},
		{
			name: "an output the executor kept only the end of",
			streams: []string{
				sseStatus("running", 1) + sseOutput(numbered(1, 50)...),
				sseStatus("running", 1) + sseOutput(truncatedMark, "ne 20\n") + sseOutput(numbered(21, 52)...) +
					sseStatus("succeeded", 1, withOutput(truncatedMark+"ne 20\n"+strings.Join(numbered(21, 52), ""))),
			},
			want: running1 + strings.Join(numbered(1, 52), "") + succeeded,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, calls := fakeStreams(t, tc.streams...)
			var out bytes.Buffer
			r, err := watchRun(context.Background(), c, "run_x", "", &out, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "succeeded" || int(calls.Load()) != len(tc.streams) {
				t.Fatalf("ended %s after %d streams, want succeeded after %d", r.Status, calls.Load(), len(tc.streams))
			}
			if out.String() != tc.want {
				t.Fatalf("printed:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

// The executor sends a line longer than its bound in pieces, the "\n" on
// the last one only; the watch prints the line whole. An output that does
// not end its last line gets its line ended before the next status.
func TestWatchRun_PrintsALineSentInPiecesWhole(t *testing.T) {
	long := strings.Repeat("€", 3000) // 9000 bytes: three pieces of at most 4096
	c, _ := fakeStreams(t,
		sseStatus("running", 1)+sseOutput(long[:4095], long[4095:8190], long[8190:]+"\n", "no end")+
			sseStatus("queued", 1, withOutput(long+"\nno end"))+
			sseStatus("running", 2)+sseOutput("é", "é\n", "last")+
			sseStatus("succeeded", 2, withOutput("éé\nlast")))
	var out bytes.Buffer
	if _, err := watchRun(context.Background(), c, "run_x", "", &out, time.Second); err != nil {
		t.Fatal(err)
	}
	want := "run run_x: running (attempt 1)\n" + long + "\nno end\nrun run_x: queued\nrun run_x: running (attempt 2)\néé\nlast\nrun run_x: succeeded (exit 0)\n"
	if out.String() != want {
		t.Fatalf("printed %d lines:\n%s\nwant %d:\n%s", strings.Count(out.String(), "\n"), out.String(), strings.Count(want, "\n"), want)
	}
}

// A stream broken in the middle of a long line: the replay sends the line
// again (from the executor's snapshot, or the record), and the watch
// prints what follows the piece it printed, on the same line.
func TestWatchRun_ReconnectedInALongLineContinuesIt(t *testing.T) {
	long := strings.Repeat("€", 3000)
	c, _ := fakeStreams(t,
		sseStatus("running", 1)+sseOutput("first\n", long[:4095]),
		sseStatus("running", 1)+sseOutput("first\n", long[:4095], long[4095:8190])+sseOutput(long[8190:]+"\n")+
			sseStatus("succeeded", 1, withOutput("first\n"+long+"\n")),
	)
	var out bytes.Buffer
	if _, err := watchRun(context.Background(), c, "run_x", "", &out, time.Second); err != nil {
		t.Fatal(err)
	}
	want := "run run_x: running (attempt 1)\nfirst\n" + long + "\nrun run_x: succeeded (exit 0)\n"
	if out.String() != want {
		t.Fatalf("printed %d lines, want %d:\n%q", strings.Count(out.String(), "\n"), strings.Count(want, "\n"), out.String())
	}
}

// `send --wait` follows the delivery it sent. One that only the
// dispatcher's dedup claim found a duplicate (the ingress answered it as
// new) gets its duplicate record first, then the run it repeats, whose
// statuses are another delivery's: the watch follows that run to its end,
// on a reconnect too (before, it dropped those statuses and gave up after
// six reconnects, exit 5).
func TestWatchRun_ADeliveryFoundDuplicateFollowsTheRunItRepeats(t *testing.T) {
	dup := "event: status\ndata: {\"schema\":\"hookrun.run.v1\",\"kind\":\"delivery\",\"id\":\"dlv_dup\",\"deliveryId\":\"dlv_dup\",\"runId\":\"run_x\",\"status\":\"duplicate\"}\n\n"
	var lastQuery atomic.Pointer[string]
	c, calls := fakeStreamsSeeing(t, func(r *http.Request) { q := r.URL.RawQuery; lastQuery.Store(&q) },
		dup+sseStatus("running", 1)+sseOutput("first\n"),
		sseStatus("running", 1)+sseOutput("first\n")+sseStatus("succeeded", 1, withOutput("first\n")),
	)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final, err := watchRun(ctx, c, "run_x", "dlv_dup", &out, time.Second)
	if err != nil || final == nil || final.Status != "succeeded" {
		t.Fatalf("watch: %v %v (%d streams)\n%s", final, err, calls.Load(), out.String())
	}
	if got := out.String(); strings.Count(got, "first\n") != 1 || !strings.Contains(got, "delivery dlv_dup: a duplicate of run run_x") {
		t.Fatalf("printed:\n%s", got)
	}
	// The reconnect asked for the delivery of the run the duplicate
	// repeats (dlv_1 in sseStatus), not for the run id's current run.
	if q := lastQuery.Load(); q == nil || !strings.Contains(*q, "delivery=dlv_1") {
		t.Fatalf("reconnected with %v, want ?delivery=dlv_1", q)
	}
}

// sseLive is live output events as keys sends them: each numbered, its id
// "<attempt>.<n>".
func sseLive(attempt, from int, texts ...string) string {
	var b strings.Builder
	for i, s := range texts {
		j, _ := json.Marshal(s)
		fmt.Fprintf(&b, "event: output\nid: %d.%d\ndata: %s\n\n", attempt, from+i, j)
	}
	return b.String()
}

// A reconnect whose stream got no snapshot of the running attempt (the
// executor did not answer keys in time) has only the live lines after it:
// numbered, they are printed though their text repeats lines printed
// before the break (before, taken for a replay of those and left out).
func TestWatchRun_ReconnectedWithoutASnapshotKeepsRepeatedLines(t *testing.T) {
	c, _ := fakeStreams(t,
		sseStatus("running", 1)+sseLive(1, 1, "wait\n", "wait\n", "wait\n"),
		sseStatus("running", 1)+sseLive(1, 4, "wait\n", "wait\n", "done\n")+sseStatus("succeeded", 1, withOutput("wait\nwait\nwait\nwait\nwait\ndone\n")),
	)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := watchRun(ctx, c, "run_x", "", &out, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, "wait\n") != 5 || strings.Count(got, "done\n") != 1 {
		t.Fatalf("printed:\n%s", got)
	}
	// A numbered line sent again (the same number) is printed once.
	c, _ = fakeStreams(t,
		sseStatus("running", 1)+sseLive(1, 1, "a\n", "b\n"),
		sseStatus("running", 1)+sseLive(1, 2, "b\n", "c\n")+sseStatus("succeeded", 1, withOutput("a\nb\nc\n")),
	)
	out.Reset()
	if _, err := watchRun(ctx, c, "run_x", "", &out, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, "b\n") != 1 || !strings.Contains(got, "a\nb\nc\n") {
		t.Fatalf("printed:\n%s", got)
	}
}

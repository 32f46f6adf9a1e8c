package executor

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// payloadLeftOutPrefix begins the marker a status record holds in place of
// a webhook payload it could not hold within NATS' max_payload.
const payloadLeftOutPrefix = "[webhook_payload left out"

// A payload of 12 KiB of control bytes takes 72 KiB in JSON (each escaped
// as \u00XX): a "running" record holding it is over a max_payload of
// 64 KiB, which the run request (base64, 16 KiB) is not. The "running" is
// stored without the payload, as the dispatcher stores "queued", and the
// run runs once: before, NATS refused it every time, and the run was
// handed back for ever.
func TestExecutor_RunningStatusOverMaxPayloadIsStoredWithoutThePayload(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	e := newXEnvOn(t, testenv.StartNATSWith(t, embednats.Options{MaxPayload: maxPayload}))
	e.start(nil)
	job := e.script("escaped", `echo run >> "$OUT/ran"; wc -c < "$HOOKRUN_WEBHOOK_PAYLOAD_FILE"`)
	payload := strings.Repeat("\x01", 12<<10)
	rr := e.submit(job, payload)

	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 1)
	want(t, "payload bytes the job read", strings.TrimSpace(r.Output), "12288")
	h := e.history(rr)
	var statuses []string
	for _, s := range h {
		statuses = append(statuses, s.Status)
	}
	want(t, "statuses", strings.Join(statuses, ","), strings.Join([]string{message.StatusQueued, message.StatusRunning, message.StatusSucceeded}, ","))
	for _, s := range h[1:] {
		if !strings.HasPrefix(s.WebhookPayload, payloadLeftOutPrefix) {
			t.Errorf("%s record's webhook_payload %.40q, want the left-out marker", s.Status, s.WebhookPayload)
		}
	}
	e.waitRunsAcked()
	want(t, "runs of the job", e.readFile("ran"), "run")
}

// A failed attempt's retry status carries its output, here 12 KiB of
// control bytes (72 KiB in JSON), over a max_payload of 64 KiB: it is
// stored with its output cut to its end. Before, NATS refused it, the run
// was handed back with its "running" still stored, and each next attempt
// counted as one an executor's death interrupted: free, so a job with one
// retry ran five times.
func TestExecutor_RetryStatusOverMaxPayloadIsStoredWithItsOutputCut(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	e := newXEnvOn(t, testenv.StartNATSWith(t, embednats.Options{MaxPayload: maxPayload}))
	e.start(nil)
	job := e.script("noisy", `echo x >> "$OUT/attempts"; head -c 12288 /dev/zero | tr '\0' '\001'; exit 1`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(100*time.Millisecond)
	})
	rr := e.submit(job, "{}")

	r := e.final(rr, 20*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "attempt", r.Attempt, 2)
	want(t, "interrupted attempts", r.Interrupted, 0)
	want(t, "attempts run", strings.Count(e.readFile("attempts"), "x"), 2)
	var retry *message.Run
	for _, s := range e.history(rr) {
		if s.Status == message.StatusQueued && s.Attempt == 1 {
			retry = &s
		}
	}
	if retry == nil {
		t.Fatal("no retry status of attempt 1 stored")
	}
	if !strings.HasPrefix(retry.Output, message.OutputTruncated) || !strings.HasSuffix(retry.Output, "\x01\x01\x01") || len(retry.Output) >= 12<<10 {
		t.Errorf("retry status' output (%d bytes) %.40q: want the output's end, marked as cut", len(retry.Output), retry.Output)
	}
	if !strings.Contains(retry.Error, "retrying in") {
		t.Errorf("retry status' error %q: want why and when", retry.Error)
	}
	want(t, "final statuses", finals(e.history(rr)), 1)
}

// Whatever makes a record large (payload, output of escaped bytes, error,
// arguments), the fitted record fits with its headers, and keeps what it
// can: the output's end, the status, the arguments' names.
func TestFitStatus_RecordFitsAndKeepsTheOutputsEnd(t *testing.T) {
	const limit = 64 << 10
	big := strings.Repeat("\x01", 20<<10) // 120 KiB in JSON
	for _, tc := range []struct {
		name string
		r    message.Run
	}{
		{"payload", message.Run{WebhookPayload: big}},
		{"output", message.Run{Output: big + "the end\n"}},
		{"error", message.Run{Error: big}},
		{"args", message.Run{Args: map[string]string{"a": big, "b": big}}},
		{"all", message.Run{WebhookPayload: big, Output: "é" + big + "the end\n", Error: big, Args: map[string]string{"a": big}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.ID, r.Status = "run_x", message.StatusFailed
			if err := fitStatus(&r, limit); err != nil {
				t.Fatal(err)
			}
			data, err := message.MarshalNoHTMLEscape(&r)
			if err != nil {
				t.Fatal(err)
			}
			if len(data)+statusHeaderRoom > limit {
				t.Fatalf("fitted record takes %d bytes, over %d with its headers", len(data), limit)
			}
			want(t, "status", r.Status, message.StatusFailed)
			if tc.r.Output != "" && (!strings.HasPrefix(r.Output, message.OutputTruncated) || !strings.HasSuffix(r.Output, "the end\n") || !utf8.ValidString(r.Output) || len(r.Output) < 4<<10) {
				t.Errorf("output of %d bytes, %.40q: want its end, as much as fits, marked as cut", len(r.Output), r.Output)
			}
			if len(tc.r.Args) > 0 && len(r.Args) != len(tc.r.Args) {
				t.Errorf("arguments %v: want their names kept", r.Args)
			}
		})
	}
}

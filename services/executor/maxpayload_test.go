package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A final status over NATS' max_payload can never be stored as it is: the
// executor stores it without its payload (a marker in its place) and with
// its output cut to the end that fits, so that the run ends with its real
// status (and exit code), acked, instead of being retried until shutdown
// and run again by its redelivery.
func TestExecutor_FinalStatusOverMaxPayloadIsStoredStripped(t *testing.T) {
	t.Parallel()
	// The run request and the "running" status (a 1 KiB payload) fit in
	// 64 KiB; the final status, with the job's tail of output (MaxOutput,
	// bounded at start-up to what a snapshot answer can hold, just under
	// 64 KiB) beside the payload, does not.
	const maxPayload = 64 << 10
	e := newXEnvOn(t, testenv.StartNATSWith(t, embednats.Options{MaxPayload: maxPayload}))
	if got := e.nc.MaxPayload(); got != maxPayload {
		t.Fatalf("server max_payload = %d, want %d", got, maxPayload)
	}
	if e.conf.MaxOutput < maxPayload {
		t.Fatalf("MaxOutput %d: the output kept must reach max_payload %d alone", e.conf.MaxOutput, maxPayload)
	}
	e.start(nil)

	// 100 KiB of output, then exit 0; each run leaves a line in $OUT/ran.
	job := e.script("loud", `echo run >> "$OUT/ran"; head -c 102400 /dev/zero | tr '\0' x; echo`, func(j *resource.Job) {
		j.Spec.Args = []resource.Arg{{Name: "topic", Default: def("none")}}
	})
	payload := `{"pad":"` + strings.Repeat("p", 1<<10) + `"}`
	rr := e.submit(job, payload, func(rr *message.RunRequest) {
		rr.Args = map[string]string{"topic": "robots"}
	})

	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	if r.ExitCode == nil {
		t.Fatal("exit code not stored")
	}
	want(t, "exit code", *r.ExitCode, 0)
	want(t, "attempt", r.Attempt, 1)
	if !strings.HasPrefix(r.Output, message.OutputTruncated) || !strings.HasSuffix(r.Output, "xxxx\n") || len(r.Output) >= maxPayload {
		t.Errorf("output of %d bytes, %.30q…: want its end, marked as cut", len(r.Output), r.Output)
	}
	want(t, "error", r.Error, "")
	want(t, "topic kept", r.Args["topic"], "robots")
	if !strings.HasPrefix(r.WebhookPayload, payloadLeftOutPrefix) {
		t.Errorf("webhook payload %.40q, want the left-out marker", r.WebhookPayload)
	}
	if r.StartedAt == nil || r.FinishedAt == nil {
		t.Fatalf("started %v, finished %v: want both kept", r.StartedAt, r.FinishedAt)
	}

	// Stored once, after "running" (which still had the payload: the
	// fitting, not the record, left it out).
	h := e.history(rr)
	var statuses []string
	for _, s := range h {
		statuses = append(statuses, s.Status)
	}
	want(t, "statuses", strings.Join(statuses, ","), strings.Join([]string{message.StatusQueued, message.StatusRunning, message.StatusSucceeded}, ","))
	want(t, "final statuses", finals(h), 1)
	want(t, "running status's topic", h[1].Args["topic"], "robots")
	want(t, "running status's payload", h[1].WebhookPayload, payload)

	// Acked: the request leaves RUNS, and the job ran once.
	e.waitRunsAcked()
	want(t, "runs of the job", e.readFile("ran"), "run")
}

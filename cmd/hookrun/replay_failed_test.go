package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/testenv"
)

const flakyManifest = `apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: flaky}
spec:
  command: ["/bin/sh", "-c", "test \"$HOOKRUN_ARG_OK\" = yes"]
  args:
    - {name: ok, default: "no", value: "{{ .body.ok }}"}
  timeout: 1m
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: flaky-hook}
spec: {job: flaky, auth: {none: {}}}
`

// replay --failed replays the events whose newest run failed (that run's
// delivery), oldest first, and leaves those a replay has run well since;
// --dry-run lists them only; more than --max are refused.
func TestCLI_ReplayFailedRecoversTheFailedEvents(t *testing.T) {
	d := startDev(t)
	d.ok("apply", "-f", writeFile(t, t.TempDir(), "flaky.yaml", flakyManifest))
	send := func(body string, wantCode int) (run, delivery string) {
		t.Helper()
		r := d.run("send", "flaky-hook", "-d", body, "--wait")
		if r.Code != wantCode {
			t.Fatalf("send %s: %s", body, r)
		}
		return runIDRE.FindStringSubmatch(r.Stdout)[1], deliveryIDRE.FindStringSubmatch(r.Stdout)[1]
	}
	_, firstDelivery := send(`{"ok":"no"}`, codeRunFailed)
	send(`{"ok":"yes"}`, 0)
	secondRun, _ := send(`{"ok":"no"}`, codeRunFailed)
	// The first event's replay fails too: its event has two failed runs,
	// and is replayed once, as its newest.
	r := d.run("replay", firstDelivery, "--wait")
	if r.Code != codeRunFailed {
		t.Fatalf("replay of the first delivery: %s", r)
	}
	replayRun := runIDRE.FindStringSubmatch(r.Stdout)[1]

	var listed []replayedRun
	d.okJSON(&listed, "replay", "--failed", "--webhook", "flaky-hook", "--dry-run", "-o", "json")
	if len(listed) != 2 || listed[0].Run != secondRun || listed[1].Run != replayRun {
		t.Fatalf("replay --failed --dry-run listed %+v, want runs %s then %s (oldest first, one per event)", listed, secondRun, replayRun)
	}
	for _, l := range listed {
		if l.Replay != "" || l.Status != "failed" {
			t.Fatalf("--dry-run: %+v, want a failed run and no replay", l)
		}
	}
	d.expectCode(codeUsage, "2 failed events to replay, more than --max 1", "replay", "--failed", "--webhook", "flaky-hook", "--max", "1")
	d.expectCode(codeUsage, "go with --failed", "replay", firstDelivery, "--webhook", "flaky-hook")
	d.expectCode(codeUsage, "", "replay", firstDelivery, "--failed")
	d.expectCode(codeUsage, "follow one replay", "replay", "--failed", "--timeout", "1m")
	if out := d.ok("replay", "--failed", "--webhook", "flaky-hook", "--max", "1", "--dry-run"); !strings.Contains(out, "would replay 2 deliveries, more than --max 1") {
		t.Fatalf("--dry-run over --max:\n%s", out)
	}
	if out := d.ok("replay", "--failed", "--webhook", "flaky-hook", "--since", "1ms", "--dry-run"); !strings.Contains(out, "would replay 0 deliveries") {
		t.Fatalf("--since 1ms:\n%s", out)
	}

	// The job fixed, the failed events are replayed and run well.
	d.ok("apply", "-f", writeFile(t, t.TempDir(), "fixed.yaml", strings.Replace(flakyManifest, `test \"$HOOKRUN_ARG_OK\" = yes`, `true`, 1)))
	out := d.ok("replay", "--failed", "--webhook", "flaky-hook")
	if !strings.Contains(out, "replayed 2 of 2 deliveries") {
		t.Fatalf("replay --failed:\n%s", out)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		var runs []map[string]any
		d.okJSON(&runs, "get", "runs", "--webhook", "flaky-hook", "--status", "succeeded", "-o", "json")
		if len(runs) != 3 {
			return fmt.Errorf("%d succeeded runs, want 3 (the one that ran well, and the two replays)", len(runs))
		}
		return nil
	})
	// Their events' newest runs succeeded: nothing is left to replay,
	// though their earlier runs still read failed.
	if out := d.ok("replay", "--failed", "--webhook", "flaky-hook", "--dry-run"); !strings.Contains(out, "would replay 0 deliveries") {
		t.Fatalf("replay --failed after the replays ran well:\n%s", out)
	}
}

// A rejected run (its webhook disabled, its job missing when the
// dispatcher came to it) waits for a fix as a failed one does: replay
// --failed replays it, and a replay the API refuses (the webhook still
// disabled) is listed with the API's reason.
func TestCLI_ReplayFailedTakesRejectedRuns(t *testing.T) {
	now := time.Now().UTC()
	at := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339Nano) }
	runs := []map[string]any{ // newest first, as the API lists them
		{"id": "run_ok", "webhook": "w", "deliveryId": "dlv_ok", "status": "succeeded", "queuedAt": at(1 * time.Minute), "webhook_event_id": "e-ok"},
		{"id": "run_disabled", "webhook": "off", "deliveryId": "dlv_disabled", "status": "rejected", "webhook_received_at": at(2 * time.Minute), "webhook_event_id": "e-off"},
		{"id": "run_nojob", "webhook": "w", "deliveryId": "dlv_nojob", "status": "rejected", "webhook_received_at": at(3 * time.Minute), "webhook_event_id": "e-nojob"},
		{"id": "run_filtered", "webhook": "w", "deliveryId": "dlv_filtered", "status": "filtered", "webhook_received_at": at(4 * time.Minute), "webhook_event_id": "e-filtered"},
		{"id": "run_failed", "webhook": "w", "deliveryId": "dlv_failed", "status": "failed", "queuedAt": at(5 * time.Minute), "webhook_event_id": "e-failed"},
	}
	var mu sync.Mutex
	var replayed []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"runs": runs})
	})
	mux.HandleFunc("POST /v1/deliveries/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "dlv_disabled" {
			writeJSON(w, 409, map[string]any{"error": map[string]string{"code": "webhook_disabled", "message": "webhook default/off is disabled (spec.disabled): its deliveries cannot be replayed until it is enabled again"}})
			return
		}
		mu.Lock()
		replayed = append(replayed, id)
		mu.Unlock()
		writeJSON(w, 202, map[string]any{"replayOf": id, "deliveryId": "dlv_new_" + id, "executionId": "run_new_" + id, "status": "queued"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cli := func(args ...string) cliResult {
		return runCLI(append(args, "--api-url", srv.URL, "--token", "tok")...)
	}

	r := cli("replay", "--failed", "--dry-run", "-o", "json")
	var listed []replayedRun
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &listed) != nil {
		t.Fatalf("--dry-run: %s", r)
	}
	var ids []string
	for _, l := range listed {
		ids = append(ids, l.Run)
	}
	if want := []string{"run_failed", "run_nojob", "run_disabled"}; !slices.Equal(ids, want) {
		t.Fatalf("--dry-run listed %v, want %v (failed and rejected, oldest first; not filtered or succeeded)", ids, want)
	}

	r = cli("replay", "--failed")
	if r.Code != codeError || !strings.Contains(r.Stdout, "replayed 2 of 3 deliveries") || !strings.Contains(r.Stdout, "until it is enabled again") {
		t.Fatalf("replay --failed with one webhook still disabled: %s", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"dlv_failed", "dlv_nojob"}; !slices.Equal(replayed, want) {
		t.Fatalf("replayed %v, want %v", replayed, want)
	}
}

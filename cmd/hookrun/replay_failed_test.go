package main

import (
	"fmt"
	"strings"
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

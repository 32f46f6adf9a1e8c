package main

import (
	"strings"
	"testing"
)

// A disabled webhook (spec.disabled) keeps its endpoint, which answers
// 404: `get webhooks` says so where the URL would be, and `send` says the
// webhook is disabled rather than only "endpoint not found".
func TestCLI_ADisabledWebhookIsShownAndNamedSo(t *testing.T) {
	d := startDev(t)
	f := writeFile(t, t.TempDir(), "off.yaml", `apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: quiet}
spec: {command: ["/bin/true"]}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: paused}
spec: {job: quiet, auth: {none: {}}, disabled: true}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: live}
spec: {job: quiet, auth: {none: {}}}
`)
	if r := d.run("apply", "-f", f); r.Code != 0 {
		t.Fatalf("apply: %s", r)
	}
	r := d.run("get", "webhooks")
	if r.Code != 0 {
		t.Fatalf("get webhooks: %s", r)
	}
	rows := 0
	for _, line := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(line, "paused ") || strings.HasPrefix(line, "live ") {
			rows++
		}
		switch {
		case strings.HasPrefix(line, "paused ") && !strings.Contains(line, "disabled (answers 404)"):
			t.Fatalf("the disabled webhook's row: %q", line)
		case strings.HasPrefix(line, "live ") && (strings.Contains(line, "disabled") || !strings.Contains(line, "/v1/hooks/")):
			t.Fatalf("an enabled webhook's row: %q", line)
		}
	}
	if rows != 2 {
		t.Fatalf("get webhooks: want the rows of paused and live:\n%s", r.Stdout)
	}
	args := []string{"send", "paused", "-d", "{}"}
	checkCode(t, d.run(args...), codeNotFound, "webhook paused is disabled (spec.disabled)", args)
}

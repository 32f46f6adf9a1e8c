package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// warnedManifest has a Janus-style job, a webhook whose default 1 MiB limit
// lets through bodies $JANUS_ARG_WEBHOOK_PAYLOAD cannot hold and whose
// callback is unsigned, and one that does everything right.
const warnedManifest = `apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: janus}
spec:
  command: ["/bin/sh", "-c", "echo \"$JANUS_ARG_WEBHOOK_PAYLOAD\""]
  envPrefix: JANUS
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: big}
spec:
  job: janus
  auth: {none: {}}
  callback: {url: "https://example.internal/hooks/results"}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: small}
spec:
  job: janus
  auth: {none: {}}
  maxBodyBytes: 1024
  callback: {url: "https://example.internal/hooks/results", secretRef: cb-secret}
---
apiVersion: hookrun.dev/v1
kind: Secret
metadata: {name: cb-secret}
spec: {value: callback-signing-secret}
`

// What the keys API applies but warns about, apply prints on stderr, one
// "Warning: kind/name: ..." line each as delete does, and goes on (exit 0):
// here a body limit the job's payload variable cannot hold and an unsigned
// callback. A resource without warnings gets none, and examples/janus.yaml,
// whose limit fits its variable, applies without a word.
func TestCLI_ApplyPrintsTheAPIsWarningsOnStderr(t *testing.T) {
	d := startDev(t)
	f := writeFile(t, t.TempDir(), "warned.yaml", warnedManifest)

	r := d.run("apply", "-f", f)
	if r.Code != 0 || !strings.Contains(r.Stdout, "webhook/big created") || strings.Contains(r.Stdout, "Warning") {
		t.Fatalf("apply: want exit 0, the resources on stdout and no warning there: %s", r)
	}
	want := []string{
		"Warning: webhook/big: spec.maxBodyBytes (1048576) lets through bodies that $JANUS_ARG_WEBHOOK_PAYLOAD cannot hold",
		"read that file, or lower spec.maxBodyBytes to 131045",
		"Warning: webhook/big: spec.callback has no secretRef",
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("apply: stderr lacks %q:\n%s", w, r.Stderr)
		}
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 2 || strings.Contains(r.Stderr, "webhook/small") || strings.Contains(r.Stderr, "job/janus") {
		t.Errorf("apply: want the two warnings of webhook/big only (the job came before its webhooks):\n%s", r.Stderr)
	}

	// Applied again, the job is put while the webhooks trigger it: it
	// warns of big's limit too, and nothing changed.
	r = d.run("apply", "-f", f)
	if r.Code != 0 || !strings.Contains(r.Stdout, "job/janus unchanged") ||
		!strings.Contains(r.Stderr, "Warning: job/janus: webhook big's spec.maxBodyBytes (1048576) lets through bodies") ||
		!strings.Contains(r.Stderr, "Warning: webhook/big: spec.callback has no secretRef") || strings.Contains(r.Stderr, "small") {
		t.Fatalf("second apply: %s", r)
	}

	r = d.run("apply", "-f", filepath.Join(workspaceRoot(t), "examples", "janus.yaml"))
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("apply of examples/janus.yaml: want no warning: %s", r)
	}
}

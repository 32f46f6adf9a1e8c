package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExamples_ApplyCleanlyAndDoWhatTheySay applies every file of
// examples/ against a running hookrun dev, checks that each resource comes
// back, and triggers each scenario the way its comments say.
func TestExamples_ApplyCleanlyAndDoWhatTheySay(t *testing.T) {
	d := startDev(t)
	root := filepath.Join(workspaceRoot(t), "examples")
	entries := []string{filepath.Join(root, "orloj")} // a directory: its files in any order
	files, _ := filepath.Glob(filepath.Join(root, "*.yaml"))
	entries = append(entries, files...)
	if len(files) < 3 {
		t.Fatalf("examples: %v", files)
	}

	applied := map[string]string{} // entry -> apply output
	for _, e := range entries {
		r := d.run("apply", "-f", e)
		if r.Code != 0 || strings.Contains(r.Stderr, "Warning:") {
			// An example shows a configuration that works as meant: one
			// the API warns about is a bad example.
			t.Fatalf("apply -f %s: %s", e, r)
		}
		out := r.Stdout
		applied[filepath.Base(e)] = out
		docs, err := readManifests([]string{e}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docs {
			if !strings.Contains(out, docLabel(doc)+" created") {
				t.Errorf("%s: apply did not create %s:\n%s", e, docLabel(doc), out)
			}
			var got map[string]any
			d.okJSON(&got, "get", lowerKind(doc.Kind), doc.Name, "-o", "json")
			if got["kind"] != doc.Kind || got["metadata"].(map[string]any)["name"] != doc.Name {
				t.Errorf("%s: get %s returned %v", e, docLabel(doc), got)
			}
		}
	}
	r := d.run(append([]string{"apply", "-f", root}, "-f", filepath.Join(root, "orloj"))...)
	again := r.Stdout
	if r.Code != 0 || strings.Contains(r.Stderr, "Warning:") {
		t.Fatalf("applying the examples again: %s", r)
	}
	if strings.Contains(again, "created") || strings.Contains(again, "configured") || strings.Contains(again, "generated") {
		t.Fatalf("applying the examples again changed something:\n%s", again)
	}

	t.Run("janus: API key in X-API-KEY, payload in $JANUS_ARG_WEBHOOK_PAYLOAD, GET runs with defaults", func(t *testing.T) {
		key := afterColon(lineWith(applied["janus.yaml"], "generated API key"))
		r := d.run("send", "janus-process-payload", "--key", key, "-d", `{"message": "Hello from webhook"}`, "--wait")
		if r.Code != 0 || !strings.Contains(r.Stdout, `Received webhook payload:`) || !strings.Contains(r.Stdout, `{"message": "Hello from webhook"}`) || !strings.Contains(r.Stdout, "greeting: hello") {
			t.Fatalf("janus POST: %s", r)
		}
		if r := d.run("send", "janus-process-payload", "--key", key, "--method", "GET", "--wait"); r.Code != 0 || !strings.Contains(r.Stdout, "greeting: hello") {
			t.Fatalf("janus GET: %s", r)
		}
		checkCode(t, d.run("send", "janus-process-payload", "--key", "hk_wrong_key", "-d", "{}"), codeRefused, "invalid_credentials", nil)
	})

	t.Run("jac: one scoped key in a header, the query, the path and the body", func(t *testing.T) {
		hooks := []string{"jac-by-header", "jac-by-query", "jac-by-path", "jac-by-body"}
		args := []string{"keys", "create", "webhook1", "--count", "60", "--interval", "days", "-o", "json"}
		for _, h := range hooks {
			args = append(args, "--webhook", h)
		}
		var k map[string]any
		d.okJSON(&k, args...)
		key := k["key"].(string)
		for _, h := range hooks {
			r := d.run("send", h, "--key", key, "-d", `{"note":"hi"}`, "--wait")
			if r.Code != 0 || !strings.Contains(r.Stdout, `reported: {"note":"hi"}`) || strings.Contains(r.Stdout, key) {
				t.Fatalf("%s: %s", h, r)
			}
		}
		// A key for the header webhook only is refused by the others.
		var narrow map[string]any
		d.okJSON(&narrow, "keys", "create", "narrow", "--webhook", "jac-by-header", "-o", "json")
		checkCode(t, d.run("send", "jac-by-query", "--key", narrow["key"].(string), "-d", "{}"), codeRefused, "key_not_allowed", nil)
	})

	t.Run("orloj: generic and github profiles, template arguments, dedup, filter", func(t *testing.T) {
		r := d.run("send", "report-generic-webhook", "--secret", "replace-me", "-d", `{"event":"report.trigger","topic":"robots"}`, "--event-id", "evt-001", "--wait")
		if r.Code != 0 || !strings.Contains(r.Stdout, "weekly report on: robots (event evt-001)") {
			t.Fatalf("generic: %s", r)
		}
		if r := d.run("send", "report-generic-webhook", "--secret", "replace-me", "-d", `{"event":"report.trigger","topic":"robots"}`, "--event-id", "evt-001"); r.Code != 0 || !strings.Contains(r.Stdout, "duplicate") {
			t.Fatalf("generic duplicate: %s", r)
		}
		if r := d.run("send", "report-generic-webhook", "--secret", "replace-me", "-d", `{"event":"report.trigger"}`, "--wait"); r.Code != 0 || !strings.Contains(r.Stdout, "weekly report on: AI startups") {
			t.Fatalf("generic without a topic uses the default: %s", r)
		}
		secret := afterColon(lineWith(applied["orloj"], "generated secret"))
		if secret == "" {
			t.Fatalf("no generated github secret in:\n%s", applied["orloj"])
		}
		r = d.run("send", "report-github-push", "--secret", secret, "-H", "X-GitHub-Event: push", "-d", `{"ref":"refs/heads/main","topic":"AI"}`, "--wait")
		if r.Code != 0 || !strings.Contains(r.Stdout, "weekly report on: AI") {
			t.Fatalf("github push to main: %s", r)
		}
		r = d.run("send", "report-github-push", "--secret", secret, "-H", "X-GitHub-Event: push", "-d", `{"ref":"refs/heads/dev"}`, "--wait")
		checkCode(t, r, codeRunFailed, "ended filtered", nil)
	})

	t.Run("workjet: secret URL, queued at once, signed callback", func(t *testing.T) {
		secret := afterColon(lineWith(applied["workjet.yaml"], "generated secret"))
		got := make(chan *http.Request, 16)
		bodies := make(chan []byte, 16)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- r
			bodies <- b
		}))
		t.Cleanup(recv.Close)
		orig, err := os.ReadFile(filepath.Join(root, "workjet.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		manifest := strings.Replace(string(orig), "http://127.0.0.1:9999/hookrun-results", recv.URL+"/results", 1)
		if r := d.runWith(nil, manifest, "apply", "-f", "-"); r.Code != 0 || !strings.Contains(r.Stdout, "webhook/workjet-tickets configured") {
			t.Fatalf("apply with the test receiver: %s", r)
		}
		var ans map[string]any
		d.okJSON(&ans, "send", "workjet-tickets", "-d", `{"event":"ticket.created","data":{"id":"TICKET-456","priority":"high"}}`, "-o", "json")
		if ans["received"] != true || ans["status"] != "queued" || ans["webhookId"] != "workjet-tickets" || !strings.HasPrefix(ans["executionId"].(string), "run_") {
			t.Fatalf("workjet answer: %v", ans)
		}
		out := d.ok("runs", "watch", ans["executionId"].(string))
		if !strings.Contains(out, "triaging ticket TICKET-456 (high)") {
			t.Fatalf("workjet run:\n%s", out)
		}
		select {
		case r := <-got:
			b := <-bodies
			m := hmac.New(sha256.New, []byte(secret))
			m.Write(b)
			if r.Header.Get("X-Hookrun-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
				t.Fatalf("callback signature %q does not verify with the generated secret", r.Header.Get("X-Hookrun-Signature"))
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no callback within 15s")
		}
	})
}

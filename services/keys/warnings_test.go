package keys

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// warningsOf is the "warnings" of a PUT answer.
func warningsOf(t *testing.T, ans answer) []string {
	t.Helper()
	var out struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(ans.Body, &out); err != nil {
		t.Fatalf("answer %s: %v", ans.Body, err)
	}
	return out.Warnings
}

// The room a body has in "<PREFIX>_ARG_WEBHOOK_PAYLOAD=<body>" under
// Linux' 128 KiB (less its NUL) for one environment entry.
var (
	hookrunRoom = 128<<10 - 1 - len("HOOKRUN_ARG_WEBHOOK_PAYLOAD=")
	janusRoom   = 128<<10 - 1 - len("JANUS_ARG_WEBHOOK_PAYLOAD=")
)

// Janus' scripts read the body from $JANUS_ARG_WEBHOOK_PAYLOAD, which the
// executor leaves out for a body over 128 KiB: a webhook whose limit lets
// such a body through says so when it is put, naming both ways out, and
// one whose bodies always fit (or whose job reads no variable: an HTTP job, a
// command that names only the payload file) does not.
func TestWebhooks_WarnWhenABodyCanOutgrowTheJobsPayloadVariable(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/janus", jobDoc("janus", map[string]any{"command": []string{"/bin/sh", "-c", `echo "$JANUS_ARG_WEBHOOK_PAYLOAD"`}, "envPrefix": "JANUS"}))
	a.must(201, "PUT", "/v1/jobs/plain", jobDoc("plain", map[string]any{"command": []string{"/bin/sh", "-c", `jq . <<<"$HOOKRUN_ARG_WEBHOOK_PAYLOAD"`}}))
	a.must(201, "PUT", "/v1/jobs/filereader", jobDoc("filereader", map[string]any{"command": []string{"/bin/sh", "-c", `jq . "$JANUS_WEBHOOK_PAYLOAD_FILE"`}, "envPrefix": "JANUS"}))
	a.must(201, "PUT", "/v1/jobs/caller", jobDoc("caller", map[string]any{"http": map[string]any{"url": "https://ci.example.com/hook"}}))

	cases := []struct {
		name string
		spec map[string]any
		want string // in the one warning; "" for none
	}{
		{"default limit, JANUS prefix", map[string]any{"job": "janus"},
			fmt.Sprintf("spec.maxBodyBytes (1048576) lets through bodies that $JANUS_ARG_WEBHOOK_PAYLOAD cannot hold: Linux caps one environment variable at 128 KiB, so for a body over %d bytes job janus finds that variable unset and the body only in the file named by $JANUS_WEBHOOK_PAYLOAD_FILE; read that file, or lower spec.maxBodyBytes to %d", janusRoom, janusRoom)},
		{"one byte over, JANUS prefix", map[string]any{"job": "janus", "maxBodyBytes": janusRoom + 1}, fmt.Sprintf("lower spec.maxBodyBytes to %d", janusRoom)},
		{"just fits, JANUS prefix", map[string]any{"job": "janus", "maxBodyBytes": janusRoom}, ""},
		{"one byte over, default prefix", map[string]any{"job": "plain", "maxBodyBytes": hookrunRoom + 1}, fmt.Sprintf("$HOOKRUN_ARG_WEBHOOK_PAYLOAD cannot hold: Linux caps one environment variable at 128 KiB, so for a body over %d bytes job plain", hookrunRoom)},
		{"just fits, default prefix", map[string]any{"job": "plain", "maxBodyBytes": hookrunRoom}, ""},
		{"small limit", map[string]any{"job": "janus", "maxBodyBytes": 1024}, ""},
		{"HTTP job", map[string]any{"job": "caller", "maxBodyBytes": 4 << 20}, ""},
		{"a command that reads the file, not the variable", map[string]any{"job": "filereader"}, ""},
		{"GET only: no body", map[string]any{"job": "janus", "methods": []string{"GET"}}, ""},
		{"GET and POST", map[string]any{"job": "janus", "methods": []string{"GET", "POST"}}, "lower spec.maxBodyBytes"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("w%d", i)
			created := a.must(201, "PUT", "/v1/webhooks/"+name, webhookDoc(name, tc.spec))
			// Applying the same document again is "unchanged", and the
			// configuration as risky as before: it says so again.
			again := a.must(200, "PUT", "/v1/webhooks/"+name, webhookDoc(name, tc.spec))
			if again.Result() != ResultUnchanged {
				t.Fatalf("second PUT: %s", again.Result())
			}
			for _, ans := range []answer{created, again} {
				got := warningsOf(t, ans)
				if tc.want == "" && got != nil || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
					t.Fatalf("%s: warnings %q, want %q", ans.Result(), got, tc.want)
				}
			}
		})
	}
}

// A job put while a webhook triggers it gets the same warning, worded for
// the job and naming the webhook, for each webhook whose limit is too
// large; a new job (no webhook yet), a webhook with a small limit and an
// HTTP job get none.
func TestJobs_WarnWhenAWebhookLetsThroughBodiesTheirPayloadVariableCannotHold(t *testing.T) {
	a := newTestAPI(t)
	spec := map[string]any{"command": []string{"/bin/sh", "-c", `echo "$JANUS_ARG_WEBHOOK_PAYLOAD"`}, "envPrefix": "JANUS"}
	if got := warningsOf(t, a.must(201, "PUT", "/v1/jobs/janus", jobDoc("janus", spec))); got != nil {
		t.Fatalf("a new job: warnings %q", got)
	}
	a.must(201, "PUT", "/v1/webhooks/small", webhookDoc("small", map[string]any{"job": "janus", "maxBodyBytes": 1024}))
	spec["timeout"] = "1m"
	if got := warningsOf(t, a.must(200, "PUT", "/v1/jobs/janus", jobDoc("janus", spec))); got != nil {
		t.Fatalf("triggered by a webhook with a small limit: warnings %q", got)
	}
	a.must(201, "PUT", "/v1/webhooks/big", webhookDoc("big", map[string]any{"job": "janus"}))
	a.must(201, "PUT", "/v1/webhooks/bigger", webhookDoc("bigger", map[string]any{"job": "janus", "maxBodyBytes": 4 << 20}))

	spec["timeout"] = "2m"
	configured := a.must(200, "PUT", "/v1/jobs/janus", jobDoc("janus", spec))
	unchanged := a.must(200, "PUT", "/v1/jobs/janus", jobDoc("janus", spec))
	for _, ans := range []answer{configured, unchanged} {
		got := warningsOf(t, ans)
		want := []string{
			fmt.Sprintf("webhook big's spec.maxBodyBytes (1048576) lets through bodies that $JANUS_ARG_WEBHOOK_PAYLOAD cannot hold: Linux caps one environment variable at 128 KiB, so for a body over %d bytes this job finds that variable unset and the body only in the file named by $JANUS_WEBHOOK_PAYLOAD_FILE; read that file, or lower webhook big's spec.maxBodyBytes to %d", janusRoom, janusRoom),
			"webhook bigger's spec.maxBodyBytes (4194304) lets through",
		}
		if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], want[1]) {
			t.Fatalf("%s: warnings %q, want one for big and one for bigger", ans.Result(), got)
		}
		if path(ans.JSON(), "metadata", "name") != "janus" || path(ans.JSON(), "spec", "timeout") != "2m0s" {
			t.Fatalf("%s: the answer is not the job: %s", ans.Result(), ans.Body)
		}
	}

	// As an HTTP job it gets the body in its request: nothing to warn of.
	httpSpec := map[string]any{"http": map[string]any{"url": "https://ci.example.com/hook"}}
	if got := warningsOf(t, a.must(200, "PUT", "/v1/jobs/janus", jobDoc("janus", httpSpec))); got != nil {
		t.Fatalf("an HTTP job: warnings %q", got)
	}
}

// A callback without spec.callback.secretRef is sent unsigned (Workjet's
// receivers verify a signature header): still accepted, as existing
// webhooks must keep working, but the PUT says the receiver cannot verify
// it. With a secret, with a URL from a secret (a Slack incoming webhook:
// the URL is what the receiver trusts, it verifies no signature), or
// without a callback, no warning.
func TestWebhooks_WarnThatACallbackWithoutASecretIsUnsigned(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	a.must(201, "PUT", "/v1/secrets/cb-secret", secretDoc("cb-secret", map[string]any{"value": "callback-signing-secret"}))
	a.must(201, "PUT", "/v1/secrets/slack-url", secretDoc("slack-url", map[string]any{"value": "https://hooks.slack.com/services/T000/B000/XSECRETPATH"}))
	cases := []struct {
		name     string
		callback map[string]any
		want     bool
	}{
		{"callback without a secret", map[string]any{"url": "https://example.com/cb"}, true},
		{"callback with a secret", map[string]any{"url": "https://example.com/cb", "secretRef": "cb-secret"}, false},
		{"callback URL from a secret", map[string]any{"urlSecretRef": "slack-url"}, false},
		{"no callback", nil, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("w%d", i)
			spec := map[string]any{"job": "report", "maxBodyBytes": 1024} // no payload warning
			if tc.callback != nil {
				spec["callback"] = tc.callback
			}
			got := warningsOf(t, a.must(201, "PUT", "/v1/webhooks/"+name, webhookDoc(name, spec)))
			const want = "spec.callback has no secretRef: run statuses are POSTed to the callback unsigned (no X-Hookrun-Signature), so its receiver cannot verify that they come from this webhook; name a Secret in spec.callback.secretRef"
			if tc.want && (len(got) != 1 || got[0] != want) || !tc.want && got != nil {
				t.Fatalf("warnings %q, want a callback warning: %v", got, tc.want)
			}
		})
	}
}

// A webhook put without spec.auth is a secret-URL webhook (auth none), a
// real mode; but a manifest that forgot its auth would get it without a
// word: the answer warns, on each PUT of such a document, and not when
// none is written out.
func TestWebhooks_WarnWhenAuthIsNotGiven(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", map[string]any{"command": []string{"/bin/true"}}))
	bare := map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Webhook", "metadata": map[string]any{"name": "bare"}, "spec": map[string]any{"job": "report"}}
	created := a.must(201, "PUT", "/v1/webhooks/bare", bare)
	again := a.must(200, "PUT", "/v1/webhooks/bare", bare)
	for _, ans := range []answer{created, again} {
		if got := warningsOf(t, ans); len(got) != 1 || !strings.Contains(got[0], "spec.auth is not given, so it is none: anyone who has the endpoint URL can deliver") {
			t.Fatalf("%s: warnings %q, want the one about spec.auth", ans.Result(), got)
		}
	}
	if got := path(created.JSON(), "spec", "auth", "none"); got == nil {
		t.Fatalf("stored auth: %s, want none", created.Body)
	}
	explicit := a.must(200, "PUT", "/v1/webhooks/bare", webhookDoc("bare", map[string]any{"job": "report"}))
	if got := warningsOf(t, explicit); got != nil {
		t.Fatalf("auth none written out: warnings %q", got)
	}
}

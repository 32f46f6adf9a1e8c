package keys

import (
	"testing"
)

func TestJobs_CreateReplaceGetListDelete(t *testing.T) {
	a := newTestAPI(t)

	ans := a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	if ans.Result() != ResultCreated {
		t.Fatalf("result %q", ans.Result())
	}
	m := ans.JSON()
	if path(m, "metadata", "namespace") != "default" || path(m, "metadata", "uid") == "" || path(m, "spec", "timeout") != "5m0s" || path(m, "spec", "envPrefix") != "HOOKRUN" {
		t.Fatalf("stored job lacks defaults: %s", ans.Body)
	}
	uid := path(m, "metadata", "uid")

	ans = a.must(200, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	if ans.Result() != ResultUnchanged {
		t.Fatalf("same job again: result %q", ans.Result())
	}
	// Defaults written out explicitly are the same job.
	ans = a.must(200, "PUT", "/v1/jobs/report", jobDoc("report", map[string]any{"command": []string{"/bin/sh", "-c", "echo hi"}, "timeout": "5m", "concurrency": 4}))
	if ans.Result() != ResultUnchanged {
		t.Fatalf("same job with defaults spelled out: result %q", ans.Result())
	}
	ans = a.must(200, "PUT", "/v1/jobs/report", jobDoc("report", map[string]any{"command": []string{"/bin/true"}, "envPrefix": "JANUS"}))
	if ans.Result() != ResultConfigured || path(ans.JSON(), "metadata", "uid") != uid || path(ans.JSON(), "metadata", "generation") != 2.0 {
		t.Fatalf("changed job: result %q %s", ans.Result(), ans.Body)
	}

	// The same name in another namespace is another job.
	a.must(201, "PUT", "/v1/jobs/report?namespace=team-b", jobDoc("report", nil))
	if got := path(a.must(200, "GET", "/v1/jobs/report?namespace=team-b", nil).JSON(), "spec", "envPrefix"); got != "HOOKRUN" {
		t.Fatalf("team-b job: envPrefix %v", got)
	}
	if got := path(a.must(200, "GET", "/v1/jobs/report", nil).JSON(), "spec", "envPrefix"); got != "JANUS" {
		t.Fatalf("default job: envPrefix %v", got)
	}
	a.must(201, "PUT", "/v1/jobs/another", jobDoc("another", nil))
	items, _ := a.must(200, "GET", "/v1/jobs", nil).JSON()["items"].([]any)
	if len(items) != 2 || path(items[0], "metadata", "name") != "another" || path(items[1], "metadata", "name") != "report" {
		t.Fatalf("list: %v", items)
	}
	items, _ = a.must(200, "GET", "/v1/jobs?namespace=team-b", nil).JSON()["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("team-b list: %v", items)
	}
	items, _ = a.must(200, "GET", "/v1/jobs?namespace=empty", nil).JSON()["items"].([]any)
	if items == nil || len(items) != 0 {
		t.Fatalf("empty namespace: want an empty list, got %v", items)
	}

	if n := a.must(200, "DELETE", "/v1/jobs/report", nil).JSON()["deleted"]; n != 1.0 {
		t.Fatalf("deleted %v", n)
	}
	checkError(t, a.do("GET", "/v1/jobs/report", nil), 404, "not_found", "job default/report")
	checkError(t, a.do("DELETE", "/v1/jobs/report", nil), 404, "not_found", "job default/report")
	a.must(200, "GET", "/v1/jobs/report?namespace=team-b", nil)
}

func TestJobs_RefuseInvalidInputNamingTheField(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		name string
		path string
		body any
		msg  string
	}{
		{"not JSON", "/v1/jobs/x", "{", "not valid JSON"},
		{"empty body", "/v1/jobs/x", "", "body is empty"},
		{"two values", "/v1/jobs/x", `{"kind":"Job"} {}`, "more than one JSON value"},
		{"unknown field", "/v1/jobs/x", `{"apiVersion":"hookrun.dev/v1","kind":"Job","metadata":{"name":"x"},"spec":{"comand":["x"]}}`, `unknown field "comand"`},
		{"number for a list", "/v1/jobs/x", jobDoc("x", map[string]any{"command": "echo"}), "spec.command: must be a list of strings"},
		{"string for a number", "/v1/jobs/x", jobDoc("x", map[string]any{"command": []string{"x"}, "concurrency": "4"}), "spec.concurrency: must be a whole number"},
		{"bad duration", "/v1/jobs/x", jobDoc("x", map[string]any{"command": []string{"x"}, "timeout": "soon"}), "spec.timeout: must be a duration"},
		{"wrong kind", "/v1/jobs/x", map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Webhook", "metadata": map[string]any{"name": "x"}}, "kind: must be Job"},
		{"no api version", "/v1/jobs/x", map[string]any{"kind": "Job", "metadata": map[string]any{"name": "x"}}, "apiVersion: must be hookrun.dev/v1"},
		{"name differs from path", "/v1/jobs/x", jobDoc("y", nil), "metadata.name"},
		{"namespace differs from query", "/v1/jobs/x?namespace=b", map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Job", "metadata": map[string]any{"name": "x", "namespace": "a"}, "spec": map[string]any{"command": []string{"x"}}}, "metadata.namespace"},
		{"dot in name", "/v1/jobs/a.b", jobDoc("a.b", nil), "metadata.name: must match"},
		{"star in name", "/v1/jobs/a*", jobDoc("a*", nil), "metadata.name: must match"},
		{"gt in name", "/v1/jobs/a%3E", jobDoc("a>", nil), "metadata.name: must match"},
		{"upper case name", "/v1/jobs/Report", jobDoc("Report", nil), "metadata.name: must match"},
		{"bad namespace", "/v1/jobs/x?namespace=a.b", jobDoc("x", nil), "namespace: must match"},
		{"no command", "/v1/jobs/x", jobDoc("x", map[string]any{}), "spec.command"},
		{"bad template", "/v1/jobs/x", jobDoc("x", map[string]any{"command": []string{"x"}, "args": []map[string]any{{"name": "t", "value": "{{ .body.x "}}}), "spec.args"},
		{"missing http secret", "/v1/jobs/x", jobDoc("x", map[string]any{"http": map[string]any{"url": "http://127.0.0.1:1/x", "secretRef": "nope"}}), `spec.http.secretRef: secret "nope" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, a.do("PUT", tc.path, tc.body), 400, "invalid_request", tc.msg)
		})
	}
	for _, p := range []string{"/v1/jobs/a.b", "/v1/jobs/a*"} {
		checkError(t, a.do("GET", p, nil), 400, "invalid_request", "metadata.name")
	}
	checkError(t, a.do("POST", "/v1/jobs/x", jobDoc("x", nil)), 405, "method_not_allowed", "")
	checkError(t, a.do("GET", "/v1/jobs?namespace=A", nil), 400, "invalid_request", "namespace")
}

// Janus: a webhook cannot pass argument values, so a job that webhooks
// trigger keeps a default (or a template value) for every argument.
func TestJobs_RefuseArgsWithoutDefaultsWhileAWebhookTriggersThem(t *testing.T) {
	a := newTestAPI(t)
	withDefault := jobDoc("report", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic", "default": "AI"}}})
	a.must(201, "PUT", "/v1/jobs/report", withDefault)
	a.must(201, "PUT", "/v1/webhooks/hook", webhookDoc("hook", map[string]any{"job": "report"}))

	noDefault := jobDoc("report", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic"}}})
	checkError(t, a.do("PUT", "/v1/jobs/report", noDefault), 400, "invalid_request", "webhook hook triggers this job")
	templated := jobDoc("report", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic", "value": "{{ .body.topic }}"}}})
	a.must(200, "PUT", "/v1/jobs/report", templated)
	// A webhook that also takes GET needs defaults: a GET passes no body.
	a.must(200, "PUT", "/v1/jobs/report", withDefault)
	a.must(201, "PUT", "/v1/webhooks/pinger", webhookDoc("pinger", map[string]any{"job": "report", "methods": []string{"GET"}}))
	checkError(t, a.do("PUT", "/v1/jobs/report", templated), 400, "invalid_request", "args[0] (topic): needs a default, as a GET delivery passes defaults only; webhook pinger triggers this job with GET")

	// Without webhooks, such a job is fine (it may be run by other means later).
	a.must(201, "PUT", "/v1/jobs/manual", jobDoc("manual", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic"}}}))
}

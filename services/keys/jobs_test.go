package keys

import (
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/hookrun/hookrun/pkg/resource"
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
	checkError(t, a.do("POST", "/v1/jobs/x", jobDoc("x", nil)), 405, "method_not_allowed", "method POST is not allowed on /v1/jobs/x")
	checkError(t, a.do("GET", "/v1/nope", nil), 404, "not_found", "nothing is served at /v1/nope")
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

// encoding/json keeps the last of a key given twice and matches field names
// whatever their case: a body that says two things, or says one in a way
// API.md does not, is refused naming the key, for every body the API reads.
func TestAPI_BodiesRefuseDuplicateAndMiscasedKeys(t *testing.T) {
	a := newTestAPI(t)
	const job = `{"apiVersion":"hookrun.dev/v1","kind":"Job","metadata":{"name":"j1"},"spec":`
	cases := []struct {
		name, method, path, body string
		field, msg               string
	}{
		{"duplicate in a job spec, cases differing", "PUT", "/v1/jobs/j1", job + `{"Command":["/bin/true"],"command":["/bin/false"]}}`,
			"spec.Command", `unknown field "Command" (field names are case-sensitive: did you mean "command"?)`},
		{"duplicate in a job spec", "PUT", "/v1/jobs/j1", job + `{"command":["/bin/true"],"command":["/bin/false"]}}`,
			"spec.command", `duplicate key "command"`},
		{"miscased top-level field", "PUT", "/v1/jobs/j1", `{"apiVersion":"hookrun.dev/v1","Kind":"Job","metadata":{"name":"j1"},"spec":{"command":["x"]}}`,
			"Kind", `unknown field "Kind" (field names are case-sensitive: did you mean "kind"?)`},
		{"miscased metadata field", "PUT", "/v1/jobs/j1", `{"apiVersion":"hookrun.dev/v1","kind":"Job","metadata":{"NAME":"j1"},"spec":{"command":["x"]}}`,
			"metadata.NAME", `unknown field "NAME"`},
		{"duplicate top-level key", "PUT", "/v1/jobs/j1", job + `{"command":["x"]},"spec":{"command":["y"]}}`,
			"spec", `duplicate key "spec"`},
		{"duplicate map key", "PUT", "/v1/jobs/j1", job + `{"command":["x"],"env":{"A":"1","A":"2"}}}`,
			"spec.env.A", `duplicate key "A"`},
		{"duplicate in a list's object", "PUT", "/v1/jobs/j1", job + `{"command":["x"],"args":[{"name":"a","value":"1"},{"name":"b","name":"c"}]}}`,
			"spec.args[1].name", `duplicate key "name"`},
		{"miscased in a list's object", "PUT", "/v1/jobs/j1", job + `{"command":["x"],"args":[{"Name":"a"}]}}`,
			"spec.args[0].Name", `unknown field "Name"`},
		{"miscased in a pointer's object", "PUT", "/v1/jobs/j1", job + `{"http":{"URL":"http://127.0.0.1:1/x"}}}`,
			"spec.http.URL", `unknown field "URL" (field names are case-sensitive: did you mean "url"?)`},
		{"webhook", "PUT", "/v1/webhooks/w1", `{"apiVersion":"hookrun.dev/v1","kind":"Webhook","metadata":{"name":"w1"},"spec":{"job":"j1","Job":"j2"}}`,
			"spec.Job", `unknown field "Job"`},
		{"secret", "PUT", "/v1/secrets/s1", `{"apiVersion":"hookrun.dev/v1","kind":"Secret","metadata":{"name":"s1","name":"s2"},"spec":{}}`,
			"metadata.name", `duplicate key "name"`},
		{"key", "POST", "/v1/keys", `{"name":"k","Namespace":"team-b"}`, "Namespace", `unknown field "Namespace"`},
		{"key expiration", "POST", "/v1/keys", `{"name":"k","expiration":{"count":1,"count":2,"interval":"days"}}`, "expiration.count", `duplicate key "count"`},
		{"bulk delete", "DELETE", "/v1/keys", `{"ids":["a"],"ids":["b"]}`, "ids", `duplicate key "ids"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.do(tc.method, tc.path, tc.body)
			checkError(t, ans, 400, "invalid_request", tc.field+": "+tc.msg)
			if ans.ErrField() != tc.field {
				t.Fatalf("error field %q, want %q: %s", ans.ErrField(), tc.field, ans.Body)
			}
		})
	}
	checkError(t, a.do("GET", "/v1/jobs/j1", nil), 404, "not_found", "")
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(keys) != 0 {
		t.Fatalf("a refused body made keys: %v", keys)
	}
	id := a.must(201, "POST", "/v1/keys", map[string]any{"name": "k"}).JSON()["id"].(string)
	checkError(t, a.do("PATCH", "/v1/keys/"+id+"/extend", `{"count":1,"interval":"days","Interval":"hours"}`), 400, "invalid_request", `Interval: unknown field "Interval"`)

	// Keys of maps are free-form: "A" and "a" are two keys, and no field.
	ans := a.must(201, "PUT", "/v1/jobs/j2", job[:len(job)-len(`{"name":"j1"},"spec":`)]+`{"name":"j2"},"spec":{"command":["x"],"env":{"A":"1","a":"2","Command":"3"}}}`)
	if env := path(ans.JSON(), "spec", "env"); len(env.(map[string]any)) != 3 {
		t.Fatalf("env %v", env)
	}
	// Still malformed JSON is said as before.
	checkError(t, a.do("PUT", "/v1/jobs/j3", job+`{"command":["x"],"command"`), 400, "invalid_request", "not valid JSON")
}

// A body over 4 MiB is 413 whether its length is announced or not: sent
// chunked, the limit is only met while it is read.
func TestAPI_ChunkedBodyOverTheLimitIsTooLarge(t *testing.T) {
	a := newTestAPI(t)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(`{"x":"` + strings.Repeat("x", 5<<20) + `"}`)
		if chunked {
			body = io.MultiReader(body) // no length known: sent chunked
		}
		req, err := http.NewRequest("PUT", a.URL+"/v1/jobs/big", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if chunked != (req.ContentLength <= 0) {
			t.Fatalf("chunked=%v but the request's length is %d", chunked, req.ContentLength)
		}
		checkError(t, answer{Code: resp.StatusCode, Header: resp.Header, Body: b}, 413, "payload_too_large", "")
	}
}

// The key walker's memory grows with the body, not with the square of its
// nesting: a path string per level cost 1.3 GB for a 525 KB body nested
// 5000 deep with 100-character keys.
func TestCheckKeys_DeepNestingCostsMemoryInProportion(t *testing.T) {
	key := strings.Repeat("k", 100)
	const depth = 5000
	body := strings.Repeat(`{"`+key+`":`, depth) + "1" + strings.Repeat("}", depth)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// The outermost key is no field of a Job: refused, by its path alone.
	if err := checkKeys([]byte(body), reflect.TypeFor[*resource.Job]()); fieldOf(err) != key {
		t.Fatalf("checkKeys: %v", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Fatalf("checkKeys of a %d-byte body allocated %d MiB", len(body), n>>20)
	}
}

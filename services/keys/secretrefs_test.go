package keys

import (
	"encoding/json"
	"strings"
	"testing"
)

// A job's credentials are secrets it names (spec.secretEnv,
// spec.http.secretHeaders), which must exist; the job holds and shows the
// names only. A password in an HTTP job's URL, stored in clear and shown by
// every GET, is refused.
func TestJobs_SecretReferencesMustExistAndHoldNoValue(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/secrets/api-token", secretDoc("api-token", map[string]any{"value": "tok-a9f3e1"}))
	httpJob := func(http map[string]any) map[string]any {
		return map[string]any{"http": http}
	}
	ok := jobDoc("caller", httpJob(map[string]any{"url": "https://ci.example.com/hook",
		"secretHeaders": map[string]any{"Authorization": map[string]any{"secretRef": "api-token", "prefix": "Bearer "}}}))
	a.must(201, "PUT", "/v1/jobs/caller", ok)
	got := a.must(200, "GET", "/v1/jobs/caller", nil)
	if strings.Contains(string(got.Body), "tok-a9f3e1") || !strings.Contains(string(got.Body), `"secretRef":"api-token"`) {
		t.Fatalf("GET of the job: %s; want the secret's name, not its value", got.Body)
	}
	a.must(201, "PUT", "/v1/jobs/deployer", jobDoc("deployer", map[string]any{"command": []string{"deploy"}, "secretEnv": map[string]any{"DEPLOY_TOKEN": "api-token"}}))

	cases := []struct {
		name  string
		spec  map[string]any
		field string
	}{
		{"secret header of a missing secret", httpJob(map[string]any{"url": "https://x.example.com", "secretHeaders": map[string]any{"Authorization": map[string]any{"secretRef": "gone"}}}), `spec.http.secretHeaders["Authorization"].secretRef`},
		{"secret variable of a missing secret", map[string]any{"command": []string{"x"}, "secretEnv": map[string]any{"TOKEN": "gone"}}, `spec.secretEnv["TOKEN"]`},
		{"password in the URL", httpJob(map[string]any{"url": "https://user:hunter2@x.example.com/hook"}), "spec.http.url"},
		{"secret header also a header", httpJob(map[string]any{"url": "https://x.example.com", "headers": map[string]any{"authorization": "x"}, "secretHeaders": map[string]any{"Authorization": map[string]any{"secretRef": "api-token"}}}), `spec.http.secretHeaders["Authorization"]`},
		{"secret header twice in another case", httpJob(map[string]any{"url": "https://x.example.com", "secretHeaders": map[string]any{"Authorization": map[string]any{"secretRef": "api-token"}, "authorization": map[string]any{"secretRef": "api-token"}}}), `spec.http.secretHeaders["Authorization"]`},
		{"secret header name with a colon", httpJob(map[string]any{"url": "https://x.example.com", "secretHeaders": map[string]any{"X:Bad": map[string]any{"secretRef": "api-token"}}}), `spec.http.secretHeaders["X:Bad"]`},
		{"secret header prefix with a newline", httpJob(map[string]any{"url": "https://x.example.com", "secretHeaders": map[string]any{"Authorization": map[string]any{"secretRef": "api-token", "prefix": "Bearer\n"}}}), `spec.http.secretHeaders["Authorization"].prefix`},
		{"secret variable also a variable", map[string]any{"command": []string{"x"}, "env": map[string]any{"TOKEN": "x"}, "secretEnv": map[string]any{"TOKEN": "api-token"}}, `spec.secretEnv["TOKEN"]`},
		{"secret variable of the input contract", map[string]any{"command": []string{"x"}, "secretEnv": map[string]any{"HOOKRUN_RUN_ID": "api-token"}}, "spec.secretEnv"},
		{"secret variable of an HTTP job", map[string]any{"http": map[string]any{"url": "https://x.example.com"}, "secretEnv": map[string]any{"TOKEN": "api-token"}}, "spec.secretEnv"},
		{"URL and a URL secret", httpJob(map[string]any{"url": "https://x.example.com", "urlSecretRef": "api-token"}), "spec.http"},
		{"URL secret missing", httpJob(map[string]any{"urlSecretRef": "gone"}), "spec.http.urlSecretRef"},
		{"neither URL nor URL secret", httpJob(map[string]any{"method": "POST"}), "spec.http.url"},
		{"URL secret naming no secret", httpJob(map[string]any{"urlSecretRef": "Not A Name"}), "spec.http.urlSecretRef"},
		{"secret variable naming no secret", map[string]any{"command": []string{"x"}, "secretEnv": map[string]any{"TOKEN": "Not A Name"}}, `spec.secretEnv["TOKEN"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkFieldError(t, a.do("PUT", "/v1/jobs/j", jobDoc("j", tc.spec)), tc.field, tc.field)
		})
	}
	// A URL that is itself a credential comes from a secret: the job shows
	// the secret's name.
	a.must(201, "PUT", "/v1/secrets/slack-url", secretDoc("slack-url", map[string]any{"value": "https://hooks.slack.example.com/services/XSECRETPATH"}))
	a.must(201, "PUT", "/v1/jobs/to-slack", jobDoc("to-slack", httpJob(map[string]any{"urlSecretRef": "slack-url"})))
	got = a.must(200, "GET", "/v1/jobs/to-slack", nil)
	if strings.Contains(string(got.Body), "XSECRETPATH") || !strings.Contains(string(got.Body), `"urlSecretRef":"slack-url"`) || strings.Contains(string(got.Body), `"url":`) {
		t.Fatalf("GET of the job: %s; want the URL secret's name only", got.Body)
	}
	// A user name alone (no password) is not a credential.
	a.must(201, "PUT", "/v1/jobs/userinfo", jobDoc("userinfo", httpJob(map[string]any{"url": "https://deploy@x.example.com/hook"})))
}

// What a webhook stores and copies into each run holds no credential: its
// idempotency header is not a credential header, its callback URL no
// password.
func TestWebhooks_RefuseCredentialsWhereTheyWouldBeStoredOrShown(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	cases := []struct {
		name  string
		spec  map[string]any
		field string
	}{
		{"idempotency header Authorization", map[string]any{"job": "report", "idempotencyHeader": "authorization"}, "spec.idempotencyHeader"},
		{"idempotency header Cookie", map[string]any{"job": "report", "idempotencyHeader": "Cookie"}, "spec.idempotencyHeader"},
		{"idempotency header the API key's", map[string]any{"job": "report", "idempotencyHeader": "x-api-key", "auth": map[string]any{"apiKey": map[string]any{}}}, "spec.idempotencyHeader"},
		{"idempotency header a named API key header", map[string]any{"job": "report", "idempotencyHeader": "X-Token", "auth": map[string]any{"apiKey": map[string]any{"in": "header", "name": "x-token"}}}, "spec.idempotencyHeader"},
		{"callback URL with a password", map[string]any{"job": "report", "callback": map[string]any{"url": "https://user:hunter2@cb.example.com/hook"}}, "spec.callback.url"},
		{"callback URL and a URL secret", map[string]any{"job": "report", "callback": map[string]any{"url": "https://cb.example.com/hook", "urlSecretRef": "slack-url"}}, "spec.callback"},
		{"callback URL secret missing", map[string]any{"job": "report", "callback": map[string]any{"urlSecretRef": "gone"}}, "spec.callback.urlSecretRef"},
		{"callback with neither", map[string]any{"job": "report", "callback": map[string]any{"secretRef": "slack-url"}}, "spec.callback.url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkFieldError(t, a.do("PUT", "/v1/webhooks/w", webhookDoc("w", tc.spec)), tc.field, tc.field)
		})
	}
	a.must(201, "PUT", "/v1/webhooks/ok", webhookDoc("ok", map[string]any{"job": "report", "idempotencyHeader": "X-Request-Id", "auth": map[string]any{"apiKey": map[string]any{}}}))
	// A callback URL that is a credential comes from a secret: the webhook
	// holds its name only.
	a.must(201, "PUT", "/v1/secrets/slack-url", secretDoc("slack-url", map[string]any{"value": "https://hooks.slack.com/services/T000/B000/XSECRETPATH"}))
	got := a.must(201, "PUT", "/v1/webhooks/to-slack", webhookDoc("to-slack", map[string]any{"job": "report", "callback": map[string]any{"urlSecretRef": "slack-url"}}))
	if strings.Contains(string(got.Body), "XSECRETPATH") || !strings.Contains(string(got.Body), `"urlSecretRef":"slack-url"`) {
		t.Fatalf("webhook with a callback URL from a secret: %s", got.Body)
	}
}

// Deleting a secret or job that others name is allowed, and the answer
// says what it breaks.
func TestDelete_WarnsOfWhatNamesTheResource(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/secrets/cb", secretDoc("cb", map[string]any{"value": "cb-secret-123"}))
	a.must(201, "PUT", "/v1/secrets/unused", secretDoc("unused", map[string]any{"value": "unused-123"}))
	a.must(201, "PUT", "/v1/jobs/deployer", jobDoc("deployer", map[string]any{"command": []string{"deploy"}, "secretEnv": map[string]any{"TOKEN": "cb"}}))
	a.must(201, "PUT", "/v1/webhooks/reported", webhookDoc("reported", map[string]any{"job": "deployer", "callback": map[string]any{"url": "https://cb.example.com/hook", "secretRef": "cb"}}))

	warnings := func(body []byte) []string {
		var out struct {
			Deleted  int      `json:"deleted"`
			Warnings []string `json:"warnings"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Deleted != 1 {
			t.Fatalf("delete answer %s", body)
		}
		return out.Warnings
	}
	got := warnings(a.must(200, "DELETE", "/v1/secrets/cb", nil).Body)
	if len(got) != 2 || !strings.Contains(got[0], "webhook reported names it (spec.callback.secretRef): its callbacks will fail") ||
		!strings.Contains(got[1], `job deployer names it (spec.secretEnv["TOKEN"])`) {
		t.Errorf("warnings of the secret's delete: %q", got)
	}
	if got := warnings(a.must(200, "DELETE", "/v1/secrets/unused", nil).Body); got != nil {
		t.Errorf("warnings of an unused secret's delete: %q", got)
	}
	got = warnings(a.must(200, "DELETE", "/v1/jobs/deployer", nil).Body)
	if len(got) != 1 || !strings.Contains(got[0], "webhook reported triggers it") {
		t.Errorf("warnings of the job's delete: %q", got)
	}
}

// A secret a job or a callback sends to must hold an absolute http(s) URL,
// when the job or webhook is applied and whenever the secret changes: else
// every run or callback would fail.
func TestURLSecrets_MustHoldAURL(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	a.must(201, "PUT", "/v1/secrets/token", secretDoc("token", map[string]any{"value": "justsometoken123"}))
	a.must(201, "PUT", "/v1/secrets/hook-url", secretDoc("hook-url", map[string]any{"value": " https://hooks.example.com/services/T0/B0/XSECRET \n"}))
	checkFieldError(t, a.do("PUT", "/v1/jobs/poster", jobDoc("poster", map[string]any{"http": map[string]any{"urlSecretRef": "token"}})),
		"spec.http.urlSecretRef", "does not hold an absolute http or https URL")
	checkFieldError(t, a.do("PUT", "/v1/webhooks/cb", webhookDoc("cb", map[string]any{"job": "report", "callback": map[string]any{"urlSecretRef": "token"}})),
		"spec.callback.urlSecretRef", "does not hold an absolute http or https URL")

	a.must(201, "PUT", "/v1/jobs/poster", jobDoc("poster", map[string]any{"http": map[string]any{"urlSecretRef": "hook-url"}}))
	for _, bad := range []string{"not a url", "ftp://files.example.com/x", "/relative/path"} {
		checkFieldError(t, a.do("PUT", "/v1/secrets/hook-url", secretDoc("hook-url", map[string]any{"value": bad})),
			"spec.value", `job "poster" sends to the URL this secret holds`)
	}
	checkFieldError(t, a.do("POST", "/v1/secrets/hook-url/rotate", nil), "spec.format", `job "poster" sends to the URL this secret holds`)
	a.must(200, "PUT", "/v1/secrets/hook-url", secretDoc("hook-url", map[string]any{"value": "https://hooks.example.com/services/T0/B0/YSECRET"}))

	a.must(201, "PUT", "/v1/webhooks/cb", webhookDoc("cb", map[string]any{"job": "report", "callback": map[string]any{"urlSecretRef": "hook-url"}}))
	a.must(200, "DELETE", "/v1/jobs/poster", nil)
	checkFieldError(t, a.do("PUT", "/v1/secrets/hook-url", secretDoc("hook-url", map[string]any{"value": "still-not-a-url"})),
		"spec.value", `webhook "cb" sends its callbacks to the URL this secret holds`)
}

// A secret a job puts as it is into a header (secretHeaders) or an
// environment variable (secretEnv) must fit there, checked at apply on
// both sides: before, every run of such a job failed in the executor.
func TestSecrets_HeaderAndEnvSecretsMustFitWhereJobsPutThem(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/secrets/multi", secretDoc("multi", map[string]any{"value": "line one\r\nline two"}))
	a.must(201, "PUT", "/v1/secrets/nul", secretDoc("nul", map[string]any{"value": "a\x00b"}))
	a.must(201, "PUT", "/v1/secrets/ok", secretDoc("ok", map[string]any{"value": "token-0123456789"}))
	header := func(ref string) map[string]any {
		return map[string]any{"http": map[string]any{"url": "https://api.example.com/x", "secretHeaders": map[string]any{"Authorization": map[string]any{"secretRef": ref, "prefix": "Bearer "}}}}
	}
	env := func(ref string) map[string]any {
		return map[string]any{"command": []string{"true"}, "secretEnv": map[string]any{"TOKEN": ref}}
	}
	checkFieldError(t, a.do("PUT", "/v1/jobs/h", jobDoc("h", header("multi"))), `spec.http.secretHeaders["Authorization"].secretRef`, "no header value can")
	checkFieldError(t, a.do("PUT", "/v1/jobs/e", jobDoc("e", env("nul"))), `spec.secretEnv["TOKEN"]`, "NUL")
	a.must(201, "PUT", "/v1/jobs/e", jobDoc("e", env("multi"))) // a newline is fine in a variable
	a.must(201, "PUT", "/v1/jobs/h", jobDoc("h", header("ok")))
	checkFieldError(t, a.do("PUT", "/v1/secrets/ok", secretDoc("ok", map[string]any{"value": "new\nvalue"})), "spec.value", `job "h" uses this secret`)
	checkFieldError(t, a.do("PUT", "/v1/secrets/multi", secretDoc("multi", map[string]any{"value": "x\x00y"})), "spec.value", `job "e" uses this secret`)
	a.must(200, "PUT", "/v1/secrets/multi", secretDoc("multi", map[string]any{"value": "still\nfine"}))
}

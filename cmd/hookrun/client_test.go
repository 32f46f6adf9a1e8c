package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookrun/hookrun/pkg/service"
)

func TestAnswerError_MapsStatusesToExitCodes(t *testing.T) {
	body := []byte(`{"error":{"code":"invalid_request","message":"spec.auth.apiKey.in: must be one of header, query, path, body"}}`)
	cases := []struct {
		status int
		body   []byte
		code   int
		msg    string
	}{
		{404, []byte(`{"error":{"code":"not_found","message":"job default/x not found"}}`), codeNotFound, "job default/x not found (not_found)"},
		{400, body, codeRefused, "spec.auth.apiKey.in: must be one of header, query, path, body (invalid_request)"},
		{401, nil, codeRefused, "401 Unauthorized"},
		{409, nil, codeRefused, "409 Conflict"},
		{429, []byte(`{"error":{"code":"rate_limited","message":"slow down"}}`), codeUnavailable, "slow down (rate_limited)"}, // retry later, as a 503,
		{500, []byte("<html>\nproxy error\n</html>"), codeUnavailable, "500 Internal Server Error"},
		{503, []byte(`{"error":{"code":"unavailable","message":"retry later"}}`), codeUnavailable, "retry later (unavailable)"},
	}
	for _, tc := range cases {
		err := answerError(tc.status, statusText(tc.status), tc.body)
		if exitCode(err) != tc.code || errMessage(err) != tc.msg {
			t.Errorf("%d: exit %d %q, want %d %q", tc.status, exitCode(err), errMessage(err), tc.code, tc.msg)
		}
	}
}

func statusText(code int) string {
	return map[int]string{401: "401 Unauthorized", 409: "409 Conflict", 500: "500 Internal Server Error"}[code]
}

func TestClientOptions_SayWhatToSet(t *testing.T) {
	t.Setenv("HOOKRUN_ADMIN_TOKEN", "")
	o := &clientOptions{apiURL: defaultAPIURL, namespace: "default"}
	if _, err := o.client(); exitCode(err) != codeUsage || !strings.Contains(errMessage(err), "HOOKRUN_ADMIN_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
	t.Setenv("HOOKRUN_ADMIN_TOKEN", "tok")
	c, err := o.client()
	if err != nil || c.token != "tok" || c.base != defaultAPIURL {
		t.Fatalf("token from the environment: %+v %v", c, err)
	}
	o.token = "flag"
	if c, _ := o.client(); c.token != "flag" {
		t.Fatal("--token does not win over HOOKRUN_ADMIN_TOKEN")
	}
	for _, bad := range []clientOptions{
		{apiURL: "127.0.0.1:8081", namespace: "default", token: "t"},
		{apiURL: "ftp://x", namespace: "default", token: "t"},
		{apiURL: defaultAPIURL, namespace: "Team", token: "t"},
		{apiURL: defaultAPIURL, namespace: "a.b", token: "t"},
	} {
		if _, err := bad.client(); exitCode(err) != codeUsage {
			t.Errorf("%+v: %v, want a usage error", bad, err)
		}
	}
	if _, err := (&clientOptions{ingressURL: "nope"}).ingress(); exitCode(err) != codeUsage {
		t.Errorf("bad ingress URL: %v", err)
	}
	if got := oneLine("a\n  b\tc "); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
}

// A 404 that is not the keys API's own "no such resource" means --api-url
// points elsewhere: at the ingress (endpoint_not_found), or at the keys API
// under a path it does not serve ("Not Found"), or at anything answering
// 404 for a collection the keys API always has. It used to read as "not
// found" (3), telling a script the resource does not exist.
func TestCLI_A404NotFromTheKeysAPIAsksWhetherAPIURLIsRight(t *testing.T) {
	ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "endpoint_not_found", "message": "webhook endpoint not found"}})
	}))
	t.Cleanup(ingress.Close)
	routeMiss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": service.NothingServedAt + r.URL.Path}})
	}))
	t.Cleanup(routeMiss.Close)
	oldRouteMiss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "Not Found"}})
	}))
	t.Cleanup(oldRouteMiss.Close)
	resourceMiss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notFoundJSON(w, "thing")
	}))
	t.Cleanup(resourceMiss.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	for _, tc := range []struct {
		name string
		url  string
		args []string
	}{
		{"the ingress: list", ingress.URL, []string{"get", "jobs"}},
		{"the ingress: one", ingress.URL, []string{"get", "job", "weekly-report"}},
		{"the ingress: delete", ingress.URL, []string{"delete", "job", "weekly-report"}},
		{"the ingress: watch", ingress.URL, []string{"runs", "watch", "run_x", "--start-timeout", "0s"}},
		{"a wrong path: one", routeMiss.URL + "/api", []string{"get", "webhook", "w"}},
		{"a wrong path: list", routeMiss.URL + "/api", []string{"keys", "list"}},
		{"a wrong path of an older keys", oldRouteMiss.URL + "/api", []string{"get", "webhook", "w"}},
		{"a not_found for a collection", resourceMiss.URL, []string{"get", "secrets"}},
		{"a plain-text 404", plain.URL, []string{"get", "run", "run_x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(append(tc.args, "--api-url", tc.url, "--token", "tok")...)
			if r.Code != codeUnavailable || !strings.Contains(r.Stderr, "is --api-url the keys API?") {
				t.Fatalf("want exit %d asking whether --api-url is the keys API, got %s", codeUnavailable, r)
			}
		})
	}
	// The keys API's own not-found stays one.
	f := newFakeAPI(t)
	for _, args := range [][]string{{"get", "run", "run_nope"}, {"runs", "watch", "run_nope", "--start-timeout", "0s"}, {"keys", "extend", "key_prod", "--count", "1"}} {
		if r := f.execCLI(args...); r.Code != codeNotFound || strings.Contains(r.Stderr, "--api-url") {
			t.Errorf("%v: want exit %d, got %s", args, codeNotFound, r)
		}
	}
}

// HOOKRUN_API_URL, --api-url and --ingress may carry a password or a token
// in the query; wherever the CLI prints them (errors, endpoint URLs) the
// password shows as "xxxxx", as url.URL.Redacted does, and so does the
// query. It used to print "cannot reach the API at http://admin:s3cretpw@…".
func TestCLI_URLCredentialsAreNeverPrinted(t *testing.T) {
	const secrets = "s3cretpw|qs3cret"
	leaks := func(s string) bool {
		for _, sec := range strings.Split(secrets, "|") {
			if strings.Contains(s, sec) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct{ in, want string }{
		{"http://admin:s3cretpw@127.0.0.1:8081", "http://admin:xxxxx@127.0.0.1:8081"},
		{"https://h/base?token=qs3cret&x=1", "https://h/base?xxxxx"},
		{"http://admin:s3cretpw@h?token=qs3cret", "http://admin:xxxxx@h?xxxxx"},
		{"http://h:8081", "http://h:8081"},
		{"admin:s3cretpw@127.0.0.1:8081", "xxxxx@127.0.0.1:8081"},
		{"http://admin:s3cretpw%zz@h/?token=qs3cret", "http://xxxxx@h/?xxxxx"},
	} {
		if got := redactedURL(tc.in); got != tc.want {
			t.Errorf("redactedURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}

	down := "http://admin:s3cretpw@127.0.0.1:1/?token=qs3cret"
	for _, args := range [][]string{
		{"get", "jobs", "--api-url", down},
		{"runs", "watch", "run_x", "--api-url", down},
		{"get", "jobs", "--api-url", "admin:s3cretpw@127.0.0.1:8081"},
		{"send", "w", "--api-url", "http://127.0.0.1:1", "--ingress", "admin:s3cretpw@127.0.0.1:8080"},
	} {
		r := runCLI(append(args, "--token", "tok")...)
		if r.Code == codeOK || leaks(r.Stdout+r.Stderr) || !strings.Contains(r.Stderr, "xxxxx") {
			t.Errorf("%v: want an error with the credentials masked, got %s", args, r)
		}
	}

	f := newFakeAPI(t)
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j"},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	manifest := writeFile(t, t.TempDir(), "w.yaml", "apiVersion: hookrun.dev/v1\nkind: Webhook\nmetadata: {name: w}\nspec: {job: j}\n")
	ingress := strings.Replace(f.URL, "http://", "http://admin:s3cretpw@", 1) + "/?token=qs3cret"
	for _, args := range [][]string{{"apply", "-f", manifest}, {"get", "webhook", "w"}} {
		r := runCLI(append(args, "--api-url", f.URL, "--ingress", ingress, "--token", "tok")...)
		if r.Code != codeOK || leaks(r.Stdout+r.Stderr) || !strings.Contains(r.Stdout, "admin:xxxxx@") {
			t.Errorf("%v: want the endpoint URL with the credentials masked, got %s", args, r)
		}
	}
}

// An admin token that no header can carry (a newline pasted with it) is a
// setting to fix (2), named, never printed: net/http refused it only when
// sending, and the CLI reported "cannot reach the API" (5, retry later).
func TestCLI_AnAdminTokenNoHeaderCanCarryIsAUsageError(t *testing.T) {
	f := newFakeAPI(t)
	t.Setenv("HOOKRUN_ADMIN_TOKEN", "hra_x\nSECRETPART")
	r := runCLI("get", "jobs", "--api-url", f.URL)
	if r.Code != codeUsage || !strings.Contains(r.Stderr, "HOOKRUN_ADMIN_TOKEN") || strings.Contains(r.Stderr, "SECRETPART") {
		t.Fatalf("HOOKRUN_ADMIN_TOKEN with a newline: want exit %d naming it, got %s", codeUsage, r)
	}
	r = runCLI("keys", "list", "--api-url", f.URL, "--token", "hra_x\x7fSECRETPART")
	if r.Code != codeUsage || !strings.Contains(r.Stderr, "--token") || strings.Contains(r.Stderr, "SECRETPART") {
		t.Fatalf("--token with DEL: want exit %d naming it, got %s", codeUsage, r)
	}
}

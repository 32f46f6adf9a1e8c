package main

import (
	"strings"
	"testing"
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
		{429, []byte(`{"error":{"code":"rate_limited","message":"slow down"}}`), codeRefused, "slow down (rate_limited)"},
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

package keys

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAdminAuth_RequiresABearerToken(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"token without scheme", testToken, 401},
		{"basic scheme", "Basic " + testToken, 401},
		{"empty bearer", "Bearer ", 401},
		{"token prefix", "Bearer " + testToken[:5], 401},
		{"valid", "Bearer " + testToken, 200},
		{"scheme is case-insensitive", "bearer " + testToken, 200},
		{"any configured token", "Bearer other-token", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.doAuth("GET", "/v1/jobs", nil, tc.header)
			if ans.Code != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", ans.Code, tc.want, ans.Body)
			}
			if tc.want == 401 {
				checkError(t, ans, 401, "unauthorized", "admin token")
				if ans.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	// Every /v1 route is behind the token; health is not. An unknown path
	// is a plain 404 (the route table is public, the data is not).
	checkError(t, a.doAuth("GET", "/v1/nope", nil, ""), 404, "not_found", "")
	for _, p := range []string{"/v1/keys", "/v1/runs", "/v1/secrets/x", "/v1/deliveries/dlv_x", "/v1/runs/run_x/events"} {
		if ans := a.doAuth("GET", p, nil, ""); ans.Code != 401 {
			t.Errorf("GET %s without a token: HTTP %d", p, ans.Code)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if ans := a.doAuth("GET", p, nil, ""); ans.Code != 200 {
			t.Errorf("GET %s: HTTP %d %s", p, ans.Code, ans.Body)
		}
	}
	// The token is checked before the body's size: a caller without one
	// learns nothing from a large body, and is not worth reading it for.
	big := strings.Repeat("x", 5<<20)
	checkError(t, a.doAuth("POST", "/v1/keys", big, ""), 401, "unauthorized", "admin token")
	checkError(t, a.doAuth("POST", "/v1/keys", big, "Bearer "+testToken), 413, "payload_too_large", "")
}

func TestConfigFromEnv_ReadsTokensFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "tokens")
	if err := os.WriteFile(f, []byte("# admins\nfile-one\r\n\n  file-two  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOKRUN_SECRET_KEY", "x")
	t.Setenv("HOOKRUN_ADMIN_TOKENS", "env-one, env-two,")
	t.Setenv("HOOKRUN_ADMIN_TOKENS_FILE", f)
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"env-one", "env-two", "file-one", "file-two"}; !slices.Equal(cfg.AdminTokens, want) {
		t.Fatalf("tokens %q, want %q", cfg.AdminTokens, want)
	}

	t.Setenv("HOOKRUN_ADMIN_TOKENS", "")
	t.Setenv("HOOKRUN_ADMIN_TOKENS_FILE", "")
	if _, err := ConfigFromEnv(); err == nil {
		t.Fatal("no tokens: want an error that says what to set")
	}
	t.Setenv("HOOKRUN_ADMIN_TOKENS_FILE", filepath.Join(dir, "missing"))
	if _, err := ConfigFromEnv(); err == nil {
		t.Fatal("missing token file: want an error")
	}
	t.Setenv("HOOKRUN_ADMIN_TOKENS", "t")
	t.Setenv("HOOKRUN_ADMIN_TOKENS_FILE", "")
	t.Setenv("HOOKRUN_SECRET_KEY", "")
	if _, err := ConfigFromEnv(); err == nil {
		t.Fatal("no secret key: want an error")
	}
}

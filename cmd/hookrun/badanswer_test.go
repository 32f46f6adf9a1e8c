package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// A 2xx answer that is not JSON (a proxy's page, the wrong --api-url) is
// not a success: the command exits 5, as for an answer it cannot read, and
// says nothing was done.
func TestCLI_NonJSONAnswerIsNotASuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>welcome to nginx</html>")
	}))
	t.Cleanup(srv.Close)
	manifest := writeFile(t, t.TempDir(), "j.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: j}\nspec: {command: [/bin/true]}\n")
	for _, args := range [][]string{
		{"apply", "-f", manifest},
		{"delete", "job", "j"},
		{"runs", "cancel", "run_x"},
		{"rotate-endpoint", "w"},
		{"rotate-secret", "s"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			r := runCLI(append(args, "--api-url", srv.URL, "--token", "tok")...)
			if r.Code != codeUnavailable || !strings.Contains(r.Stderr, "not JSON") {
				t.Fatalf("want exit %d saying the answer is not JSON, got %s", codeUnavailable, r)
			}
			for _, claim := range []string{"created", "configured", "unchanged", "deleted", "cancel requested", "rotated"} {
				if strings.Contains(r.Stdout, claim) {
					t.Fatalf("reports success (%q): %s", claim, r)
				}
			}
		})
	}
}

// A manifest that cannot be read is a local error (exit 1), not input the
// API refused (4), as the exit code table says.
func TestCLI_ApplyOfAMissingFileExits1(t *testing.T) {
	f := newFakeAPI(t)
	r := f.execCLI("apply", "-f", filepath.Join(t.TempDir(), "none.yaml"))
	if r.Code != codeError || !strings.Contains(r.Stderr, "no such file") {
		t.Fatalf("want exit %d naming the missing file, got %s", codeError, r)
	}
}

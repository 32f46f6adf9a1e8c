package keys

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Creates of one key name racing (a client retrying a create that timed
// out) make one key: the others are 409 name_taken.
func TestKeys_ConcurrentCreatesOfOneNameMakeOneKey(t *testing.T) {
	a := newTestAPI(t)
	codes := make([]int, 12)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = a.do("POST", "/v1/keys", map[string]any{"name": "r1"}).Code })
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("answers %v", codes)
		}
	}
	keys := a.must(http.StatusOK, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	if created != 1 || len(keys) != 1 {
		t.Fatalf("%d creates answered 201 and %d keys listed; want one key named r1 (answers %v)", created, len(keys), codes)
	}
}

// A key's name is printed in lists: blank names and control characters
// are refused, spaces around it trimmed; its scope lists are bounded.
func TestKeys_NameIsPrintableAndScopesBounded(t *testing.T) {
	a := newTestAPI(t)
	for _, name := range []string{"   ", "a\nb", "\x00x", "tab\there", "deploy\u202eyek", "line\u2028two", strings.Repeat("é", 129)} {
		ans := a.do("POST", "/v1/keys", map[string]any{"name": name})
		if ans.Code != http.StatusBadRequest || ans.ErrField() != "name" {
			t.Fatalf("name %q: HTTP %d %s, want 400 on name", name, ans.Code, ans.Body)
		}
	}
	// At most 128 characters, not bytes.
	if got := a.must(http.StatusCreated, "POST", "/v1/keys", map[string]any{"name": strings.Repeat("é", 128)}).JSON(); got["name"] != strings.Repeat("é", 128) {
		t.Fatalf("a name of 128 two-byte characters stored as %q", got["name"])
	}
	got := a.must(http.StatusCreated, "POST", "/v1/keys", map[string]any{"name": "  ci deploy  "}).JSON()
	if got["name"] != "ci deploy" {
		t.Fatalf("name stored as %q, want it trimmed", got["name"])
	}
	many := strings.Split(strings.Repeat("w,", 1001), ",")[:1001]
	ans := a.do("POST", "/v1/keys", map[string]any{"name": "wide", "jobs": many})
	if ans.Code != http.StatusBadRequest || ans.ErrField() != "jobs" {
		t.Fatalf("1001 jobs: HTTP %d %s, want 400 on jobs", ans.Code, ans.Body)
	}
}

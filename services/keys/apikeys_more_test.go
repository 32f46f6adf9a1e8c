package keys

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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

// A key created by name while a webhook makes its generated key of that
// name waits for it and is refused (409 name_taken): the webhook chose
// its key's name and made the key outside keyNames, and the two both
// made "deploy-key" in one namespace.
func TestKeys_ACreateRacingAWebhooksGeneratedKeyDoesNotTakeItsName(t *testing.T) {
	a := newTestAPI(t)
	a.must(http.StatusCreated, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	created := 0
	done := make(chan struct{})
	a.svc.beforeWebhookKey = func() {
		go func() {
			defer close(done)
			created = a.do("POST", "/v1/keys", map[string]any{"name": "deploy-key"}).Code
		}()
		// Time for the create to get in first, if it can.
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
	doc := webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
	gen := path(a.must(http.StatusCreated, "PUT", "/v1/webhooks/deploy", doc).JSON(), "generatedKey", "id")
	<-done
	keys := a.must(http.StatusOK, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	if created != http.StatusConflict || len(keys) != 1 || path(keys[0], "id") != gen || path(keys[0], "name") != "deploy-key" {
		t.Fatalf("the create answered %d beside the webhook's key %v; keys %v, want only the webhook's, named deploy-key", created, gen, keys)
	}
}

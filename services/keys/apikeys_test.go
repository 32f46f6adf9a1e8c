package keys

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
)

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return tm
}

// Jac Cloud's key management: generate (name, scopes, expiration), list
// without secrets, extend, delete one or many.
func TestAPIKeys_GenerateListExtendDelete(t *testing.T) {
	a := newTestAPI(t)
	before := time.Now()
	ans := a.must(201, "POST", "/v1/keys", map[string]any{
		"name": "webhook1", "webhooks": []string{"deploy"}, "jobs": []string{},
		"expiration": map[string]any{"count": 60, "interval": "days"},
	})
	m := ans.JSON()
	id, _ := m["id"].(string)
	key, _ := m["key"].(string)
	kid, secret, ok := apikey.Parse(key)
	if !ok || kid != id || m["name"] != "webhook1" {
		t.Fatalf("created: %s", ans.Body)
	}
	exp := parseTime(t, m["expiresAt"])
	if d := exp.Sub(before); d < 60*24*time.Hour-time.Minute || d > 60*24*time.Hour+time.Minute {
		t.Fatalf("expiresAt %v is not 60 days out", exp)
	}

	// Without expiration a key never expires; empty scopes mean all.
	created := a.must(201, "POST", "/v1/keys", map[string]any{"name": "forever"})
	m2 := created.JSON()
	if v, ok := m2["expiresAt"]; !ok || v != nil {
		t.Fatalf("key without expiration: %v, want expiresAt null (API.md lists the field)", m2)
	}

	list := a.must(200, "GET", "/v1/keys", nil)
	if !strings.Contains(string(list.Body), `"expiresAt":null`) {
		t.Fatalf("listed keys: %s, want the key that never expires with expiresAt null", list.Body)
	}
	if strings.Contains(string(list.Body), secret) || strings.Contains(string(list.Body), `"hash"`) || strings.Contains(string(list.Body), `"key"`) {
		t.Fatalf("list shows a secret: %s", list.Body)
	}
	keys, _ := list.JSON()["keys"].([]any)
	if len(keys) != 2 || path(keys[0], "id") != id || path(keys[0], "prefix") != "hk_"+id || path(keys[0], "createdAt") == nil ||
		path(keys[0], "expiresAt") == nil || len(path(keys[0], "webhooks").([]any)) != 1 || path(keys[0], "jobs") == nil {
		t.Fatalf("list: %s", list.Body)
	}
	if !strings.HasPrefix(key, path(keys[0], "prefix").(string)+"_") {
		t.Fatalf("prefix %v is not the start of the key", path(keys[0], "prefix"))
	}

	// The bucket holds the hash, never the secret part.
	raw := rawBucket(t, a, bus.BucketKeys)
	if strings.Contains(raw, secret) || !strings.Contains(raw, apikey.Hash(secret)) {
		t.Fatalf("keys bucket: %s", raw)
	}

	// Extend from the current expiry.
	ext := a.must(200, "PATCH", "/v1/keys/"+id+"/extend", map[string]any{"count": 1, "interval": "hours"}).JSON()
	if got := parseTime(t, ext["expiresAt"]); !got.Equal(exp.Add(time.Hour)) {
		t.Fatalf("extended to %v, want %v", got, exp.Add(time.Hour))
	}
	if ext["key"] != nil {
		t.Fatalf("extend showed the key: %v", ext)
	}
	// Extending a key that never expires leaves it so.
	if e := a.must(200, "PATCH", "/v1/keys/"+m2["id"].(string)+"/extend", map[string]any{"count": 1, "interval": "days"}).JSON(); e["expiresAt"] != nil {
		t.Fatalf("extend shortened a key that never expired: %v", e)
	}
	checkError(t, a.do("PATCH", "/v1/keys/nope/extend", map[string]any{"count": 1, "interval": "days"}), 404, "not_found", "")

	// Delete one, then many (unknown ids are not counted).
	m3 := a.must(201, "POST", "/v1/keys", map[string]any{"name": "third"}).JSON()
	if n := a.must(200, "DELETE", "/v1/keys/"+id, nil).JSON()["deleted"]; n != 1.0 {
		t.Fatalf("deleted %v", n)
	}
	checkError(t, a.do("DELETE", "/v1/keys/"+id, nil), 404, "not_found", "")
	n := a.must(200, "DELETE", "/v1/keys", map[string]any{"ids": []string{m2["id"].(string), m3["id"].(string), "unknown", "a.b"}}).JSON()["deleted"]
	if n != 2.0 {
		t.Fatalf("deleted %v, want 2", n)
	}
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

// Keys are namespaced like every resource: a key made without a namespace
// is the default namespace's (never every namespace's, unless asked for with
// "*"), and ?namespace= narrows the list and the operations by id.
func TestAPIKeys_AreNamespaced(t *testing.T) {
	a := newTestAPI(t)
	def := a.must(201, "POST", "/v1/keys", map[string]any{"name": "d"}).JSON()["id"].(string)
	ops := a.must(201, "POST", "/v1/keys?namespace=ops", map[string]any{"name": "o"}).JSON()["id"].(string)
	all := a.must(201, "POST", "/v1/keys", map[string]any{"name": "a", "namespace": "*"}).JSON()["id"].(string)

	ids := func(q string) map[string]string {
		keys, _ := a.must(200, "GET", "/v1/keys"+q, nil).JSON()["keys"].([]any)
		out := map[string]string{}
		for _, k := range keys {
			out[path(k, "id").(string)], _ = path(k, "namespace").(string)
		}
		return out
	}
	if got := ids(""); len(got) != 3 || got[def] != "default" || got[ops] != "ops" || got[all] != "*" {
		t.Fatalf("every key with its namespace: %v", got)
	}
	if got := ids("?namespace=ops"); len(got) != 2 || got[ops] == "" || got[all] == "" {
		t.Fatalf("keys valid in ops: %v", got)
	}
	ext := map[string]any{"count": 1, "interval": "days"}
	checkError(t, a.do("PATCH", "/v1/keys/"+ops+"/extend?namespace=default", ext), 404, "not_found", "")
	a.must(200, "PATCH", "/v1/keys/"+ops+"/extend?namespace=ops", ext)
	checkError(t, a.do("DELETE", "/v1/keys/"+def+"?namespace=ops", nil), 404, "not_found", "")
	if n := a.must(200, "DELETE", "/v1/keys?namespace=ops", map[string]any{"ids": []string{def, ops}}).JSON()["deleted"]; n != 1.0 {
		t.Fatalf("bulk delete in ops deleted %v keys, want only ops' own", n)
	}
	if got := ids(""); len(got) != 2 || got[def] == "" || got[ops] != "" {
		t.Fatalf("after deleting ops' key: %v", got)
	}
}

func TestAPIKeys_RefuseInvalidInput(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		name string
		body any
		msg  string
	}{
		{"no name", map[string]any{}, "name: is required"},
		{"bad interval", map[string]any{"name": "k", "expiration": map[string]any{"count": 1, "interval": "weeks"}}, "expiration.interval: must be one of seconds, minutes, hours, days"},
		{"negative count", map[string]any{"name": "k", "expiration": map[string]any{"count": -1, "interval": "days"}}, "expiration.count"},
		{"bad webhook name", map[string]any{"name": "k", "webhooks": []string{"a.b"}}, "webhooks[0]"},
		{"bad job name", map[string]any{"name": "k", "jobs": []string{"ok", ">"}}, "jobs[1]"},
		{"bad namespace", map[string]any{"name": "k", "namespace": "A"}, "namespace"},
		{"walkers is Jac's word", map[string]any{"name": "k", "walkers": []string{"x"}}, `unknown field "walkers"`},
		{"count as text", map[string]any{"name": "k", "expiration": map[string]any{"count": "60", "interval": "days"}}, "expiration.count: must be a whole number"},
		// count × interval past what a duration holds must not wrap into "never expires"
		{"over 100 years", map[string]any{"name": "k", "expiration": map[string]any{"count": 36501, "interval": "days"}}, "expiration.count: must be at most 100 years"},
		{"overflowing seconds", map[string]any{"name": "k", "expiration": map[string]any{"count": int64(9223372036854775807), "interval": "seconds"}}, "expiration.count: must be at most 100 years"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, a.do("POST", "/v1/keys", tc.body), 400, "invalid_request", tc.msg)
		})
	}
	id := a.must(201, "POST", "/v1/keys?namespace=ops", map[string]any{"name": "k"}).JSON()["id"].(string)
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); path(keys[0], "namespace") != "ops" {
		t.Fatalf("?namespace= does not scope the key: %v", keys)
	}
	checkError(t, a.do("PATCH", "/v1/keys/"+id+"/extend", map[string]any{"count": 0, "interval": "days"}), 400, "invalid_request", "count: must be positive")
	// The extend body is {count, interval}: errors name those fields.
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"count": 1, "interval": "fortnights"}, "interval: must be one of"},
		{map[string]any{"count": 200000, "interval": "days"}, "count: must be at most 100 years"},
	} {
		r := a.do("PATCH", "/v1/keys/"+id+"/extend", tc.body)
		checkError(t, r, 400, "invalid_request", tc.msg)
		if strings.Contains(string(r.Body), "expiration.") {
			t.Errorf("extend error names a field the body does not have: %s", r.Body)
		}
	}
	checkError(t, a.do("DELETE", "/v1/keys", map[string]any{"ids": []string{}}), 400, "invalid_request", "ids")

	// Jac Cloud: "unique name for the webhook key", within a namespace.
	a.must(201, "POST", "/v1/keys", map[string]any{"name": "ci"})
	checkError(t, a.do("POST", "/v1/keys", map[string]any{"name": "ci"}), 409, "name_taken", `an API key named "ci" exists in namespace "default"`)
	a.must(201, "POST", "/v1/keys?namespace=ops", map[string]any{"name": "ci"})
}

// TestAPIKeys_RefuseZeroExpiration: an expiration of 0 units is refused
// (400, the field named), not read as "never expires"; a key that never
// expires is one made without an expiration.
func TestAPIKeys_RefuseZeroExpiration(t *testing.T) {
	a := newTestAPI(t)
	r := a.do("POST", "/v1/keys", map[string]any{"name": "k", "expiration": map[string]any{"count": 0, "interval": "days"}})
	checkError(t, r, 400, "invalid_request", "expiration.count: must be positive")
	if f, _ := r.JSON()["error"].(map[string]any)["field"].(string); f != "expiration.count" {
		t.Fatalf("error field %q, want expiration.count: %s", f, r.Body)
	}
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(keys) != 0 {
		t.Fatalf("a refused key was stored: %v", keys)
	}
}

// TestAPIKeys_ExtendStopsAtMaxExpiration: extensions add up, but never past
// 100 years from now (MaxExpiration; beyond year 9999 the expiry could not
// even be written as JSON): an extend beyond it is a 400 that leaves the
// expiry alone.
func TestAPIKeys_ExtendStopsAtMaxExpiration(t *testing.T) {
	a := newTestAPI(t)
	m := a.must(201, "POST", "/v1/keys", map[string]any{"name": "long", "expiration": map[string]any{"count": 36000, "interval": "days"}}).JSON()
	id := m["id"].(string)
	exp := parseTime(t, m["expiresAt"])
	ext := map[string]any{"count": 36000, "interval": "days"}
	for i := 0; i < 100; i++ { // past year 9999 if every one were applied
		r := a.do("PATCH", "/v1/keys/"+id+"/extend", ext)
		if r.Code == 200 {
			t.Fatalf("extend %d moved the expiry to %v, more than 100 years out", i, r.JSON()["expiresAt"])
		}
		checkError(t, r, 400, "invalid_request", "count: would move the expiry to more than 100 years from now")
	}
	got := a.must(200, "PATCH", "/v1/keys/"+id+"/extend", map[string]any{"count": 100, "interval": "days"}).JSON()
	if e := parseTime(t, got["expiresAt"]); !e.Equal(exp.Add(100 * 24 * time.Hour)) {
		t.Fatalf("extend within the limit: expiresAt %v, want %v", e, exp.Add(100*24*time.Hour))
	}
}

// A key scoped to a webhook or job that does not exist is made (the
// webhook may come later), with a warning that names it: a typo does not
// go unnoticed. A scope that matches says nothing.
func TestAPIKeys_ScopesThatMatchNothingAreWarnedAbout(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Job", "metadata": map[string]any{"name": "report"}, "spec": map[string]any{"command": []string{"true"}}})
	m := a.must(201, "POST", "/v1/keys", map[string]any{"name": "typo", "webhooks": []string{"deplyo"}, "jobs": []string{"report"}}).JSON()
	w, _ := m["warnings"].([]any)
	if len(w) != 1 || !strings.Contains(fmt.Sprint(w[0]), `no webhook "deplyo"`) {
		t.Fatalf("warnings %v, want one naming webhook deplyo", m["warnings"])
	}
	if m := a.must(201, "POST", "/v1/keys", map[string]any{"name": "fine", "jobs": []string{"report"}}).JSON(); m["warnings"] != nil {
		t.Fatalf("warnings for scopes that exist: %v", m["warnings"])
	}
}

// A key works in one namespace, named by the body or by ?namespace=: when
// both name one, they must agree (as for resources), else the key would be
// made in a namespace the caller did not ask for in the URL.
func TestAPIKeys_CreateRefusesABodyNamespaceOtherThanTheQuerys(t *testing.T) {
	a := newTestAPI(t)
	for _, tc := range []struct{ query, body string }{
		{"default", "team-b"},
		{"team-b", "default"},
	} {
		ans := a.do("POST", "/v1/keys?namespace="+tc.query, map[string]any{"name": "x", "namespace": tc.body})
		checkError(t, ans, 400, "invalid_request", fmt.Sprintf("namespace: %q does not match ?namespace=%s", tc.body, tc.query))
		if ans.ErrField() != "namespace" {
			t.Fatalf("error field %q, want namespace: %s", ans.ErrField(), ans.Body)
		}
	}
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(keys) != 0 {
		t.Fatalf("a refused create made keys: %v", keys)
	}
	// The same namespace in both, or in either alone, is fine.
	a.must(201, "POST", "/v1/keys?namespace=team-b", map[string]any{"name": "x", "namespace": "team-b"})
	a.must(201, "POST", "/v1/keys?namespace=team-c", map[string]any{"name": "x"})
	a.must(201, "POST", "/v1/keys", map[string]any{"name": "x", "namespace": "team-d"})
	// "*" is a key for every namespace whatever the query names: `hookrun
	// keys create --all-namespaces` sends its -n ("default") as well.
	a.must(201, "POST", "/v1/keys?namespace=default", map[string]any{"name": "y", "namespace": "*"})
	got := map[string]bool{}
	keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	for _, k := range keys {
		got[fmt.Sprint(path(k, "namespace"))] = true
	}
	if len(keys) != 4 || !got["team-b"] || !got["team-c"] || !got["team-d"] || !got["*"] {
		t.Fatalf("keys in namespaces %v (%d keys)", got, len(keys))
	}
}

// A user who kept the key itself (or the list's prefix) may address it by
// that; a key pasted where an id goes is never echoed whole in a 404.
func TestAPIKeys_AddressedByTheKeyItselfOrItsPrefix(t *testing.T) {
	a := newTestAPI(t)
	keyOf := func(name string) (key, id string) {
		m := a.must(201, "POST", "/v1/keys", map[string]any{"name": name}).JSON()
		key, _ = m["key"].(string)
		id, _ = m["id"].(string)
		return key, id
	}
	k1, _ := keyOf("one")
	k2, id2 := keyOf("two")
	k3, _ := keyOf("three")
	a.must(200, "PATCH", "/v1/keys/"+k1+"/extend", map[string]any{"count": 1, "interval": "hours"})
	if got := a.must(200, "DELETE", "/v1/keys/"+k1, nil).JSON()["deleted"]; got != float64(1) {
		t.Fatalf("DELETE by the key itself deleted %v", got)
	}
	if got := a.must(200, "DELETE", "/v1/keys", map[string]any{"ids": []string{"hk_" + id2, k3}}).JSON()["deleted"]; got != float64(2) {
		t.Fatalf("DELETE of the prefix and the key deleted %v, want 2", got)
	}
	if left := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(left) != 0 {
		t.Fatalf("keys left: %v", left)
	}
	_, secret2, _ := apikey.Parse(k2)
	for _, p := range []string{"/v1/keys/" + k1, "/v1/runs/" + k2, "/v1/deliveries/" + k2, "/v1/runs/" + k2 + "/events", "/v1/runs/%09" + k2, "/v1/runs/%22" + k2} {
		method := "GET"
		if p == "/v1/keys/"+k1 {
			method = "DELETE"
		}
		ans := a.must(404, method, p, nil)
		if strings.Contains(string(ans.Body), secret2) || strings.Contains(string(ans.Body), k1) {
			t.Errorf("%s %s: %s echoes the key", method, p, ans.Body)
		}
	}
}

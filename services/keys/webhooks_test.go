package keys

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

func TestWebhooks_CreateReplaceGetListDelete(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	a.must(201, "PUT", "/v1/secrets/gh-secret", secretDoc("gh-secret", map[string]any{"value": "s3cret-value-for-github"}))

	spec := map[string]any{
		"job": "report", "methods": []string{"post"},
		"auth":        map[string]any{"signature": map[string]any{"profile": "github", "secretRef": "gh-secret"}},
		"dedupWindow": "72h", "filter": `header["X-GitHub-Event"] == "push" && body.ref == "refs/heads/main"`,
		"rateLimit": map[string]any{"perSecond": 100, "burst": 200}, "response": map[string]any{"status": 202},
	}
	ans := a.must(201, "PUT", "/v1/webhooks/report-github-push", webhookDoc("report-github-push", spec))
	m := ans.JSON()
	ep, _ := path(m, "status", "endpointPath").(string)
	if ans.Result() != ResultCreated || !strings.HasPrefix(ep, "/v1/hooks/ep_") || path(m, "spec", "methods") == nil || m["generatedKey"] != nil {
		t.Fatalf("created: %s %s", ans.Result(), ans.Body)
	}
	if got := path(m, "spec", "methods").([]any)[0]; got != "POST" {
		t.Fatalf("methods not normalised: %v", got)
	}

	if r := a.must(200, "PUT", "/v1/webhooks/report-github-push", webhookDoc("report-github-push", spec)).Result(); r != ResultUnchanged {
		t.Fatalf("same webhook again: %q", r)
	}
	spec["maxBodyBytes"] = 2048
	ans = a.must(200, "PUT", "/v1/webhooks/report-github-push", webhookDoc("report-github-push", spec))
	if ans.Result() != ResultConfigured || path(ans.JSON(), "status", "endpointPath") != ep {
		t.Fatalf("a changed webhook keeps its endpoint: %s %s", ans.Result(), ans.Body)
	}

	got := a.must(200, "GET", "/v1/webhooks/report-github-push", nil).JSON()
	if path(got, "status", "endpointPath") != ep || path(got, "spec", "maxBodyBytes") != 2048.0 || path(got, "spec", "auth", "signature", "profile") != "github" {
		t.Fatalf("get: %v", got)
	}
	a.must(201, "PUT", "/v1/webhooks/plain", webhookDoc("plain", map[string]any{"job": "report"}))
	items, _ := a.must(200, "GET", "/v1/webhooks", nil).JSON()["items"].([]any)
	if len(items) != 2 || path(items[0], "metadata", "name") != "plain" || path(items[0], "status", "endpointPath") == nil {
		t.Fatalf("list: %v", items)
	}
	checkError(t, a.do("GET", "/v1/webhooks/plain?namespace=other", nil), 404, "not_found", "webhook other/plain")

	a.must(200, "DELETE", "/v1/webhooks/plain", nil)
	checkError(t, a.do("GET", "/v1/webhooks/plain", nil), 404, "not_found", "")
	checkError(t, a.do("DELETE", "/v1/webhooks/plain", nil), 404, "not_found", "")
}

func TestWebhooks_RefuseInvalidInputNamingTheField(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic", "default": "AI", "value": "{{ .body.topic }}"}}}))
	a.must(201, "PUT", "/v1/jobs/needs-input", jobDoc("needs-input", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic", "default": "x"}, {"name": "target"}}}))
	a.must(201, "PUT", "/v1/secrets/s", secretDoc("s", nil))
	a.must(201, "PUT", "/v1/jobs/body-only", jobDoc("body-only", map[string]any{"command": []string{"/bin/true"}, "args": []map[string]any{{"name": "topic", "default": "x"}, {"name": "id", "value": "{{ .body.id }}"}}}))
	cases := []struct {
		name string
		spec map[string]any
		msg  string
	}{
		{"key in a cookie", map[string]any{"job": "report", "auth": map[string]any{"apiKey": map[string]any{"in": "cookie"}}},
			"spec.auth.apiKey.in: must be one of header, query, path, body"},
		{"no job", map[string]any{"auth": map[string]any{"none": map[string]any{}}}, "spec.job: is required"},
		{"job missing", map[string]any{"job": "nope"}, `spec.job: job "nope" not found in namespace "default"`},
		{"job args without defaults (Janus)", map[string]any{"job": "needs-input"}, "args[1] (target): needs a default or a value"},
		{"unknown profile", map[string]any{"job": "report", "auth": map[string]any{"signature": map[string]any{"profile": "acme", "secretRef": "s"}}}, "spec.auth.signature.profile: must be one of"},
		{"secret missing", map[string]any{"job": "report", "auth": map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "nope"}}}, `spec.auth.signature.secretRef: secret "nope" not found`},
		{"callback secret missing", map[string]any{"job": "report", "callback": map[string]any{"url": "https://example.com/cb", "secretRef": "nope"}}, "spec.callback.secretRef"},
		{"filter does not compile", map[string]any{"job": "report", "filter": "body.ref ==="}, "spec.filter"},
		{"two auth modes", map[string]any{"job": "report", "auth": map[string]any{"none": map[string]any{}, "apiKey": map[string]any{}}}, "spec.auth: choose one"},
		{"bad method", map[string]any{"job": "report", "methods": []string{"DELETE"}}, "spec.methods[0]"},
		// A GET runs its job with argument defaults only.
		{"GET for a job with an argument without default", map[string]any{"job": "body-only", "methods": []string{"GET", "POST"}}, `spec.methods: job "body-only" cannot be triggered by a GET: spec.args[1] (id): needs a default`},
		{"bad dedup window", map[string]any{"job": "report", "dedupWindow": "3 days"}, "spec.dedupWindow: must be a duration"},
		// A captured signed delivery stays within its tolerance for twice
		// the tolerance: a shorter window would let it run again.
		{"window under twice the tolerance", map[string]any{"job": "report", "dedupWindow": "9m", "auth": map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "s"}}}, "spec.dedupWindow: the dedup window (9m0s) must be at least twice the timestamp tolerance (5m0s)"},
		// 2*tolerance once overflowed, and the check passed.
		{"tolerance past any delivery's age", map[string]any{"job": "report", "dedupWindow": "1h", "auth": map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "s", "tolerance": "1500000h"}}}, "spec.auth.signature.tolerance: must be at most 24h"},
		{"tolerance over half the default window", map[string]any{"job": "report", "auth": map[string]any{"signature": map[string]any{"profile": "slack", "secretRef": "s", "tolerance": "31m"}}}, "spec.auth.signature.tolerance: the dedup window (1h0m0s)"},
		{"response 201", map[string]any{"job": "report", "response": map[string]any{"status": 201}}, "spec.response.status: must be 200 or 202"},
		{"job name with a dot", map[string]any{"job": "a.b"}, "spec.job: must match"},
		{"unknown field", map[string]any{"job": "report", "auht": map[string]any{}}, `unknown field "auht"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, a.do("PUT", "/v1/webhooks/w", webhookDoc("w", tc.spec)), 400, "invalid_request", tc.msg)
		})
	}
	for _, name := range []string{"a.b", "a*", "a%3E"} {
		checkError(t, a.do("PUT", "/v1/webhooks/"+name, webhookDoc(name, map[string]any{"job": "report"})), 400, "invalid_request", "metadata.name")
	}
	// The field is also in the error body, for programs.
	ans := a.do("PUT", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "report", "auth": map[string]any{"apiKey": map[string]any{"in": "cookie"}}}))
	if f := path(ans.JSON(), "error", "field"); f != "spec.auth.apiKey.in" {
		t.Fatalf("error.field %v", f)
	}
}

// Janus: enabling API-key auth generates a key scoped to the webhook, shown
// once; re-applying does not make another one.
func TestWebhooks_APIKeyAuthGeneratesAScopedKeyOnce(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy?namespace=ops", jobDoc("deploy", nil))
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	doc := webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
	m := a.must(201, "PUT", "/v1/webhooks/deploy?namespace=ops", doc).JSON()
	id, _ := path(m, "generatedKey", "id").(string)
	key, _ := path(m, "generatedKey", "key").(string)
	kid, _, ok := apikey.Parse(key)
	if !ok || kid != id || path(m, "spec", "auth", "apiKey", "in") != "header" || path(m, "spec", "auth", "apiKey", "name") != "X-API-KEY" {
		t.Fatalf("generated key: %s", a.must(200, "GET", "/v1/webhooks/deploy?namespace=ops", nil).Body)
	}
	again := a.must(200, "PUT", "/v1/webhooks/deploy?namespace=ops", doc)
	if again.JSON()["generatedKey"] != nil || strings.Contains(string(again.Body), key) {
		t.Fatalf("re-apply showed a key again: %s", again.Body)
	}
	keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	if len(keys) != 1 || path(keys[0], "id") != id || path(keys[0], "name") != "deploy-key" || path(keys[0], "namespace") != "ops" {
		t.Fatalf("keys: %v", keys)
	}
	if ws := path(keys[0], "webhooks").([]any); len(ws) != 1 || ws[0] != "deploy" {
		t.Fatalf("scope: %v", ws)
	}

	// A key in the path shows where in endpointPath.
	m = a.must(201, "PUT", "/v1/webhooks/by-path", webhookDoc("by-path", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{"in": "path", "name": "test_key"}}})).JSON()
	if ep, _ := path(m, "status", "endpointPath").(string); !strings.HasSuffix(ep, "/{test_key}") {
		t.Fatalf("endpointPath %q", ep)
	}

	// Deleting the webhook deletes the key it generated: a new webhook of the
	// same name must not accept the old key.
	a.must(200, "DELETE", "/v1/webhooks/deploy?namespace=ops", nil)
	keys, _ = a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	for _, k := range keys {
		if path(k, "id") == id {
			t.Fatalf("the deleted webhook's key survived: %v", keys)
		}
	}
}

// TestWebhooks_LeavingAPIKeyAuthDeletesItsKey: the key a webhook generated
// is deleted when the webhook moves to another auth mode; moving back
// generates a new one under the same name, never a second key of that name.
func TestWebhooks_LeavingAPIKeyAuthDeletesItsKey(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	keyed := webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
	first, _ := path(a.must(201, "PUT", "/v1/webhooks/deploy", keyed).JSON(), "generatedKey", "id").(string)

	a.must(200, "PUT", "/v1/webhooks/deploy", webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"none": map[string]any{}}}))
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(keys) != 0 {
		t.Fatalf("keys left after leaving API-key auth: %v", keys)
	}
	checkError(t, a.do("PATCH", "/v1/keys/"+first+"/extend", map[string]any{"count": 1, "interval": "days"}), 404, "not_found", "")

	second, _ := path(a.must(200, "PUT", "/v1/webhooks/deploy", keyed).JSON(), "generatedKey", "id").(string)
	keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	if second == "" || second == first || len(keys) != 1 || path(keys[0], "id") != second || path(keys[0], "name") != "deploy-key" {
		t.Fatalf("back to API-key auth: generated %q, keys %v", second, keys)
	}
}

// TestWebhooks_GeneratedKeyNamesStayUnique: a generated key never takes the
// name of an existing key of its namespace (POST /v1/keys refuses those).
func TestWebhooks_GeneratedKeyNamesStayUnique(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	a.must(201, "POST", "/v1/keys", map[string]any{"name": "deploy-key"})
	a.must(201, "POST", "/v1/keys", map[string]any{"name": "deploy-key-2"})
	a.must(201, "POST", "/v1/keys?namespace=ops", map[string]any{"name": "other-key"})
	for _, tt := range []struct{ webhook, ns, want string }{
		{"deploy", "default", "deploy-key-3"},
		{"other", "default", "other-key"}, // taken in ops only
	} {
		doc := webhookDoc(tt.webhook, map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
		id, _ := path(a.must(201, "PUT", "/v1/webhooks/"+tt.webhook, doc).JSON(), "generatedKey", "id").(string)
		keys, _ := a.must(200, "GET", "/v1/keys?namespace="+tt.ns, nil).JSON()["keys"].([]any)
		names := map[string]int{}
		var got string
		for _, k := range keys {
			names[path(k, "name").(string)]++
			if path(k, "id") == id {
				got = path(k, "name").(string)
			}
		}
		if got != tt.want {
			t.Errorf("webhook %s generated key %q, want %q (keys %v)", tt.webhook, got, tt.want, names)
		}
		for n, c := range names {
			if c > 1 {
				t.Errorf("%d keys named %q", c, n)
			}
		}
	}
}

func TestWebhooks_RotateEndpointGivesANewPath(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/j", jobDoc("j", nil))
	old := path(a.must(201, "PUT", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "j"})).JSON(), "status", "endpointPath")
	m := a.must(200, "POST", "/v1/webhooks/w/rotate-endpoint", nil).JSON()
	rotated := path(m, "status", "endpointPath")
	if rotated == old || !strings.HasPrefix(rotated.(string), "/v1/hooks/ep_") {
		t.Fatalf("rotate: %v -> %v", old, rotated)
	}
	if got := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "status", "endpointPath"); got != rotated {
		t.Fatalf("stored %v, want %v", got, rotated)
	}
	// Re-applying the same spec keeps the rotated endpoint.
	if got := path(a.must(200, "PUT", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "j"})).JSON(), "status", "endpointPath"); got != rotated {
		t.Fatalf("re-apply: %v, want %v", got, rotated)
	}
	checkError(t, a.do("POST", "/v1/webhooks/nope/rotate-endpoint", nil), 404, "not_found", "webhook default/nope")
}

// Orloj: the detail of a delivery that could not become a run goes to the
// webhook's status.lastError.
func TestWebhooks_StatusShowsLastErrorAndLastDelivery(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/j", jobDoc("j", nil))
	a.must(201, "PUT", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "j"}))
	if st := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "status"); path(st, "lastError") != nil || path(st, "lastDeliveryAt") != nil {
		t.Fatalf("fresh webhook status: %v", st)
	}
	ctx := context.Background()
	wr := webhookstatus.NewWriter(a.js)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	uid := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "metadata", "uid").(string)
	if err := wr.Delivered(ctx, "default", "w", uid, at); err != nil {
		t.Fatal(err)
	}
	if err := wr.Error(ctx, "default", "w", uid, "job j: spec.args[0] (topic): needs a default"); err != nil {
		t.Fatal(err)
	}
	st := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "status")
	if path(st, "lastDeliveryAt") != "2030-01-02T03:04:05Z" || !strings.Contains(path(st, "lastError").(string), "needs a default") || path(st, "lastErrorAt") == nil {
		t.Fatalf("status: %v", st)
	}
	items, _ := a.must(200, "GET", "/v1/webhooks", nil).JSON()["items"].([]any)
	if path(items[0], "status", "lastError") == nil {
		t.Fatalf("list without status: %v", items)
	}
	// Deleting the webhook clears its status: a new one starts clean,
	// even of a write for the deleted one that landed between the delete
	// and the new webhook (a writer whose catalog lagged).
	a.must(200, "DELETE", "/v1/webhooks/w", nil)
	if err := wr.Error(ctx, "default", "w", uid, "job j: cannot start command: gone"); err != nil {
		t.Fatal(err)
	}
	a.must(201, "PUT", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "j"}))
	if st := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "status"); path(st, "lastError") != nil {
		t.Fatalf("recreated webhook inherited status: %v", st)
	}
	// The new webhook's own lastError stays, whatever late write of the
	// deleted one lands after it.
	newUID := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "metadata", "uid").(string)
	if err := wr.Error(ctx, "default", "w", newUID, "job j: cannot start command: mine"); err != nil {
		t.Fatal(err)
	}
	if err := wr.Error(ctx, "default", "w", uid, "job j: cannot start command: a late one"); err != nil {
		t.Fatal(err)
	}
	if st := path(a.must(200, "GET", "/v1/webhooks/w", nil).JSON(), "status"); path(st, "lastError") != "job j: cannot start command: mine" {
		t.Fatalf("the new webhook's status after a late write for the deleted one: %v", st)
	}
}

// A document read back with its status and server fields (hookrun get -o
// yaml) applies like the original: the caller cannot set them.
func TestWebhooks_IgnoreStatusAndServerFieldsInTheBody(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/j", jobDoc("j", nil))
	doc := webhookDoc("w", map[string]any{"job": "j"})
	doc["metadata"] = map[string]any{"name": "w", "uid": "mine", "generation": 41, "createdAt": "2001-01-01T00:00:00Z"}
	doc["status"] = map[string]any{"endpointId": "ep_chosen", "endpointPath": "/v1/hooks/ep_chosen", "lastError": "forged"}
	m := a.must(201, "PUT", "/v1/webhooks/w", doc).JSON()
	if path(m, "status", "endpointId") == "ep_chosen" || path(m, "status", "lastError") != nil ||
		path(m, "metadata", "uid") == "mine" || path(m, "metadata", "generation") != 1.0 || path(m, "metadata", "createdAt") == "2001-01-01T00:00:00Z" {
		t.Fatalf("caller-set fields were kept: %v", m)
	}
	back := a.must(200, "GET", "/v1/webhooks/w", nil).JSON()
	if r := a.must(200, "PUT", "/v1/webhooks/w", back).Result(); r != ResultUnchanged {
		t.Fatalf("re-applying what GET returned: %q", r)
	}
}

// Keys a webhook generated and a failed clean-up left behind (the webhook
// gone, or moved off API-key auth, with its keys still stored) do not work
// beside the key its name generates next; and a delete removes the keys
// with the webhook.
func TestWebhooks_LeftoverGeneratedKeysAreRemovedOnReturnToAPIKeyAuth(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	keyed := webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
	first, _ := path(a.must(201, "PUT", "/v1/webhooks/deploy", keyed).JSON(), "generatedKey", "id").(string)
	// The webhook goes without its keys (a clean-up that failed).
	kv, err := a.js.KeyValue(context.Background(), bus.BucketWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(context.Background(), bus.ConfigKey("default", "deploy")); err != nil {
		t.Fatal(err)
	}
	second, _ := path(a.must(201, "PUT", "/v1/webhooks/deploy", keyed).JSON(), "generatedKey", "id").(string)
	keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	if second == "" || len(keys) != 1 || path(keys[0], "id") != second {
		t.Fatalf("made again: generated %q beside %q, keys %v; want only the new one", second, first, keys)
	}
	a.must(200, "DELETE", "/v1/webhooks/deploy", nil)
	if keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any); len(keys) != 0 {
		t.Fatalf("keys left after the webhook's delete: %v", keys)
	}
}

// keyIDs lists the ids of every API key.
func keyIDs(a *testAPI) []string {
	a.t.Helper()
	var ids []string
	keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	for _, k := range keys {
		ids = append(ids, path(k, "id").(string))
	}
	return ids
}

// A delete of a webhook changed since the delete read it is refused (409)
// and leaves the webhook and the key it generated. Before, the keys went
// first and the delete then removed whatever version was there: a delete
// refused after the keys left the webhook in API-key auth with no key,
// which applying it again ("unchanged") does not generate.
func TestWebhooks_ARefusedDeleteLeavesTheGeneratedKey(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	spec := map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}}
	id, _ := path(a.must(201, "PUT", "/v1/webhooks/deploy", webhookDoc("deploy", spec)).JSON(), "generatedKey", "id").(string)
	disabled := maps.Clone(spec)
	disabled["disabled"] = true
	changed := 0
	a.svc.beforeWebhookDelete = func() { changed = a.do("PUT", "/v1/webhooks/deploy", webhookDoc("deploy", disabled)).Code }
	checkError(t, a.do("DELETE", "/v1/webhooks/deploy", nil), 409, "conflict", "")
	a.svc.beforeWebhookDelete = nil
	if changed != 200 {
		t.Fatalf("the change between the delete's read and its delete answered %d", changed)
	}
	if got := a.must(200, "GET", "/v1/webhooks/deploy", nil).JSON(); path(got, "spec", "disabled") != true {
		t.Fatalf("the webhook after a refused delete: %v", got)
	}
	if ids := keyIDs(a); !slices.Equal(ids, []string{id}) {
		t.Fatalf("keys after a refused delete: %q, want the webhook's %q", ids, id)
	}
	a.must(200, "DELETE", "/v1/webhooks/deploy", nil)
	if ids := keyIDs(a); len(ids) != 0 {
		t.Fatalf("keys after the delete: %q", ids)
	}
}

// A webhook deleted whose generated keys then cannot be is answered 200
// (it is gone: a retry would be 404) with a warning naming the keys left,
// which would work for a webhook given its name later.
func TestWebhooks_KeysLeftByADeleteAreNamedInAWarning(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	spec := map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}}
	id, _ := path(a.must(201, "PUT", "/v1/webhooks/deploy", webhookDoc("deploy", spec)).JSON(), "generatedKey", "id").(string)
	ctx := context.Background()
	a.svc.beforeWebhookDelete = func() {
		stream, err := a.js.Stream(ctx, "KV_"+bus.BucketKeys)
		if err != nil {
			t.Error(err)
			return
		}
		cfg := stream.CachedInfo().Config
		cfg.Sealed = true // key deletes fail from now on
		if _, err := a.js.UpdateStream(ctx, cfg); err != nil {
			t.Error(err)
		}
	}
	got := a.must(200, "DELETE", "/v1/webhooks/deploy", nil)
	a.svc.beforeWebhookDelete = nil
	warnings, _ := got.JSON()["warnings"].([]any)
	if len(warnings) != 1 || !strings.Contains(fmt.Sprint(warnings[0]), id) {
		t.Fatalf("delete answer %s: want a warning naming the key left, %s", got.Body, id)
	}
	a.must(404, "GET", "/v1/webhooks/deploy", nil)
}

// A webhook whose store fails (a time-out, after which it may be stored;
// here a sealed bucket, which answers alike) leaves no key generated for
// it: its secret was never answered, so kept it would be a key no sender
// holds.
func TestWebhooks_AKeyGeneratedForAFailedStoreIsDeleted(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	ctx := context.Background()
	stream, err := a.js.Stream(ctx, "KV_"+bus.BucketWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.Sealed = true
	if _, err := a.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	doc := webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
	checkError(t, a.do("PUT", "/v1/webhooks/deploy", doc), 503, "unavailable", "")
	keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
	if len(keys) != 0 {
		t.Fatalf("keys after a failed store: %v, want none", keys)
	}
}

// An API-key webhook no key can trigger (its generated key deleted) is
// applied with a warning saying so: applied again it is "unchanged", and
// its senders get 401 with no other sign.
func TestWebhooks_AnAPIKeyWebhookNoKeyCanTriggerIsWarnedOf(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/deploy", jobDoc("deploy", nil))
	doc := webhookDoc("deploy", map[string]any{"job": "deploy", "auth": map[string]any{"apiKey": map[string]any{}}})
	created := a.must(201, "PUT", "/v1/webhooks/deploy", doc)
	warned := func(ans answer) bool {
		ws, _ := ans.JSON()["warnings"].([]any)
		for _, w := range ws {
			if strings.Contains(fmt.Sprint(w), "no API key can trigger this webhook") {
				return true
			}
		}
		return false
	}
	if warned(created) {
		t.Fatalf("warned at creation, beside its generated key: %s", created.Body)
	}
	id, _ := path(created.JSON(), "generatedKey", "id").(string)
	a.must(200, "DELETE", "/v1/keys/"+id, nil)
	again := a.must(200, "PUT", "/v1/webhooks/deploy", doc)
	if again.Result() != ResultUnchanged || !warned(again) {
		t.Fatalf("applied again without a key: %s %s, want unchanged with the warning", again.Result(), again.Body)
	}
	a.must(201, "POST", "/v1/keys", map[string]any{"name": "other", "webhooks": []string{"deploy"}})
	if warned(a.must(200, "PUT", "/v1/webhooks/deploy", doc)) {
		t.Fatal("warned with a key scoped to it")
	}
}

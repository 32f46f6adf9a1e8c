package keys

import "testing"

// Jac Cloud: an API key's name "defaults to X-API-KEY" wherever it sits.
// A webhook stored when the query's and body's default was api_key keeps
// it when its document (naming none) is applied again: its senders send
// api_key.
func TestWebhooks_APIKeyNameDefaultsToXAPIKEYAndALegacyOneStays(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	for _, in := range []string{"query", "body", "header"} {
		doc := webhookDoc("fresh-"+in, map[string]any{"job": "report", "auth": map[string]any{"apiKey": map[string]any{"in": in}}})
		if n := path(a.must(201, "PUT", "/v1/webhooks/fresh-"+in, doc).JSON(), "spec", "auth", "apiKey", "name"); n != "X-API-KEY" {
			t.Fatalf("in %s: default name %v", in, n)
		}
	}

	legacy := func(name string) map[string]any {
		key := map[string]any{"in": "query"}
		if name != "" {
			key["name"] = name
		}
		return webhookDoc("legacy", map[string]any{"job": "report", "auth": map[string]any{"apiKey": key}})
	}
	a.must(201, "PUT", "/v1/webhooks/legacy", legacy("api_key")) // as stored before
	ans := a.must(200, "PUT", "/v1/webhooks/legacy", legacy(""))
	if n := path(ans.JSON(), "spec", "auth", "apiKey", "name"); n != "api_key" || ans.Result() != ResultUnchanged {
		t.Fatalf("the document applied again: name %v, result %s", n, ans.Result())
	}
	// Named, it is what it says.
	if n := path(a.must(200, "PUT", "/v1/webhooks/legacy", legacy("X-API-KEY")).JSON(), "spec", "auth", "apiKey", "name"); n != "X-API-KEY" {
		t.Fatalf("named X-API-KEY: %v", n)
	}
}

// A webhook whose auth becomes the secret URL alone gets a new URL: the
// old one was no secret while a key or a signature guarded it (every key
// holder, revoked ones too, knew it). Staying on the URL keeps it.
func TestWebhooks_BecomingSecretURLAuthMakesANewURL(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	keyed := webhookDoc("w", map[string]any{"job": "report", "auth": map[string]any{"apiKey": map[string]any{}}})
	first := path(a.must(201, "PUT", "/v1/webhooks/w", keyed).JSON(), "status", "endpointPath")
	open := webhookDoc("w", map[string]any{"job": "report", "auth": map[string]any{"none": map[string]any{}}})
	second := path(a.must(200, "PUT", "/v1/webhooks/w", open).JSON(), "status", "endpointPath")
	if second == first || second == nil {
		t.Fatalf("API key → secret URL kept the URL %v", first)
	}
	open["spec"].(map[string]any)["maxBodyBytes"] = 2048
	if third := path(a.must(200, "PUT", "/v1/webhooks/w", open).JSON(), "status", "endpointPath"); third != second {
		t.Fatalf("a change of a secret-URL webhook moved its URL: %v → %v", second, third)
	}
}

package ingress

import (
	"strings"
	"testing"

	"github.com/hookrun/hookrun/pkg/resource"
)

// TestTarget_ReadsHookURLsAsSendersWriteThem: a trailing slash (GitHub and
// Stripe senders add one) is absent, percent-encoded ids and keys are
// decoded once, and a URL with an empty or extra segment is a clean 404
// rather than a wrong key.
func TestTarget_ReadsHookURLsAsSendersWriteThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	open := e.webhook("open", resource.WebhookSpec{})
	pk := e.webhook("path-keyed", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}})
	encode := encodeUnderscore
	encEP := "/v1/hooks/" + encode(open.Status.EndpointID)

	for _, tt := range []struct {
		name, target string
		status       int
		code         string
	}{
		{"trailing slash", hookPath(open) + "/", 202, ""},
		{"trailing slash, no key", hookPath(pk) + "/", 401, "missing_credentials"},
		{"trailing slash after the key", hookPath(pk, key) + "/", 202, ""},
		{"encoded endpoint id", encEP, 202, ""},
		{"encoded endpoint id, lower-case hex", strings.Replace(encEP, "%5F", "%5f", 1), 202, ""},
		{"encoded endpoint id and trailing slash", encEP + "/", 202, ""},
		{"encoded key", hookPath(pk, encode(key)), 202, ""},
		{"encoded endpoint id and key", "/v1/hooks/" + encode(pk.Status.EndpointID) + "/" + encode(key) + "/", 202, ""},
		// Decoded once: %2565 is "%65" sent with its "%" encoded, not "e".
		{"no second decoding", "/v1/hooks/%2565" + open.Status.EndpointID[1:], 404, "endpoint_not_found"},
		{"encoded slash is no separator", hookPath(open) + "%2F", 404, "endpoint_not_found"},
		{"encoded slash in a key", hookPath(pk) + "/" + strings.Replace(key, "_", "%2F", 1), 401, "invalid_credentials"},
		{"two trailing slashes", hookPath(open) + "//", 404, "endpoint_not_found"},
		{"empty segment before the key", hookPath(pk) + "//" + key, 404, "endpoint_not_found"},
		{"segment after the key", hookPath(pk, key, "x"), 404, "endpoint_not_found"},
		{"empty endpoint id", "/v1/hooks//" + pk.Status.EndpointID, 404, "endpoint_not_found"},
		{"no endpoint id", "/v1/hooks/", 404, "endpoint_not_found"},
	} {
		r := e.raw("POST", tt.target, []byte("{}"))
		if tt.status == 202 {
			if r.Status != 202 || !r.Acc.Accepted {
				t.Errorf("%s: POST %s: %d %s, want 202", tt.name, tt.target, r.Status, r.Body)
			}
			continue
		}
		if r.Status != tt.status || r.Err.Code != tt.code {
			t.Errorf("%s: POST %s: %d %s, want %d %s", tt.name, tt.target, r.Status, r.Body, tt.status, tt.code)
		}
		if strings.Contains(string(r.Body), key) {
			t.Errorf("%s: the answer echoes the key: %s", tt.name, r.Body)
		}
	}
}

// TestTarget_ScrubsEncodedCredentialsFromStoredHeaders: a header that
// repeats the URL as sent (a proxy's X-Original-Url) holds the endpoint id
// and key percent-encoded; it is dropped from the stored delivery as one
// holding them decoded is.
func TestTarget_ScrubsEncodedCredentialsFromStoredHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	pk := e.webhook("path-keyed", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}})
	encEP, encKey := encodeUnderscore(pk.Status.EndpointID), encodeUnderscore(key)
	target := "/v1/hooks/" + encEP + "/" + encKey
	r := e.raw("POST", target, []byte("{}"), "X-Original-Url", target, "X-Original-Key", encKey, "X-Original-Endpoint", encEP, "X-Kept", "yes")
	if r.Status != 202 {
		t.Fatalf("POST %s: %d %s", target, r.Status, r.Body)
	}
	d := e.stored(r.Acc.DeliveryID)
	for _, h := range []string{"X-Original-Url", "X-Original-Key", "X-Original-Endpoint"} {
		if d.Header[h] != nil {
			t.Errorf("stored delivery keeps %s: %v", h, d.Header[h])
		}
	}
	if d.Header["X-Kept"] == nil {
		t.Errorf("stored headers %v, want X-Kept kept", d.Header)
	}
}

// encodeUnderscore percent-encodes the first "_" of s, as a sender's URL
// library might.
func encodeUnderscore(s string) string { return strings.Replace(s, "_", "%5F", 1) }

// TestParseTarget pins how the path after /v1/hooks/ splits, with and
// without the escapes that make Echo route on the raw path.
func TestParseTarget(t *testing.T) {
	for _, tt := range []struct {
		rest          string
		escaped       bool
		endpoint, key string
		ok            bool
	}{
		{rest: "ep_a", endpoint: "ep_a", ok: true},
		{rest: "ep_a/", endpoint: "ep_a", ok: true},
		{rest: "ep_a/hk_k", endpoint: "ep_a", key: "hk_k", ok: true},
		{rest: "ep_a/hk_k/", endpoint: "ep_a", key: "hk_k", ok: true},
		{rest: "ep%5Fa/hk%5fk", escaped: true, endpoint: "ep_a", key: "hk_k", ok: true},
		{rest: "ep%2Fa", escaped: true, endpoint: "ep/a", ok: true},
		{rest: "%41", endpoint: "%41", ok: true}, // Path, already decoded
		{rest: ""},
		{rest: "/"},
		{rest: "//"},
		{rest: "ep_a//"},
		{rest: "ep_a//hk_k"},
		{rest: "/ep_a"},
		{rest: "ep_a/hk_k/x"},
		{rest: "ep_a/hk_k//"},
		{rest: "ep%zz", escaped: true},
	} {
		got, ok := parseTarget(tt.rest, tt.escaped)
		if ok != tt.ok || got.endpoint != tt.endpoint || got.key != tt.key {
			t.Errorf("parseTarget(%q, %v) = %q %q %v, want %q %q %v", tt.rest, tt.escaped, got.endpoint, got.key, ok, tt.endpoint, tt.key, tt.ok)
		}
	}
}

// FuzzParseTarget: no panic; an accepted target has an endpoint id, and
// unescaped segments never hold a slash; decoded ones come from segments
// that held none either.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"ep_a", "ep_a/", "ep_a/hk_k", "ep%5Fa/hk%2Fk/", "//", "a/b/c", "%", "ep_a/%2e%2e"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, rest string, escaped bool) {
		got, ok := parseTarget(rest, escaped)
		if !ok {
			return
		}
		if got.endpoint == "" {
			t.Fatalf("%q: accepted without an endpoint id", rest)
		}
		raw := strings.TrimSuffix(rest, "/")
		if strings.Count(raw, "/") > 1 || strings.HasPrefix(raw, "/") || strings.HasSuffix(raw, "/") {
			t.Fatalf("%q: accepted with an empty or extra segment: %q %q", rest, got.endpoint, got.key)
		}
		if !escaped && (strings.Contains(got.endpoint, "/") || strings.Contains(got.key, "/")) {
			t.Fatalf("%q: a segment holds a slash: %q %q", rest, got.endpoint, got.key)
		}
	})
}

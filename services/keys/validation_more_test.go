package keys

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// fieldOf returns the field a validation error names ("" when err is not a FieldError).
func fieldOf(err error) string {
	var fe *resource.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// checkFieldError fails the test unless ans is a 400 naming field, with a
// message containing msg.
func checkFieldError(t *testing.T, ans answer, field, msg string) {
	t.Helper()
	checkError(t, ans, 400, "invalid_request", msg)
	if ans.ErrField() != field {
		t.Fatalf("error field %q, want %q: %s", ans.ErrField(), field, ans.Body)
	}
}

// reapply PUTs what GET answers for a resource, as `hookrun get -o yaml`
// then `hookrun apply` do, and returns the Hookrun-Result.
func (a *testAPI) reapply(path string) string {
	a.t.Helper()
	return a.must(200, "PUT", path, string(a.must(200, "GET", path, nil).Body)).Result()
}

// PUT with previousValidFor "0s" replaces a leaked value with no grace:
// the old value is refused at once (before, 0s was read as absent: 24h).
// Absent still means 24h, and both apply again unchanged.
func TestSecrets_ExplicitZeroGraceRevokesTheReplacedValue(t *testing.T) {
	a := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cat := catalog.New(a.js, a.box, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = cat.Run(ctx) }()
	<-cat.Ready()
	values := func(name string, want ...string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			vs, err := cat.SecretValues("default", name, time.Now())
			if err != nil {
				return err
			}
			if !slices.Equal(vs, want) {
				return errors.New("valid values " + strings.Join(vs, ",") + ", want " + strings.Join(want, ","))
			}
			return nil
		})
	}
	grace := func(name string) any {
		return path(a.must(200, "GET", "/v1/secrets/"+name, nil).JSON(), "spec", "previousValidFor")
	}

	a.must(201, "PUT", "/v1/secrets/leak", secretDoc("leak", map[string]any{"value": "leaked-value"}))
	if g := grace("leak"); g != "24h0m0s" {
		t.Fatalf("absent previousValidFor: GET shows %v, want the 24h default", g)
	}
	if r := a.reapply("/v1/secrets/leak"); r != ResultUnchanged {
		t.Fatalf("re-applying GET's secret with the default grace: %s", r)
	}
	a.must(200, "PUT", "/v1/secrets/leak", secretDoc("leak", map[string]any{"value": "new-value", "previousValidFor": "0s"}))
	if g := grace("leak"); g != "0s" {
		t.Fatalf("previousValidFor 0s: GET shows %v", g)
	}
	values("leak", "new-value")
	if r := a.reapply("/v1/secrets/leak"); r != ResultUnchanged {
		t.Fatalf("re-applying GET's secret with no grace: %s", r)
	}

	// Without the field again: a replaced value keeps the 24h default.
	before := time.Now()
	a.must(200, "PUT", "/v1/secrets/leak", secretDoc("leak", map[string]any{"value": "third-value"}))
	_, prev, exp := storedSecret(t, a, "leak")
	if !slices.Equal(prev, []string{"new-value"}) || exp[0].Before(before.Add(23*time.Hour)) {
		t.Fatalf("a replacement without previousValidFor: previous %q until %v, want 24h", prev, exp)
	}
	values("leak", "third-value", "new-value")

	// A rotation with a grace of 0s in its body works as before.
	a.must(200, "POST", "/v1/secrets/leak/rotate", map[string]any{"previousValidFor": "0s"})
	cur, _, _ := storedSecret(t, a, "leak")
	values("leak", cur)
}

// A signing secret the webhook's profile cannot use is refused when the
// webhook is applied, and so is a secret change (value or format) that a
// webhook using it could not: before, both were stored and every delivery
// failed 500 job_not_runnable.
func TestWebhooks_RefuseASigningSecretTheProfileCannotUse(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	signed := func(secret string) map[string]any {
		return map[string]any{"job": "report", "auth": map[string]any{"signature": map[string]any{"profile": "standard-webhooks", "secretRef": secret}}}
	}
	a.must(201, "PUT", "/v1/secrets/plain", secretDoc("plain", map[string]any{"value": "not-whsec"}))
	checkFieldError(t, a.do("PUT", "/v1/webhooks/clerk", webhookDoc("clerk", signed("plain"))),
		"spec.auth.signature.secretRef", `secret "plain" is not a valid standard-webhooks secret`)
	// A profile without a format takes it.
	a.must(201, "PUT", "/v1/webhooks/gh", webhookDoc("gh", map[string]any{"job": "report", "auth": map[string]any{"signature": map[string]any{"profile": "github", "secretRef": "plain"}}}))

	// Only the format changed, over a value that is not in it.
	checkFieldError(t, a.do("PUT", "/v1/secrets/plain", secretDoc("plain", map[string]any{"format": "standard-webhooks"})),
		"spec.format", "not a valid standard-webhooks secret")

	ans := a.must(201, "PUT", "/v1/secrets/sw", secretDoc("sw", map[string]any{"format": "standard-webhooks"}))
	generated, _ := ans.JSON()["generatedValue"].(string)
	a.must(201, "PUT", "/v1/webhooks/clerk", webhookDoc("clerk", signed("sw")))
	// The webhook's profile refuses the new value, whatever the secret's format says.
	ans = a.do("PUT", "/v1/secrets/sw", secretDoc("sw", map[string]any{"value": "not-whsec"}))
	checkFieldError(t, ans, "spec.value", `webhook "clerk" verifies standard-webhooks signatures with this secret`)
	if strings.Contains(string(ans.Body), "not-whsec") {
		t.Fatalf("the error echoed the value: %s", ans.Body)
	}
	if cur, _, _ := storedSecret(t, a, "sw"); cur != generated {
		t.Fatal("the refused value was stored")
	}
	// What the profile can use still goes through, as does a rotation.
	a.must(200, "PUT", "/v1/secrets/sw", secretDoc("sw", map[string]any{"value": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
	a.must(200, "POST", "/v1/secrets/sw/rotate", nil)
}

// An unknown field is a FieldError naming its path, as every other
// validation error does: "spec.auth.none.x", not just "x". (A YAML
// manifest reaches the API as the same JSON: `hookrun apply` converts it.)
func TestAPI_UnknownFieldNamesItsPath(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	cases := []struct {
		name, path string
		body       any
		field      string
	}{
		{"in an empty object", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "report", "auth": map[string]any{"none": map[string]any{"x": 1}}}), "spec.auth.none.x"},
		{"in the spec", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "report", "auht": map[string]any{}}), "spec.auht"},
		{"in a list entry", "/v1/jobs/j", jobDoc("j", map[string]any{"command": []string{"x"}, "args": []any{map[string]any{"name": "a", "defualt": "b"}}}), "spec.args[0].defualt"},
		{"at the top", "/v1/secrets/s", map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Secret", "metadata": map[string]any{"name": "s"}, "spec": map[string]any{}, "extra": true}, "extra"},
		{"in a rotation's body", "/v1/secrets/s/rotate", map[string]any{"grace": "1s"}, "grace"},
	}
	a.must(201, "PUT", "/v1/secrets/s", secretDoc("s", nil))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "PUT"
			if strings.HasSuffix(tc.path, "/rotate") {
				method = "POST"
			}
			key := tc.field[strings.LastIndexAny(tc.field, ".")+1:]
			checkFieldError(t, a.do(method, tc.path, tc.body), tc.field, tc.field+`: unknown field "`+key+`"`)
		})
	}
}

// What validation refuses answers 400 naming the field, through the API.
func TestAPI_RefusesSpecsThatCannotWork(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	cases := []struct {
		name, path string
		body       any
		field      string
	}{
		{"negative retry backoff", "/v1/jobs/j", jobDoc("j", map[string]any{"command": []string{"x"}, "retryBackoff": "-5s"}), "spec.retryBackoff"},
		{"retry backoff of a century", "/v1/jobs/j", jobDoc("j", map[string]any{"command": []string{"x"}, "retryBackoff": "1000000h"}), "spec.retryBackoff"},
		{"timeout of a nanosecond", "/v1/jobs/j", jobDoc("j", map[string]any{"command": []string{"x"}, "timeout": "1ns"}), "spec.timeout"},
		{"a method twice", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "report", "methods": []string{"POST", "post"}}), "spec.methods[1]"},
		{"header name with a colon", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "report", "auth": map[string]any{"apiKey": map[string]any{"in": "header", "name": "X:Bad"}}}), "spec.auth.apiKey.name"},
		{"query name with a control character", "/v1/webhooks/w", webhookDoc("w", map[string]any{"job": "report", "auth": map[string]any{"apiKey": map[string]any{"in": "query", "name": "k\x01"}}}), "spec.auth.apiKey.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkFieldError(t, a.do("PUT", tc.path, tc.body), tc.field, tc.field+":")
		})
	}
	for _, p := range []string{"/v1/jobs/j", "/v1/webhooks/w"} {
		checkError(t, a.do("GET", p, nil), 404, "not_found", "")
	}
}

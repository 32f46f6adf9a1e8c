package keys

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// rawBucket returns every value in a KV bucket as stored.
func rawBucket(t *testing.T, a *testAPI, bucket string) string {
	t.Helper()
	ctx := context.Background()
	kv, err := a.js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString(k + "=" + string(e.Value()) + "\n")
	}
	return all.String()
}

func TestSecrets_NeverReturnedNorLoggedAndEncryptedAtRest(t *testing.T) {
	a := newTestAPI(t)
	const value = "plaintext-signing-secret-4b1d"
	ans := a.must(201, "PUT", "/v1/secrets/gh", secretDoc("gh", map[string]any{"value": value}))
	if strings.Contains(string(ans.Body), value) || ans.JSON()["generatedValue"] != nil {
		t.Fatalf("PUT echoed the given value: %s", ans.Body)
	}
	if path(ans.JSON(), "status", "version") != 1.0 {
		t.Fatalf("version: %s", ans.Body)
	}
	for _, p := range []string{"/v1/secrets/gh", "/v1/secrets"} {
		if b := a.must(200, "GET", p, nil).Body; strings.Contains(string(b), value) || strings.Contains(string(b), `"value"`) {
			t.Fatalf("GET %s returned the value: %s", p, b)
		}
	}
	// Replace it, then read the raw bucket: neither value is there in plaintext.
	const next = "the-next-signing-secret-77aa"
	a.must(200, "PUT", "/v1/secrets/gh", secretDoc("gh", map[string]any{"value": next}))
	raw := rawBucket(t, a, bus.BucketSecrets)
	if !strings.Contains(raw, "default.gh=") {
		t.Fatalf("secret not stored: %s", raw)
	}
	for _, v := range []string{value, next, hex.EncodeToString([]byte(value))} {
		if strings.Contains(raw, v) {
			t.Fatalf("the secrets bucket holds a value in plaintext: %s", raw)
		}
	}
	if logs := a.logs.String(); strings.Contains(logs, value) || strings.Contains(logs, next) {
		t.Fatalf("a secret reached the logs: %s", logs)
	}
	a.must(200, "DELETE", "/v1/secrets/gh", nil)
	checkError(t, a.do("GET", "/v1/secrets/gh", nil), 404, "not_found", "secret default/gh")
	checkError(t, a.do("DELETE", "/v1/secrets/gh", nil), 404, "not_found", "")
}

func TestSecrets_GeneratedInTheProviderFormatAndShownOnce(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		format string
		check  func(string) bool
	}{
		{"", func(v string) bool { _, err := hex.DecodeString(v); return err == nil && len(v) == 64 }},
		{"hex", func(v string) bool { return len(v) == 64 }},
		{"standard-webhooks", func(v string) bool { return strings.HasPrefix(v, "whsec_") }},
		{"github", func(v string) bool { return len(v) >= 32 }},
	}
	for i, tc := range cases {
		name := "gen-" + string(rune('a'+i))
		ans := a.must(201, "PUT", "/v1/secrets/"+name, secretDoc(name, map[string]any{"format": tc.format}))
		v, _ := ans.JSON()["generatedValue"].(string)
		if !tc.check(v) {
			t.Fatalf("format %q: generated %q", tc.format, v)
		}
		// Applying the same document again neither rotates nor shows it.
		again := a.must(200, "PUT", "/v1/secrets/"+name, secretDoc(name, map[string]any{"format": tc.format}))
		if again.Result() != ResultUnchanged || again.JSON()["generatedValue"] != nil {
			t.Fatalf("format %q re-applied: %s %s", tc.format, again.Result(), again.Body)
		}
		if strings.Contains(rawBucket(t, a, bus.BucketSecrets), v) {
			t.Fatal("generated value stored in plaintext")
		}
	}
	// An explicit rotation generates and shows a new value.
	first := a.must(200, "POST", "/v1/secrets/gen-c/rotate", nil).JSON()
	if v, _ := first["generatedValue"].(string); !strings.HasPrefix(v, "whsec_") || path(first, "status", "version") != 2.0 {
		t.Fatalf("rotate: %v", first)
	}
	checkError(t, a.do("POST", "/v1/secrets/nope/rotate", nil), 404, "not_found", "")
}

func TestSecrets_RefuseInvalidInput(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		name string
		spec map[string]any
		msg  string
	}{
		{"unknown format", map[string]any{"format": "base58"}, "spec.format: must be hex or a signature profile"},
		{"value not in the profile's format", map[string]any{"format": "standard-webhooks", "value": "not-whsec"}, "spec.value: not a valid standard-webhooks secret"},
		{"negative grace", map[string]any{"previousValidFor": "-1h"}, "spec.previousValidFor"},
		{"grace not a duration", map[string]any{"previousValidFor": "a day"}, "spec.previousValidFor: must be a duration"},
		{"huge value", map[string]any{"value": strings.Repeat("x", 5000)}, "spec.value: must be at most 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.do("PUT", "/v1/secrets/s", secretDoc("s", tc.spec))
			checkError(t, ans, 400, "invalid_request", tc.msg)
			if v, _ := tc.spec["value"].(string); v != "" && strings.Contains(string(ans.Body), v) {
				t.Fatalf("the error echoed the value: %s", ans.Body)
			}
		})
	}
}

// Replacing a secret keeps the previous value valid for previousValidFor,
// as the ingress sees it through the catalog.
func TestSecrets_ReplacementKeepsThePreviousValueForItsGrace(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/secrets/rot", secretDoc("rot", map[string]any{"value": "old-value", "previousValidFor": "1h"}))
	ans := a.must(200, "PUT", "/v1/secrets/rot", secretDoc("rot", map[string]any{"value": "new-value", "previousValidFor": "1h"}))
	st := path(ans.JSON(), "status")
	if ans.Result() != ResultConfigured || path(st, "version") != 2.0 || path(st, "rotatedAt") == nil || path(st, "previousExpiresAt") == nil {
		t.Fatalf("replace: %s %s", ans.Result(), ans.Body)
	}
	if r := a.must(200, "PUT", "/v1/secrets/rot", secretDoc("rot", map[string]any{"value": "new-value", "previousValidFor": "1h"})).Result(); r != ResultUnchanged {
		t.Fatalf("same value again: %q", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cat := catalog.New(a.js, a.box, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = cat.Run(ctx) }()
	<-cat.Ready()
	now := time.Now()
	testenv.Eventually(t, 5*time.Second, func() error {
		vs, err := cat.SecretValues("default", "rot", now)
		if err != nil {
			return err
		}
		if !slices.Equal(vs, []string{"new-value", "old-value"}) {
			return fmt.Errorf("within the grace: %q", vs)
		}
		return nil
	})
	vs, _ := cat.SecretValues("default", "rot", now.Add(61*time.Minute))
	if !slices.Equal(vs, []string{"new-value"}) {
		t.Fatalf("after the grace: %q", vs)
	}
}

// storedSecret reads a secret's record from the bucket and opens its
// values: the current one, then every previous one with its expiry.
func storedSecret(t *testing.T, a *testAPI, name string) (current string, previous []string, expires []time.Time) {
	t.Helper()
	key := bus.ConfigKey("default", name)
	st, _, found, err := a.svc.secrets.get(context.Background(), key)
	if err != nil || !found {
		t.Fatalf("secret %s: %v %v", name, found, err)
	}
	open := func(sealed []byte) string {
		v, err := a.box.Open(sealed, []byte(key))
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		return string(v)
	}
	for _, p := range st.PreviousValues() {
		previous, expires = append(previous, open(p.Value)), append(expires, p.ExpiresAt)
	}
	return open(st.Current), previous, expires
}

// TestSecrets_EveryReplacedValueKeepsItsOwnGrace: replacing a secret twice
// within previousValidFor keeps both replaced values, each until its own
// expiry; the value replaced last stays where records of earlier releases
// keep it, so their readers (the catalog) still find it.
func TestSecrets_EveryReplacedValueKeepsItsOwnGrace(t *testing.T) {
	a := newTestAPI(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	at := t0
	a.svc.now = func() time.Time { return at }
	put := func(value, grace string) answer {
		return a.must(map[bool]int{true: 201, false: 200}[value == "v1"], "PUT", "/v1/secrets/rot",
			secretDoc("rot", map[string]any{"value": value, "previousValidFor": grace}))
	}
	put("v1", "1h")
	at = t0.Add(10 * time.Minute)
	put("v2", "1h")
	at = t0.Add(20 * time.Minute)
	ans := put("v3", "1h")
	if got := parseTime(t, path(ans.JSON(), "status", "previousExpiresAt")); !got.Equal(t0.Add(80 * time.Minute)) {
		t.Fatalf("status.previousExpiresAt %v, want the last replaced value's", got)
	}
	cur, prev, exp := storedSecret(t, a, "rot")
	if cur != "v3" || !slices.Equal(prev, []string{"v2", "v1"}) ||
		!exp[0].Equal(t0.Add(80*time.Minute)) || !exp[1].Equal(t0.Add(70*time.Minute)) {
		t.Fatalf("after two replacements: current %q, previous %q until %v", cur, prev, exp)
	}

	// The catalog (the ingress' reader) gives every value still in its
	// grace, newest first; at 75 minutes v1's has ended.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cat := catalog.New(a.js, a.box, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = cat.Run(ctx) }()
	<-cat.Ready()
	if vs, err := cat.SecretValues("default", "rot", t0.Add(30*time.Minute)); err != nil || !slices.Equal(vs, []string{"v3", "v2", "v1"}) {
		t.Fatalf("catalog: %q %v", vs, err)
	}
	if vs, err := cat.SecretValues("default", "rot", t0.Add(75*time.Minute)); err != nil || !slices.Equal(vs, []string{"v3", "v2"}) {
		t.Fatalf("catalog after the first value's grace: %q %v", vs, err)
	}

	// Expired values are dropped at the next replacement.
	at = t0.Add(75 * time.Minute)
	put("v4", "1h")
	if _, prev, _ := storedSecret(t, a, "rot"); !slices.Equal(prev, []string{"v3", "v2"}) {
		t.Fatalf("after v1's grace: previous %q", prev)
	}
	// A short grace (the leak procedure) cuts every previous value's short.
	at = t0.Add(76 * time.Minute)
	put("v5", "1s")
	_, prev, exp = storedSecret(t, a, "rot")
	for i := range exp {
		if exp[i].After(at.Add(time.Second)) {
			t.Fatalf("after a 1s rotation %q is valid until %v", prev[i], exp[i])
		}
	}
	// At most MaxPreviousValues are kept.
	for i := 6; i < 14; i++ {
		at = at.Add(time.Minute)
		put(fmt.Sprint("v", i), "1h")
	}
	if _, prev, _ := storedSecret(t, a, "rot"); !slices.Equal(prev, []string{"v12", "v11", "v10", "v9", "v8"}) {
		t.Fatalf("after many replacements: previous %q", prev)
	}
}

// TestSecrets_ReplacingARecordOfTheCurrentReleaseKeepsItsPreviousValue: a
// record written before secrets kept several previous values (one previous
// value, no "earlier") is read as it is and its previous value carried on.
func TestSecrets_ReplacingARecordOfTheCurrentReleaseKeepsItsPreviousValue(t *testing.T) {
	a := newTestAPI(t)
	now := time.Now().UTC()
	key := bus.ConfigKey("default", "legacy")
	exp := now.Add(30 * time.Minute).Format(time.RFC3339Nano)
	seal := func(v string) string {
		b, _ := json.Marshal(a.box.Seal([]byte(v), []byte(key)))
		return string(b)
	}
	record := `{"secret":{"apiVersion":"hookrun.dev/v1","kind":"Secret","metadata":{"name":"legacy","namespace":"default","uid":"u1","generation":2},` +
		`"spec":{"previousValidFor":"1h0m0s"},"status":{"version":2,"previousExpiresAt":"` + exp + `"}},` +
		`"current":` + seal("b") + `,"previous":` + seal("a") + `,"previousExpiresAt":"` + exp + `"}`
	kv, err := a.js.KeyValue(context.Background(), bus.BucketSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), key, []byte(record)); err != nil {
		t.Fatal(err)
	}
	if cur, prev, _ := storedSecret(t, a, "legacy"); cur != "b" || !slices.Equal(prev, []string{"a"}) {
		t.Fatalf("legacy record read as current %q, previous %q", cur, prev)
	}
	a.must(200, "PUT", "/v1/secrets/legacy", secretDoc("legacy", map[string]any{"value": "c", "previousValidFor": "1h"}))
	cur, prev, exps := storedSecret(t, a, "legacy")
	if cur != "c" || !slices.Equal(prev, []string{"b", "a"}) || exps[1].Format(time.RFC3339Nano) != exp {
		t.Fatalf("after replacing it: current %q, previous %q until %v", cur, prev, exps)
	}
}

// POST /v1/secrets/{name}/rotate takes this rotation's grace in its body
// (after a leak: {"previousValidFor": "1s"}), leaving the spec's for the
// next rotation; without a body the spec's applies. Before, the body was
// never read: the old value stayed valid for the spec's 24 h.
func TestSecrets_RotateTakesItsGraceFromTheBody(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/secrets/leak", secretDoc("leak", map[string]any{"value": "leaked-value"}))
	before := time.Now()
	ans := a.must(200, "POST", "/v1/secrets/leak/rotate", map[string]any{"previousValidFor": "1s"})
	if _, err := time.Parse(time.RFC3339Nano, path(ans.JSON(), "status", "previousExpiresAt").(string)); err != nil {
		t.Fatalf("rotate: %s", ans.Body)
	}
	_, previous, expires := storedSecret(t, a, "leak")
	if !slices.Equal(previous, []string{"leaked-value"}) || len(expires) != 1 || expires[0].After(before.Add(5*time.Second)) {
		t.Fatalf("after a rotation with 1s of grace: previous %q until %v", previous, expires)
	}
	if g := path(a.must(200, "GET", "/v1/secrets/leak", nil).JSON(), "spec", "previousValidFor"); g != "24h0m0s" && g != "24h" {
		t.Fatalf("the spec's grace after the rotation: %v, want the 24h default kept", g)
	}
	// Without a body: the spec's 24 h.
	a.must(200, "POST", "/v1/secrets/leak/rotate", nil)
	_, _, expires = storedSecret(t, a, "leak")
	if len(expires) == 0 || expires[0].Before(before.Add(23*time.Hour)) {
		t.Fatalf("a rotation without a body: previous values until %v, want the spec's 24h", expires)
	}
	for _, bad := range []any{map[string]any{"previousValidFor": "-1s"}, map[string]any{"previousValidFor": "soon"}, map[string]any{"grace": "1s"}} {
		a.must(400, "POST", "/v1/secrets/leak/rotate", bad)
	}
}

// A rotation is of the secret it read, stored only over it: one deleted
// between its read and its write stays deleted. Read again before the
// write, it was made anew (201 created, version 1).
func TestSecrets_RotateDoesNotMakeASecretDeletedMeanwhileAgain(t *testing.T) {
	a := newTestAPI(t)
	a.must(201, "PUT", "/v1/secrets/gone", secretDoc("gone", map[string]any{"value": "first-value"}))
	deleted := 0
	a.svc.beforeRotateStore = func() { deleted = a.do("DELETE", "/v1/secrets/gone", nil).Code }
	ans := a.do("POST", "/v1/secrets/gone/rotate", nil)
	if deleted != 200 {
		t.Fatalf("the delete between the rotation's read and write answered %d", deleted)
	}
	if ans.Code != 404 && ans.Code != 409 {
		t.Fatalf("a rotation of a secret deleted meanwhile answered %d %s, want 404 or 409", ans.Code, ans.Body)
	}
	checkError(t, a.do("GET", "/v1/secrets/gone", nil), 404, "not_found", "")
}

// Applying a secret again with its value and a lower previousValidFor (0s
// once a replaced value leaked) holds for the values already in their
// grace, as a rotation with that grace does: they kept their expiry, a
// day away.
func TestSecrets_LoweringTheGraceShortensTheReplacedValues(t *testing.T) {
	a := newTestAPI(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	at := t0
	a.svc.now = func() time.Time { return at }
	a.must(201, "PUT", "/v1/secrets/leak", secretDoc("leak", map[string]any{"value": "leaked-value", "previousValidFor": "24h"}))
	cur, _ := a.must(200, "POST", "/v1/secrets/leak/rotate", nil).JSON()["generatedValue"].(string)
	if _, prev, exp := storedSecret(t, a, "leak"); !slices.Equal(prev, []string{"leaked-value"}) || !exp[0].Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("after the rotation: previous %q until %v", prev, exp)
	}
	for _, tc := range []struct {
		grace string
		want  []string // previous values still valid
		until time.Time
	}{
		{"1h", []string{"leaked-value"}, t0.Add(time.Minute + time.Hour)},
		{"0s", nil, t0.Add(2 * time.Minute)},
	} {
		at = at.Add(time.Minute)
		ans := a.must(200, "PUT", "/v1/secrets/leak", secretDoc("leak", map[string]any{"value": cur, "previousValidFor": tc.grace}))
		if got := parseTime(t, path(ans.JSON(), "status", "previousExpiresAt")); ans.Result() != ResultConfigured || !got.Equal(tc.until) {
			t.Fatalf("previousValidFor %s: %s, status.previousExpiresAt %v, want %v", tc.grace, ans.Result(), got, tc.until)
		}
		c, prev, exp := storedSecret(t, a, "leak")
		if c != cur || !slices.Equal(prev, tc.want) || len(exp) > 0 && !exp[0].Equal(tc.until) {
			t.Fatalf("previousValidFor %s: current changed (%v), previous %q until %v; want %q until %v", tc.grace, c != cur, prev, exp, tc.want, tc.until)
		}
	}
}

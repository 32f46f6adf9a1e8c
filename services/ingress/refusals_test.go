package ingress

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

// refusalLines returns the "delivery refused" lines logged so far.
func refusalLines(t *testing.T, e *env) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "delivery refused" {
			out = append(out, m)
		}
	}
	return out
}

// Jac Cloud's troubleshooting says to check the logs: a refused delivery
// is logged with its webhook, code and message (a wrong key at WARN), never
// with its URL or key, and a sender retrying with the same fault gets one
// line per window, the others counted in the next.
func TestDeliver_RefusalsAreLoggedAFewAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	w := e.webhook("keyed", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	wrong := key[:len(key)-4] + "AAAA"
	now := time.Now()
	e.in.refusals.now = func() time.Time { return now }

	for range 5 {
		wantError(t, e.post(hookPath(w), `{}`, "X-API-KEY", wrong), 401, "invalid_credentials")
	}
	wantError(t, e.post("/v1/hooks/ep_"+strings.Repeat("a", 32), `{}`), 404, "endpoint_not_found")
	lines := refusalLines(t, e)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per webhook and code: %v", len(lines), lines)
	}
	first := lines[0]
	if first["level"] != "WARN" || first["webhook"] != "default/keyed" || first["code"] != "invalid_credentials" || first["status"] != float64(401) || first["source_ip"] == "" {
		t.Fatalf("the wrong key's line: %v", first)
	}
	if lines[1]["level"] != "INFO" || lines[1]["code"] != "endpoint_not_found" {
		t.Fatalf("the unknown endpoint's line: %v", lines[1])
	}
	logs := e.logs.String()
	for _, secret := range []string{wrong, key, w.Status.EndpointID} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a credential (%.12s…) is in the log:\n%s", secret, logs)
		}
	}

	now = now.Add(refusalLogEvery)
	wantError(t, e.post(hookPath(w), `{}`, "X-API-KEY", wrong), 401, "invalid_credentials")
	lines = refusalLines(t, e)
	if len(lines) != 3 || lines[2]["suppressed"] != float64(4) {
		t.Fatalf("after the window: %v", lines)
	}
}

// Once the table of recent lines is full, new webhooks and kinds share one
// line per window instead of each being logged: a flood is when it fills.
func TestRefusalLog_AFullTableSharesOneLine(t *testing.T) {
	r := newRefusalLog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now()
	r.now = func() time.Time { return now }
	for i := range maxRefusalKeys {
		if _, ok := r.due(fmt.Sprint("ns/w", i), "publish_failed"); !ok {
			t.Fatalf("line %d not due", i)
		}
	}
	if _, ok := r.due("ns/new-1", "publish_failed"); !ok {
		t.Fatal("the first line past a full table was not logged")
	}
	for i := range 5 {
		if _, ok := r.due(fmt.Sprint("ns/new-x", i), "not_connected"); ok {
			t.Fatalf("line %d past a full table logged on its own", i)
		}
	}
	now = now.Add(refusalLogEvery) // the table empties of old lines
	if _, ok := r.due("ns/new-2", "publish_failed"); !ok {
		t.Fatal("after the window a line was not due")
	}
}

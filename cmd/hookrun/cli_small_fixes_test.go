package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

// An empty argument (a shell variable that is not set: `get run "$RUN"`) is
// a usage error before any request: it used to read as no name, so get
// listed every run and exited 0, and send asked for webhook "" and reported
// it not found.
func TestCLI_EmptyArgumentIsAUsageError(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	// An API that answers every request with a success, as a list of runs:
	// whatever reaches it passes for an answer.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Method+" "+r.URL.Path)
		mu.Unlock()
		writeJSON(w, 200, map[string]any{"runs": []map[string]string{{"id": "run_a", "status": "succeeded"}}, "items": []any{}})
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{
		{"get", "run", ""},
		{"get", "webhook", ""},
		{"get", "", "x"},
		{"describe", "webhook", ""},
		{"delete", "job", ""},
		{"delete", "job", "a", ""},
		{"rotate-endpoint", ""},
		{"rotate-secret", ""},
		{"runs", "watch", "", "--timeout", "5s"},
		{"runs", "cancel", ""},
		{"replay", ""},
		{"send", "", "-d", "{}"},
		{"keys", "delete", ""},
	} {
		t.Run(fmt.Sprintf("%q", args), func(t *testing.T) {
			r := runCLI(append(args, "--api-url", srv.URL, "--ingress", srv.URL, "--token", "tok")...)
			mu.Lock()
			sent := asked
			asked = nil
			mu.Unlock()
			if r.Code != codeUsage || !strings.Contains(r.Stderr, "is empty") || len(sent) > 0 {
				t.Fatalf("want exit %d saying the argument is empty, before any request; asked %v, got %s", codeUsage, sent, r)
			}
		})
	}
}

// Only an answer that means "retry later" exits 5: a 500 with the
// service's own error code (job_not_runnable: the webhook's job or secret
// is missing) fails the same way until the configuration is fixed, so it
// is an error (1), which scripts that retry on 5 do not retry.
func TestAnswerError_OnlyRetryableAnswersAreUnavailable(t *testing.T) {
	notRunnable := []byte(`{"error":{"code":"job_not_runnable","message":"the webhook cannot run"}}`)
	for _, tc := range []struct {
		status int
		body   []byte
		code   int
	}{
		{500, notRunnable, codeError},
		{500, []byte(`{"error":{"code":"internal","message":"internal error"}}`), codeError},
		{500, []byte("<html>proxy error</html>"), codeUnavailable},
		{500, nil, codeUnavailable},
		{502, []byte("<html>bad gateway</html>"), codeUnavailable},
		{503, []byte(`{"error":{"code":"unavailable","message":"retry later"}}`), codeUnavailable},
		{504, nil, codeUnavailable},
	} {
		if err := answerError(tc.status, http.StatusText(tc.status), tc.body); exitCode(err) != tc.code {
			t.Errorf("%d %s: exit %d (%v), want %d", tc.status, tc.body, exitCode(err), err, tc.code)
		}
	}
}

func TestCLI_SendToAWebhookThatCannotRunIsNotUnavailable(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/webhooks/{name}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"metadata": map[string]string{"name": r.PathValue("name"), "namespace": "default"},
			"spec":     map[string]any{"job": "gone", "methods": []string{"POST"}},
			"status":   map[string]string{"endpointPath": "/v1/hooks/ep_1"},
		})
	})
	mux.HandleFunc("POST /v1/hooks/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, map[string]any{"error": map[string]string{"code": "job_not_runnable", "message": "webhook task creation failed: the webhook cannot run"}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := runCLI("send", "tickets", "-d", "{}", "--api-url", srv.URL, "--ingress", srv.URL, "--token", "tok")
	if r.Code != codeError || !strings.Contains(r.Stderr, "job_not_runnable") {
		t.Fatalf("want exit %d naming job_not_runnable, got %s", codeError, r)
	}

	// An ingress that does not answer at all is unavailable.
	srv.Close()
	r = runCLI("send", "tickets", "-d", "{}", "--api-url", srv.URL, "--ingress", srv.URL, "--token", "tok")
	if r.Code != codeUnavailable {
		t.Fatalf("no answer: want exit %d, got %s", codeUnavailable, r)
	}
}

// The webhooks table shows how long ago the last error was, as describe
// does: an error long past, kept in the status, must not read as the
// webhook's state now. A long error is cut, not its age.
func TestGetWebhooks_LastErrorShowsItsAge(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	fourMin := now.Add(-4 * time.Minute)
	longAgo := now.Add(-9 * 24 * time.Hour)
	hook := func(name, lastErr string, at *time.Time) json.RawMessage {
		w := resource.Webhook{Spec: resource.WebhookSpec{Job: "j", Methods: []string{"POST"}}}
		w.Metadata.Name = name
		w.Status = resource.WebhookStatus{LastError: lastErr, LastErrorAt: at}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var out bytes.Buffer
	g := getter{o: &clientOptions{ingressURL: defaultIngressURL}, out: &out, format: outTable, now: now}
	err := g.table("webhooks", []json.RawMessage{
		hook("recent", "job default/triage not found", &fourMin),
		hook("old", strings.Repeat("secret default/gh is missing ", 4), &longAgo),
		hook("fine", "", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ row, cell string }{
		{"recent", "job default/triage not found (4m ago)"},
		{"old", "… (9d ago)"},
	} {
		if l := lineWith(out.String(), want.row+" "); !strings.HasSuffix(strings.TrimSpace(l), want.cell) {
			t.Errorf("row %s: %q, want its LAST ERROR to end %q\n%s", want.row, l, want.cell, out.String())
		}
	}
	if l := lineWith(out.String(), "fine "); !strings.HasSuffix(strings.TrimSpace(l), " -") {
		t.Errorf("a webhook without an error: %q", l)
	}
}

// Relative times are rounded to the nearest unit, not cut: a 72h grace read
// a moment after it began is "in 3d" (it was "in 2d"), and a value that
// rounds up to the next unit shows in that unit.
func TestShortDur_RoundsToTheNearestUnit(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1400 * time.Millisecond, "1s"},
		{1500 * time.Millisecond, "2s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 400*time.Millisecond, "59s"},
		{59*time.Second + 700*time.Millisecond, "1m"},
		{5*time.Minute - 3*time.Second, "5m"},
		{3*time.Minute + 29*time.Second, "3m"},
		{3*time.Minute + 30*time.Second, "4m"},
		{59*time.Minute + 50*time.Second, "1h"},
		{12*time.Hour - 3*time.Second, "12h"},
		{47*time.Hour + 40*time.Minute, "2d"},
		{72*time.Hour - 3*time.Second, "3d"},
		{60*24*time.Hour - 3*time.Second, "60d"},
		{-(72*time.Hour - 3*time.Second), "3d"},
	} {
		if got := shortDur(tc.d); got != tc.want {
			t.Errorf("shortDur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	// Both directions read right: "in" for what comes, "ago" for what was.
	grace := now.Add(72*time.Hour - 3*time.Second)
	if got := untilText(&grace, now); got != "in 3d" {
		t.Errorf("a 72h grace read 3s later: %q, want \"in 3d\"", got)
	}
	key := now.Add(60*24*time.Hour - 2*time.Second)
	if got := untilText(&key, now); got != "in 60d" {
		t.Errorf("a 60-day key: %q, want \"in 60d\"", got)
	}
	was := now.Add(-(5*time.Minute - time.Second))
	if got := agoText(&was, now); got != "5m ago" {
		t.Errorf("4m59s ago: %q, want \"5m ago\"", got)
	}
	for _, at := range []time.Time{now, now.Add(-time.Second)} {
		if got := untilText(&at, now); got != "expired" {
			t.Errorf("untilText(%v) = %q, want expired", at.Sub(now), got)
		}
	}
}

// The root help names HOOKRUN_INGRESS_URL beside HOOKRUN_API_URL: send and
// endpoint URLs read it, and hookrun dev's export line sets it.
func TestCLI_RootHelpNamesTheIngressURLVariable(t *testing.T) {
	r := runCLI("--help")
	if r.Code != codeOK || !strings.Contains(r.Stdout, "HOOKRUN_API_URL (default "+defaultAPIURL+")") ||
		!strings.Contains(r.Stdout, "HOOKRUN_INGRESS_URL (default "+defaultIngressURL+")") {
		t.Fatalf("want both URL variables with their defaults in the help, got %s", r)
	}
}

// A count of one is singular: "would replay 1 delivery", not "1
// deliveries"; the refused count agrees with its verb.
func TestCLI_CountsOfOneAreSingular(t *testing.T) {
	var runs []map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"runs": runs})
	})
	mux.HandleFunc("POST /v1/deliveries/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.PathValue("id"), "dlv_refused") {
			writeJSON(w, 409, map[string]any{"error": map[string]string{"code": "webhook_disabled", "message": "the webhook is disabled"}})
			return
		}
		writeJSON(w, 202, map[string]any{"replayOf": r.PathValue("id"), "deliveryId": "dlv_new", "executionId": "run_new", "status": "queued"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	failed := func(n int, delivery string) []map[string]any {
		var l []map[string]any
		for i := range n {
			l = append(l, map[string]any{"id": fmt.Sprintf("run_%d", i), "webhook": "w", "status": "failed",
				"deliveryId": fmt.Sprintf("%s%d", delivery, i), "webhook_event_id": fmt.Sprintf("evt_%d", i),
				"queuedAt": time.Now().Add(-time.Duration(i+1) * time.Minute)})
		}
		return l
	}
	for _, tc := range []struct {
		runs   []map[string]any
		args   []string
		stdout string // the last line
		stderr string
	}{
		{failed(1, "dlv_"), []string{"--dry-run"}, "would replay 1 delivery (--dry-run: none replayed)", ""},
		{failed(2, "dlv_"), []string{"--dry-run"}, "would replay 2 deliveries (--dry-run: none replayed)", ""},
		{failed(1, "dlv_"), nil, "replayed 1 of 1 delivery", ""},
		{failed(1, "dlv_refused"), nil, "replayed 0 of 1 delivery", "1 of 1 replay was refused"},
		{failed(3, "dlv_refused"), nil, "replayed 0 of 3 deliveries", "3 of 3 replays were refused"},
	} {
		runs = tc.runs
		args := append([]string{"replay", "--failed", "--api-url", srv.URL, "--token", "tok"}, tc.args...)
		r := runCLI(args...)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if lines[len(lines)-1] != tc.stdout || !strings.Contains(r.Stderr, tc.stderr) {
			t.Errorf("failed runs: %d, %v: want %q and %q on stderr, got %s", len(tc.runs), tc.args, tc.stdout, tc.stderr, r)
		}
	}

	f := newFakeAPI(t)
	if r := f.execCLI("keys", "delete", "deploy"); r.Code != codeOK || r.Stdout != "deleted 1 key\n" {
		t.Errorf("keys delete of one key: %s", r)
	}
}

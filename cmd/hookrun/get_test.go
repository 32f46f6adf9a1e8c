package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

// A run queued for a retry keeps its failed attempt's startedAt: it shows
// no duration (before, one that grew through the backoff); a running run
// shows how long it has run, an ended one how long it ran.
func TestRunDuration_QueuedForARetryHasNone(t *testing.T) {
	hourAgo := time.Now().Add(-time.Hour)
	end := hourAgo.Add(1500 * time.Millisecond)
	for _, tc := range []struct {
		r    message.Run
		want func(string) bool
	}{
		{message.Run{Status: message.StatusQueued, Attempt: 1, StartedAt: &hourAgo}, func(s string) bool { return s == "" }},
		{message.Run{Status: message.StatusQueued}, func(s string) bool { return s == "" }},
		{message.Run{Status: message.StatusFailed, StartedAt: &hourAgo, FinishedAt: &end}, func(s string) bool { return s == "1.5s" }},
		{message.Run{Status: message.StatusRunning, StartedAt: &hourAgo}, func(s string) bool { d, err := time.ParseDuration(s); return err == nil && d >= time.Hour }},
	} {
		if got := runDuration(tc.r); !tc.want(got) {
			t.Errorf("%s run: duration %q", tc.r.Status, got)
		}
	}
}

// A webhook with auth none has its URL for credential (Workjet: "do not
// commit webhook URLs to source control"). -o yaml and -o json, which
// apply -f reads back and people commit, leave its endpoint out and say so
// on stderr; the table and describe still show it. An API-key or signature
// webhook keeps its endpoint: its URL alone lets nobody in.
func TestCLI_GetWebhookAsYAMLLeavesASecretURLOut(t *testing.T) {
	hooks := map[string]string{
		"open":   `{"apiVersion":"hookrun.dev/v1","kind":"Webhook","metadata":{"name":"open","namespace":"default"},"spec":{"job":"j","auth":{"none":{}},"filter":"payload.n > 3"},"status":{"endpointId":"ep_open","endpointPath":"/v1/hooks/ep_open","lastError":"job default/j not found"}}`,
		"bare":   `{"apiVersion":"hookrun.dev/v1","kind":"Webhook","metadata":{"name":"bare","namespace":"default"},"spec":{"job":"j"},"status":{"endpointId":"ep_bare","endpointPath":"/v1/hooks/ep_bare"}}`,
		"keyed":  `{"apiVersion":"hookrun.dev/v1","kind":"Webhook","metadata":{"name":"keyed","namespace":"default"},"spec":{"job":"j","auth":{"apiKey":{"in":"header","name":"X-Api-Key"}}},"status":{"endpointId":"ep_keyed","endpointPath":"/v1/hooks/ep_keyed"}}`,
		"signed": `{"apiVersion":"hookrun.dev/v1","kind":"Webhook","metadata":{"name":"signed","namespace":"default"},"spec":{"job":"j","auth":{"signature":{"profile":"github","secretRef":"gh"}}},"status":{"endpointId":"ep_signed","endpointPath":"/v1/hooks/ep_signed"}}`,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/webhooks/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, hooks[r.PathValue("name")])
	})
	mux.HandleFunc("GET /v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"items":[%s,%s,%s,%s]}`, hooks["bare"], hooks["keyed"], hooks["open"], hooks["signed"])
	})
	mux.HandleFunc("GET /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"runs": []any{}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	get := func(args ...string) cliResult {
		return runCLI(append(args, "--api-url", srv.URL, "--ingress", srv.URL, "--token", "tok")...)
	}
	const note = "URL is the webhook's credential"

	for _, format := range []string{"yaml", "json"} {
		r := get("get", "webhook", "open", "-o", format)
		if r.Code != codeOK || strings.Contains(r.Stdout, "ep_open") || strings.Contains(r.Stdout, "endpoint") ||
			!strings.Contains(r.Stdout, "job default/j not found") || !strings.Contains(r.Stdout, "payload.n > 3") {
			t.Errorf("get webhook open -o %s: want it without its endpoint, the rest as it was: %s", format, r)
		}
		if !strings.Contains(r.Stderr, "Note: webhook/open:") || !strings.Contains(r.Stderr, note) || !strings.Contains(r.Stderr, "hookrun describe webhook open") {
			t.Errorf("get webhook open -o %s: want a note on stderr saying why and where to see it: %s", format, r)
		}
	}
	r := get("get", "webhook", "open", "-o", "yaml")
	docs, err := parseManifest("get.yaml", []byte(r.Stdout))
	if err != nil || len(docs) != 1 || docs[0].Name != "open" {
		t.Errorf("get webhook open -o yaml does not read back as a manifest (%v): %s", err, r)
	}

	r = get("get", "webhooks", "-o", "yaml")
	if r.Code != codeOK || strings.Contains(r.Stdout, "ep_open") || strings.Contains(r.Stdout, "ep_bare") ||
		!strings.Contains(r.Stdout, "endpointPath: /v1/hooks/ep_keyed") || !strings.Contains(r.Stdout, "endpointPath: /v1/hooks/ep_signed") {
		t.Errorf("get webhooks -o yaml: want the endpoints of keyed and signed only: %s", r)
	}
	if !strings.Contains(r.Stderr, "webhook/bare, webhook/open:") || !strings.Contains(r.Stderr, note) {
		t.Errorf("get webhooks -o yaml: want a note naming bare and open: %s", r)
	}
	for _, name := range []string{"keyed", "signed"} {
		r := get("get", "webhook", name, "-o", "json")
		if r.Code != codeOK || !strings.Contains(r.Stdout, `"endpointId": "ep_`+name+`"`) || r.Stderr != "" {
			t.Errorf("get webhook %s -o json: want its endpoint, no note: %s", name, r)
		}
	}

	// Where the URL is shown on purpose, it still is.
	if r := get("describe", "webhook", "open"); r.Code != codeOK || !strings.Contains(r.Stdout, srv.URL+"/v1/hooks/ep_open") {
		t.Errorf("describe webhook open: want its URL: %s", r)
	}
	if r := get("get", "webhooks"); r.Code != codeOK || !strings.Contains(r.Stdout, srv.URL+"/v1/hooks/ep_open") {
		t.Errorf("get webhooks: want the URL in the table: %s", r)
	}
}

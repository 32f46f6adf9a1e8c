package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is the keys API and an ingress in memory, for the CLI's own
// behaviour: it narrows by ?namespace= as the real keys service does (no
// namespace: every namespace; a key valid in "*" is in every one) and
// records what it was asked to change.
type fakeAPI struct {
	URL string

	mu         sync.Mutex
	keys       []keyInfo
	runs       map[string]string // run id → namespace
	deliveries map[string]string // delivery id → namespace
	webhooks   map[string]string // "namespace/name" → webhook JSON
	changes    []string          // "extend key_x", "delete key_x", "cancel run_x", "replay dlv_x", "put team-a/jobs/j", "create key ci {…}"
	stream     string            // the events of every run
	duplicate  bool              // the ingress answers duplicate
	eventsAsk  []string          // the query of each events request
}

func newFakeAPI(t *testing.T) *fakeAPI {
	// extend answers a key as it is, as the keys service answers one that
	// never expires (key_default); key_prod expires, so extending it
	// reads as done.
	prodExpires := time.Now().Add(24 * time.Hour).UTC()
	f := &fakeAPI{
		keys: []keyInfo{
			{ID: "key_default", Name: "deploy", Namespace: "default"},
			{ID: "key_prod", Name: "deploy", Namespace: "prod", ExpiresAt: &prodExpires},
		},
		runs:       map[string]string{"run_prod": "prod", "run_default": "default"},
		deliveries: map[string]string{"dlv_prod": "prod"},
		webhooks:   map[string]string{},
		stream:     "event: status\ndata: {\"id\":\"run_prod\",\"status\":\"running\",\"attempt\":1}\n\nevent: output\ndata: \"hello\"\n\nevent: status\ndata: {\"id\":\"run_prod\",\"status\":\"succeeded\",\"exitCode\":0}\n\n",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var out []keyInfo
		for _, k := range f.keys {
			if inNamespace(r, k.Namespace) {
				out = append(out, k)
			}
		}
		writeJSON(w, 200, map[string]any{"keys": out})
	})
	mux.HandleFunc("POST /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name       string          `json:"name"`
			Expiration json.RawMessage `json:"expiration"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.changed(strings.TrimSpace("create key " + body.Name + " " + string(body.Expiration)))
		writeJSON(w, 201, map[string]any{"id": "key_new", "name": body.Name, "key": "hk_new"})
	})
	// apply: every PUT creates; a webhook gets an endpoint.
	mux.HandleFunc("PUT /v1/{collection}/{name}", func(w http.ResponseWriter, r *http.Request) {
		ns := r.URL.Query().Get("namespace")
		f.changed("put " + ns + "/" + r.PathValue("collection") + "/" + r.PathValue("name"))
		answer := map[string]any{}
		if r.PathValue("collection") == "webhooks" {
			answer["status"] = map[string]string{"endpointPath": "/v1/hooks/ep_" + r.PathValue("name")}
		}
		writeJSON(w, 201, answer)
	})
	mux.HandleFunc("PATCH /v1/keys/{id}/extend", func(w http.ResponseWriter, r *http.Request) {
		k, ok := f.key(r, r.PathValue("id"))
		if !ok {
			notFoundJSON(w, "API key "+r.PathValue("id"))
			return
		}
		f.changed("extend " + k.ID)
		writeJSON(w, 200, k)
	})
	mux.HandleFunc("DELETE /v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		k, ok := f.key(r, r.PathValue("id"))
		if !ok {
			notFoundJSON(w, "API key "+r.PathValue("id"))
			return
		}
		f.changed("delete " + k.ID)
		writeJSON(w, 200, map[string]int{"deleted": 1})
	})
	mux.HandleFunc("DELETE /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			IDs []string `json:"ids"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		n := 0
		for _, id := range body.IDs {
			if k, ok := f.key(r, id); ok {
				f.changed("delete " + k.ID)
				n++
			}
		}
		writeJSON(w, 200, map[string]int{"deleted": n})
	})
	mux.HandleFunc("GET /v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if id, ok := f.run(w, r); ok {
			writeJSON(w, 200, map[string]any{"id": id, "status": "running"})
		}
	})
	mux.HandleFunc("POST /v1/runs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		if id, ok := f.run(w, r); ok {
			f.changed("cancel " + id)
			writeJSON(w, 202, map[string]any{"id": id, "status": "running"})
		}
	})
	mux.HandleFunc("GET /v1/runs/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.run(w, r); ok {
			f.mu.Lock()
			f.eventsAsk = append(f.eventsAsk, r.URL.RawQuery)
			f.mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, f.stream)
		}
	})
	mux.HandleFunc("POST /v1/deliveries/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		f.mu.Lock()
		ns, ok := f.deliveries[id]
		f.mu.Unlock()
		if !ok || !inNamespace(r, ns) {
			notFoundJSON(w, "delivery "+id)
			return
		}
		f.changed("replay " + id)
		writeJSON(w, 202, map[string]any{"replayOf": id, "deliveryId": "dlv_new", "executionId": "run_prod", "status": "queued"})
	})
	mux.HandleFunc("GET /v1/webhooks/{name}", func(w http.ResponseWriter, r *http.Request) {
		ns := r.URL.Query().Get("namespace")
		f.mu.Lock()
		wh, ok := f.webhooks[ns+"/"+r.PathValue("name")]
		f.mu.Unlock()
		if !ok {
			notFoundJSON(w, "webhook "+ns+"/"+r.PathValue("name"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, wh)
	})
	mux.HandleFunc("POST /v1/hooks/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		f.changed("deliver " + r.PathValue("endpoint"))
		f.mu.Lock()
		dup := f.duplicate
		f.mu.Unlock()
		writeJSON(w, 202, map[string]any{"accepted": true, "duplicate": dup, "deliveryId": "dlv_1", "eventId": "evt_1", "executionId": "run_prod", "status": "queued"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// inNamespace is the keys service's ?namespace= narrowing.
func inNamespace(r *http.Request, ns string) bool {
	q := r.URL.Query().Get("namespace")
	return q == "" || q == ns || ns == "*"
}

func (f *fakeAPI) key(r *http.Request, id string) (keyInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.ID == id && inNamespace(r, k.Namespace) {
			return k, true
		}
	}
	return keyInfo{}, false
}

func (f *fakeAPI) run(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	f.mu.Lock()
	ns, ok := f.runs[id]
	f.mu.Unlock()
	if !ok || !inNamespace(r, ns) {
		notFoundJSON(w, "run "+id)
		return "", false
	}
	return id, true
}

func (f *fakeAPI) changed(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, what)
}

// takeChanges returns the changes made since the last call.
func (f *fakeAPI) takeChanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changes
	f.changes = nil
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFoundJSON(w http.ResponseWriter, what string) {
	writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": what + " not found"}})
}

// execCLI runs hookrun in this process against the fake.
func (f *fakeAPI) execCLI(args ...string) cliResult {
	return runCLI(append(slices.Clone(args), "--api-url", f.URL, "--ingress", f.URL, "--token", "tok")...)
}

// runCLI runs hookrun in this process as main would: its stdout, its stderr
// (with main's one-line error) and its exit code.
func runCLI(args ...string) cliResult {
	root := newRoot()
	var stdout, stderr bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetIn(strings.NewReader(""))
	err := root.Execute()
	if err != nil && errMessage(err) != "" {
		fmt.Fprintln(&stderr, "hookrun:", errMessage(err))
	}
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: exitCode(err)}
}

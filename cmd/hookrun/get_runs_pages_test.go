package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// get runs --limit past the API's page of 1000 follows its "next" cursor
// with the same filters, and stops at the limit or the last page.
func TestCLI_GetRunsFollowsTheAPIsPages(t *testing.T) {
	const total = 2500
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/runs" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		mu.Lock()
		asked = append(asked, q.Get("limit")+"@"+q.Get("cursor")+" "+q.Get("job"))
		mu.Unlock()
		from, _ := strconv.Atoi(strings.TrimPrefix(q.Get("cursor"), "c"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit > 1000 {
			http.Error(w, `{"error":"invalid_request","message":"limit: must be a number from 1 to 1000"}`, 400)
			return
		}
		var runs []map[string]any
		for i := from; i < min(from+limit, total); i++ {
			runs = append(runs, map[string]any{"id": fmt.Sprintf("run_%04d", i), "status": "succeeded"})
		}
		out := map[string]any{"runs": runs}
		if from+limit < total {
			out["next"] = "c" + strconv.Itoa(from+limit)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		limit, want int
		pages       []string
	}{
		{2200, 2200, []string{"1000@ report", "1000@c1000 report", "200@c2000 report"}},
		{5000, total, []string{"1000@ report", "1000@c1000 report", "1000@c2000 report"}},
		{10, 10, []string{"10@ report"}},
	} {
		asked = nil
		r := runCLI("get", "runs", "--job", "report", "--limit", strconv.Itoa(tc.limit), "-o", "json", "--api-url", srv.URL, "--token", "tok")
		if r.Code != 0 {
			t.Fatalf("--limit %d: %s", tc.limit, r)
		}
		var runs []map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &runs); err != nil {
			t.Fatal(err)
		}
		if len(runs) != tc.want || runs[len(runs)-1]["id"] != fmt.Sprintf("run_%04d", tc.want-1) {
			t.Errorf("--limit %d: %d runs, want %d", tc.limit, len(runs), tc.want)
		}
		if strings.Join(asked, ",") != strings.Join(tc.pages, ",") {
			t.Errorf("--limit %d asked %v, want %v", tc.limit, asked, tc.pages)
		}
	}
	if r := runCLI("get", "runs", "--limit", "100001", "--api-url", srv.URL, "--token", "tok"); r.Code != codeUsage {
		t.Errorf("--limit over the bound: %s", r)
	}
}

// An output event's id names its attempt, number and (since the keys
// service put it in) delivery; watch reads the number of its attempt's.
func TestLineNumber_ReadsTheIDsOfEitherRelease(t *testing.T) {
	for id, want := range map[string]int{"1.3.dlv_x": 3, "1.3": 3, "1.12.dlv.with.dots": 12, "2.3.dlv_x": 0, "1": 0, "": 0, "1.x.dlv": 0, "1.0.dlv": 0} {
		n, ok := lineNumber(id, 1)
		if ok != (want > 0) || n != want {
			t.Errorf("lineNumber(%q, 1) = %d, %v; want %d", id, n, ok, want)
		}
	}
}

// get runs --status, --webhook and --job become the API's filters, with
// the namespace; a run's error shows in the table.
func TestCLI_GetRunsPassesItsFilters(t *testing.T) {
	var mu sync.Mutex
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		query = r.URL.Query().Encode()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"runs":[{"id":"run_f","status":"filtered","webhook":"gh","job":"report","error":"the webhook's filter is false\nfor this delivery"}]}`))
	}))
	t.Cleanup(srv.Close)
	r := runCLI("get", "runs", "--status", "filtered", "--webhook", "gh", "--job", "report", "-n", "ops", "--api-url", srv.URL, "--token", "tok")
	// The table says why (the filter's reason, on one line).
	if r.Code != 0 || !strings.Contains(r.Stdout, "run_f") || !strings.Contains(r.Stdout, "the webhook's filter is false for this delivery") {
		t.Fatalf("get runs: %s", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "job=report&limit=20&namespace=ops&status=filtered&webhook=gh"; query != want {
		t.Fatalf("asked %q, want %q", query, want)
	}
}

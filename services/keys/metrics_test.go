package keys

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// requestCount reads hookrun_keys_requests_total{route,method,code}.
func requestCount(route, method, code string) float64 {
	return testutil.ToFloat64(mRequests.WithLabelValues(route, method, code))
}

// timedRequests reads the observation count of
// hookrun_keys_request_duration_seconds{route}, 0 when it has none.
func timedRequests(t *testing.T, route string) uint64 {
	t.Helper()
	for _, mf := range gather(t) {
		if mf.GetName() != "hookrun_keys_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func gather(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// Not parallel: it reads counters that every test of the package moves.
func TestKeysMetrics_CountEveryAnswerByRouteTemplateAndFinalStatus(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		name, method, path, auth string
		body                     any
		// what is counted: the route template, never the URL, and the
		// status the error handler finally wrote.
		route, label, code string
		timed              bool
	}{
		{"list", "GET", "/v1/jobs", "Bearer " + testToken, nil, "/v1/jobs", "GET", "200", true},
		{"no token", "GET", "/v1/jobs", "", nil, "/v1/jobs", "GET", "401", true},
		{"handler error", "GET", "/v1/jobs/nope", "Bearer " + testToken, nil, "/v1/jobs/:name", "GET", "404", true},
		{"invalid body", "PUT", "/v1/jobs/bad", "Bearer " + testToken, "{", "/v1/jobs/:name", "PUT", "400", true},
		{"body over the limit", "PUT", "/v1/jobs/big", "Bearer " + testToken, strings.Repeat("x", 5<<20), "/v1/jobs/:name", "PUT", "413", true},
		{"method not allowed", "POST", "/v1/jobs/nope", "Bearer " + testToken, nil, "/v1/jobs/:name", "POST", "405", true},
		{"unknown method", "BREW", "/v1/jobs", "Bearer " + testToken, nil, "/v1/jobs", "other", "405", true},
		{"no route", "GET", "/v1/no-such-thing/42", "Bearer " + testToken, nil, unmatchedRoute, "GET", "404", true},
		// A run's event stream lasts as long as the run: counted, not timed.
		{"event stream", "GET", "/v1/runs/run_nope/events", "Bearer " + testToken, nil, "/v1/runs/:id/events", "GET", "404", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, timedBefore := requestCount(tc.route, tc.label, tc.code), timedRequests(t, tc.route)
			ans := a.doAuth(tc.method, tc.path, tc.body, tc.auth)
			if got := strconv.Itoa(ans.Code); got != tc.code {
				t.Fatalf("%s %s: HTTP %s, want %s: %s", tc.method, tc.path, got, tc.code, ans.Body)
			}
			if d := requestCount(tc.route, tc.label, tc.code) - before; d != 1 {
				t.Errorf("hookrun_keys_requests_total{route=%q,method=%q,code=%q} moved by %v, want 1", tc.route, tc.label, tc.code, d)
			}
			want := uint64(0)
			if tc.timed {
				want = 1
			}
			if d := timedRequests(t, tc.route) - timedBefore; d != want {
				t.Errorf("hookrun_keys_request_duration_seconds{route=%q} observed %d requests, want %d", tc.route, d, want)
			}
		})
	}
	// No label holds what the client put in the URL.
	for _, mf := range gather(t) {
		if !strings.HasPrefix(mf.GetName(), "hookrun_keys_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "nope") || strings.Contains(v, "no-such-thing") || strings.Contains(v, "BREW") {
					t.Errorf("%s has label %s=%q from the request URL or method", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}
}

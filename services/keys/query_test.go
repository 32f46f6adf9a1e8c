package keys

import (
	"net/http"
	"testing"
)

// A query parameter the route does not read is refused, not ignored: a
// misspelt ?namespace= on a DELETE would delete in "default", a misspelt
// filter list every run.
func TestAPI_RefusesAQueryParameterTheRouteDoesNotRead(t *testing.T) {
	a := newTestAPI(t)
	a.must(http.StatusCreated, "PUT", "/v1/jobs/keep", jobDoc("keep", nil))

	checkError(t, a.do("DELETE", "/v1/jobs/keep?namespce=prod", nil), 400, "invalid_request", `unknown query parameter "namespce": DELETE /v1/jobs/:name takes namespace`)
	a.must(http.StatusOK, "GET", "/v1/jobs/keep", nil) // not deleted
	checkError(t, a.do("GET", "/v1/runs?stauts=failed", nil), 400, "invalid_request", `unknown query parameter "stauts": GET /v1/runs takes namespace, webhook, job, status, limit, cursor`)
	checkError(t, a.do("GET", "/v1/runs/run_x/events?limit=1", nil), 400, "invalid_request", `unknown query parameter "limit"`)
	// A key sent as a parameter's name is not said back whole.
	if ans := a.do("GET", "/v1/jobs?hk_k1d_s3cr3tv4lu3=1", nil); ans.Code != 400 || ans.ErrMessage() != `unknown query parameter "hk_k1d_…": GET /v1/jobs takes namespace` {
		t.Fatalf("a key as a parameter: HTTP %d %s", ans.Code, ans.Body)
	}

	// What each route reads is taken.
	a.must(http.StatusOK, "GET", "/v1/runs?namespace=default&webhook=w&job=keep&status=failed&limit=5", nil)
	a.must(http.StatusOK, "GET", "/v1/jobs?namespace=default", nil)
	// A cache buster on a read is no setting: taken; on a write it is refused.
	a.must(http.StatusOK, "GET", "/v1/runs?status=failed&_=1732900000000", nil)
	a.must(http.StatusOK, "GET", "/v1/jobs/keep?_=1", nil)
	checkError(t, a.do("DELETE", "/v1/jobs/keep?_=1", nil), 400, "invalid_request", `unknown query parameter "_"`)
	a.must(http.StatusOK, "DELETE", "/v1/jobs/keep?namespace=default", nil)
}

// A query string Go cannot read whole is refused: Go drops the pairs it
// cannot parse, and a ?namespace= dropped so read as "default" (a DELETE
// of another namespace's resource) or as every namespace (a list).
func TestAPI_MalformedQueryIsRefusedNotReadAsDefault(t *testing.T) {
	a := newTestAPI(t)
	a.must(http.StatusCreated, "PUT", "/v1/jobs/dj", jobDoc("dj", nil))
	a.must(http.StatusCreated, "PUT", "/v1/jobs/dj?namespace=ns2", jobDoc("dj", nil))
	for _, q := range []string{"namespace=ns2;x", "namespace=%zz", "namespace=ns2&x=%"} {
		checkError(t, a.do("DELETE", "/v1/jobs/dj?"+q, nil), http.StatusBadRequest, "invalid_request", "query string")
		checkError(t, a.do("GET", "/v1/runs?"+q, nil), http.StatusBadRequest, "invalid_request", "query string")
	}
	a.must(http.StatusOK, "GET", "/v1/jobs/dj", nil)
	a.must(http.StatusOK, "GET", "/v1/jobs/dj?namespace=ns2", nil)
	// Without a token, still 401 first.
	if ans := a.doAuth("GET", "/v1/jobs/dj?namespace=%zz", nil, ""); ans.Code != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d, want 401", ans.Code)
	}
}

// A run id not found says why it may not be there yet: clients poll the
// executionId of a 202 at once, before a dispatcher has queued its run.
func TestRuns_NotFoundSaysARunComesOnceQueued(t *testing.T) {
	a := newTestAPI(t)
	checkError(t, a.do("GET", "/v1/runs/run_nope", nil), http.StatusNotFound, "not_found", "run run_nope not found (a run accepted a moment ago may not be queued yet: retry shortly")
}

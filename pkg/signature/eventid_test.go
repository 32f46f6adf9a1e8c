package signature

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestEventIDSource_NamesWhereEachProfileReadsTheEventID: every registered
// profile says where its event id comes from, and a header it names is the
// one Verify reads (the event id Sign puts there is the one Verify returns).
func TestEventIDSource_NamesWhereEachProfileReadsTheEventID(t *testing.T) {
	want := map[string]string{
		"generic":           "X-Event-Id",
		"github":            "X-GitHub-Delivery",
		"gitlab":            "Idempotency-Key",
		"shopify":           "X-Shopify-Webhook-Id",
		"standard-webhooks": "webhook-id",
		"stripe":            `"id" field in the JSON body`,
		"slack":             `"event_id" field in the JSON body`,
	}
	for _, name := range Names() {
		p, _ := Lookup(name)
		src := EventIDSource(p)
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: no expectation for this profile", name)
			continue
		}
		if !strings.Contains(src, w) {
			t.Errorf("%s: EventIDSource = %q, want it to name %s", name, src, w)
		}
		if name == "stripe" || name == "slack" {
			continue // read from the body
		}
		f := fixtures[name]
		h := p.Sign(f.body, "some-secret-value", "evt-x", now)
		if got := h.Get(w); got != "evt-x" {
			t.Errorf("%s: Sign put %q in %s, want the event id there", name, got, w)
		}
	}
	if got := EventIDSource(WithTolerance(Profile(generic{}), 1)); got != "the X-Event-Id header" {
		t.Errorf("a profile with its tolerance changed: EventIDSource = %q", got)
	}
}

// GitLab keeps Idempotency-Key across its retries and a user's resends,
// while X-Gitlab-Event-UUID is new on each: the first is the event id
// where it comes (before, a resent event ran again), the second where it
// does not (GitLab before 17.4).
func TestGitLab_EventIDIsTheIdempotencyKeyWhereSent(t *testing.T) {
	p, _ := Lookup("gitlab")
	for _, tc := range []struct {
		header http.Header
		want   string
	}{
		{http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"uuid-attempt-2"}, "Idempotency-Key": {"idem-1"}}, "idem-1"},
		{http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"uuid-1"}}, "uuid-1"},
		{http.Header{"X-Gitlab-Token": {"tok-123456"}, "X-Gitlab-Event-Uuid": {"uuid-1"}, "Idempotency-Key": {""}}, "uuid-1"},
	} {
		id, err := p.Verify(Request{Header: tc.header, Body: []byte(`{}`)}, []string{"tok-123456"}, now)
		if err != nil || id != tc.want {
			t.Errorf("%v: event id %q (%v), want %q", tc.header, id, err, tc.want)
		}
	}
	if _, err := p.Verify(Request{Header: http.Header{"X-Gitlab-Token": {"tok-123456"}}, Body: []byte(`{}`)}, []string{"tok-123456"}, now); !errors.Is(err, ErrMissingEventID) {
		t.Errorf("neither header: %v, want ErrMissingEventID", err)
	}
	// Neither header is taken before the token is checked.
	if _, err := p.Verify(Request{Header: http.Header{"X-Gitlab-Token": {"wrong"}, "Idempotency-Key": {"idem-1"}}, Body: []byte(`{}`)}, []string{"tok-123456"}, now); !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("a wrong token with an Idempotency-Key: %v, want ErrSignatureInvalid", err)
	}
}

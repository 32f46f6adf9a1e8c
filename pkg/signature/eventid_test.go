package signature

import (
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
		"gitlab":            "X-Gitlab-Event-UUID",
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

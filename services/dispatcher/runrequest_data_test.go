package dispatcher

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// The run request carries the delivery's method and query: an HTTP job's
// body template, rendered by the executor, reads them (.method, .query) as
// the argument templates did here.
func TestDispatcher_RunRequestCarriesMethodAndQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	w := e.hook("method-query", nil)
	e.start(nil)
	for _, c := range []struct {
		event  string
		method string
		query  map[string][]string
	}{
		{"evt-post", "POST", map[string][]string{"env": {"prod"}, "tag": {"a", "b"}}},
		{"evt-put", "PUT", nil},
	} {
		d := e.deliver(w, c.event, `{}`, func(d *message.Delivery) { d.Method, d.Query = c.method, c.query })
		want(t, c.event+": outcome", e.outcome(d).Status, message.DeliveryDispatched)
		var rr *message.RunRequest
		for _, r := range e.runRequests() {
			if r.DeliveryID == d.ID {
				rr = &r
			}
		}
		if rr == nil {
			t.Fatalf("%s: no run request of delivery %s", c.event, d.ID)
		}
		want(t, c.event+": method", rr.Method, c.method)
		if !reflect.DeepEqual(rr.Query, c.query) {
			t.Fatalf("%s: query %v, want %v", c.event, rr.Query, c.query)
		}
	}
}

// The quick estimate of a run request's size is an upper bound with the
// delivery's query in it too (now that the run request carries it): a
// long query can no longer slip a request over max_payload past the guard.
func TestRunRequestSize_CountsTheQuery(t *testing.T) {
	it := &item{
		d:   message.Delivery{ID: "dlv_1", Namespace: "default", Webhook: "gh", RunID: "run_1", Method: "POST", Body: []byte(`{}`), Query: map[string][]string{"q": {strings.Repeat("x", 100<<10)}}},
		job: &resource.Job{Metadata: resource.Meta{Name: "report"}},
	}
	now := time.Now()
	b, err := message.Marshal(runRequest(it, now))
	if err != nil {
		t.Fatal(err)
	}
	if size, _ := runRequestSize(it, now, 64<<10); size < int64(len(b)) {
		t.Fatalf("estimated %d bytes for a run request of %d", size, len(b))
	}
}

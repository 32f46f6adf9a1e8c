package executor

import (
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// An HTTP job's body template sees the delivery's method and query, as its
// argument templates do (OPERATIONS.md): they travel in the run request. A
// request of a dispatcher older than those fields still runs, with them
// empty, as before.
func TestExecutor_HTTPBodyTemplateSeesMethodAndQuery(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	srv := newRecorder(t, 0, 200)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-method-query"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{
		URL: srv.srv.URL, Body: `{{ .method }}|{{ .query.env }}`,
	}}})
	for i, c := range []struct {
		name string
		mod  func(*message.RunRequest)
		body string
	}{
		{"from the delivery", func(rr *message.RunRequest) {
			rr.Method, rr.Query = "POST", map[string][]string{"env": {"prod", "staging"}}
		}, "POST|prod"},
		{"older dispatcher", func(*message.RunRequest) {}, "|"},
	} {
		r := e.final(e.submit(job, `{}`, c.mod), 10*time.Second)
		want(t, c.name+": status", r.Status, message.StatusSucceeded)
		got := srv.got()
		want(t, c.name+": requests", len(got), i+1)
		want(t, c.name+": body", string(got[i].body), c.body)
	}
}

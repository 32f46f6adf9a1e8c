package keys

import (
	"bytes"
	"testing"
)

// Answers are JSON without HTML escaping: "<", ">" and "&" read as sent.
func TestAPI_AnswersAreNotHTMLEscaped(t *testing.T) {
	a := newTestAPI(t)
	ans := a.doAuth("GET", "/v1/jobs", nil, "")
	if !bytes.Contains(ans.Body, []byte("Bearer <token>")) {
		t.Fatalf("401 body %s: want Bearer <token> as written", ans.Body)
	}
	a.must(201, "PUT", "/v1/jobs/report", jobDoc("report", nil))
	filter := `body.a == 1 && body.b != "<x>"`
	a.must(201, "PUT", "/v1/webhooks/plain", webhookDoc("plain", map[string]any{"job": "report", "filter": filter}))
	got := a.do("GET", "/v1/webhooks/plain", nil)
	if !bytes.Contains(got.Body, []byte(`body.a == 1 && body.b != \"<x>\"`)) {
		t.Fatalf("webhook body %s: want the filter as written", got.Body)
	}
}

// The run event stream's data lines are not HTML-escaped either.
func TestMarshalPlain_DoesNotEscapeHTML(t *testing.T) {
	got := marshalPlain(map[string]string{"webhook_payload": `<a href="x">&</a>`})
	if string(got) != `{"webhook_payload":"<a href=\"x\">&</a>"}` {
		t.Fatalf("marshalPlain = %s", got)
	}
}

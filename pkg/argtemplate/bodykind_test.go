package argtemplate

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestResolve_ErrorSaysWhenTheBodyIsNotAnObject(t *testing.T) {
	tests := []struct {
		name, contentType, body, want string
	}{
		{"text", "text/plain", "hello", "(the body is text, not a JSON object (Content-Type text/plain, 5 bytes))"},
		{"empty", "application/json", "", "(the body is empty, not a JSON object (Content-Type application/json, 0 bytes))"},
		{"JSON array", "application/json", "[1,2]", "(the body is a JSON array, not a JSON object (Content-Type application/json, 5 bytes))"},
		{"JSON null", "", "null", "(the body is JSON null, not a JSON object (Content-Type none, 4 bytes))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewData([]byte(tt.body), tt.contentType, http.Header{}, url.Values{}, http.MethodPost, "w", "evt-1")
			_, err := resolveOne(t, Arg{Value: `{{ .body.topic }}`}, d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resolve: %v, want an error containing %q", err, tt.want)
			}
			_, err = RenderBody(`{"t": {{ json .body.topic.name }}}`, d, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RenderBody: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestResolve_ErrorOnAnObjectBlamesTheKeyOnly(t *testing.T) {
	d := NewData([]byte(`{"a":1}`), "application/json", http.Header{}, url.Values{}, http.MethodPost, "w", "evt-1")
	if _, err := resolveOne(t, Arg{Value: `{{ .body.topic }}`}, d); err == nil || strings.Contains(err.Error(), "the body") {
		t.Errorf("Resolve on an object: %v, want an error that does not describe the body", err)
	}
	text := NewData([]byte("hello"), "text/plain", http.Header{}, url.Values{}, http.MethodPost, "w", "evt-1")
	if _, err := resolveOne(t, Arg{Value: `{{ .query.env }}`}, text); err == nil || strings.Contains(err.Error(), "the body") {
		t.Errorf("Resolve of a query parameter: %v, want an error that does not describe the body", err)
	}
}

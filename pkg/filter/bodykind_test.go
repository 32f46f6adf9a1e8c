package filter

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestMatch_ErrorSaysWhenTheBodyIsNotAnObject(t *testing.T) {
	tests := []struct {
		name, expr, method, contentType, body, want string
	}{
		{"text body", `body.ref == "x"`, http.MethodPost, "text/plain", "hello",
			"no such key: ref (the body is text, not a JSON object (Content-Type text/plain, 5 bytes))"},
		{"broken JSON", `body.ref == "x"`, http.MethodPost, "application/json", `{"ref": "refs/heads/ma`,
			"no such key: ref (the body is text: it is not valid JSON (unexpected end of JSON input), not a JSON object (Content-Type application/json, 22 bytes))"},
		{"empty body", `body.ref == "x"`, http.MethodPost, "application/json", "",
			"no such key: ref (the body is empty, not a JSON object (Content-Type application/json, 0 bytes))"},
		{"GET", `body.ref == "x"`, http.MethodGet, "", "",
			"no such key: ref (a GET request has no body)"},
		{"JSON array", `body.ref == "x"`, http.MethodPost, "application/json", "[1,2]",
			"(the body is a JSON array, not a JSON object (Content-Type application/json, 5 bytes))"},
		{"JSON null", `body.ref == "x"`, http.MethodPost, "application/json", "null",
			"no such key: ref (the body is JSON null, not a JSON object"},
		{"JSON string", `body.ref == "x"`, http.MethodPost, "application/json", `"x"`,
			"(the body is a JSON string, not a JSON object"},
		{"JSON number", `body.ref == "x"`, http.MethodPost, "application/json", `42`,
			"(the body is a JSON number, not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Body: []byte(tt.body), ContentType: tt.contentType, Header: http.Header{}, Method: tt.method}
			ok, err := mustCompile(t, tt.expr).Match(context.Background(), in)
			if ok || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Match = %v, %v; want an error containing %q", ok, err, tt.want)
			}
		})
	}
}

func TestMatch_ErrorOnAnObjectBlamesTheKeyOnly(t *testing.T) {
	for _, tc := range []struct{ expr, body string }{
		{`body.ref == "x"`, `{"a":1}`},
		{`body.ref == "x"`, `{}`},
		{`header["X-Missing"] == "x"`, `hello`}, // the body is not read
	} {
		in := Input{Body: []byte(tc.body), ContentType: "application/json", Header: http.Header{}, Method: http.MethodPost}
		_, err := mustCompile(t, tc.expr).Match(context.Background(), in)
		if err == nil || strings.Contains(err.Error(), "the body") {
			t.Errorf("Match(%s) on %s: error %v, want one that does not describe the body", tc.expr, tc.body, err)
		}
	}
}

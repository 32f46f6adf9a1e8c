package argtemplate

import (
	"net/http"
	"strings"
	"testing"
)

func TestNewData_DecodesBody(t *testing.T) {
	deep := func(n int) string {
		s := ""
		for range n {
			s = `{"a":` + s
		}
		s += "1"
		for range n {
			s += "}"
		}
		return s
	}
	tests := []struct {
		name, body, contentType, value, want string
	}{
		{"json object", `{"a":"b"}`, "application/json", `{{ .body.a }}`, "b"},
		{"json without content type", `{"a":"b"}`, "", `{{ .body.a }}`, "b"},
		{"text body", "plain text", "text/plain", `{{ .body }}`, "plain text"},
		{"invalid json is text", `{"a":`, "application/json", `{{ .body }}`, `{"a":`},
		{"trailing data is text", `{"a":1}]`, "application/json", `{{ .body }}`, `{"a":1}]`},
		{"empty body is an empty object", "", "", `{{ .body }}|{{ .body.a | default "d" }}`, "{}|d"},
		{"json null is an empty object", "null", "application/json", `{{ .body }}`, "{}"},
		{"form fields", "a=1&a=2&b=x+y", "application/x-www-form-urlencoded; charset=utf-8", `{{ .body.a }} {{ .body.b }}`, "1 x y"},
		{"GitHub form payload", "payload=%7B%22repository%22%3A%7B%22name%22%3A%22hookrun%22%7D%7D", "application/x-www-form-urlencoded", `{{ .body.repository.name }}`, "hookrun"},
		{"JSON sent as a form (curl -d)", `{"topic":"AI"}`, "application/x-www-form-urlencoded", `{{ .body.topic }}`, "AI"},
		{"64 levels decode", deep(64), "application/json", `{{ printf "%T" .body }}`, "argtemplate.jsonObject"},
		{"65 levels are text", deep(65), "application/json", `{{ printf "%T" .body }}`, "string"},
		{"brackets in strings do not count", `{"a":"` + strings.ReplaceAll(deep(70), `"`, `\"`) + `"}`, "application/json", `{{ printf "%T" .body }}`, "argtemplate.jsonObject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewData([]byte(tt.body), tt.contentType, http.Header{}, nil, "POST", "w", "e")
			got, err := resolveOne(t, Arg{Value: tt.value}, d)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

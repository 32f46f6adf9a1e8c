package argtemplate

import (
	"testing"
)

func TestFuncs(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"json object", `{{ json .body.repository.owner }}`, `{"login":"octo"}`},
		{"json string", `{{ json .body.ref }}`, `"refs/heads/main"`},
		{"json number", `{{ json .body.id }}`, `12345678901234567890`},
		{"json null", `{{ json .body.draft }}`, `null`},
		{"default on missing key", `{{ .body.branch | default "main" }}`, "main"},
		{"default on null", `{{ .body.draft | default "no" }}`, "no"},
		{"default on empty string", `{{ .body.empty | default "none" }}`, "none"},
		{"default keeps a value", `{{ .body.ref | default "main" }}`, "refs/heads/main"},
		{"default on missing header", `{{ header "X-Nope" | default "none" }}`, "none"},
		{"default on missing query", `{{ .query.page | default "1" }}`, "1"},
		{"lower", `{{ lower "ABC" }}{{ .body.repository.owner.login | upper }}`, "abcOCTO"},
		{"lower of a number", `{{ lower .body.id }}`, "12345678901234567890"},
		{"trim", `[{{ trim "  x y \n" }}]`, "[x y]"},
		{"join list sep", `{{ join .body.repository.topics ", " }}`, "go, nats"},
		{"join piped", `{{ .body.repository.topics | join "+" }}`, "go+nats"},
		{"join objects as json", `{{ join .body.commits ";" }}`, `{"id":"a1","message":"Fix it"};{"id":"b2","message":"Add <b>"}`},
		{"toString number", `{{ toString .body.id }}`, "12345678901234567890"},
		{"toString object", `{{ toString .body.repository.owner }}`, `{"login":"octo"}`},
		{"toString null", `[{{ toString .body.draft }}]`, "[]"},
		{"builtins still work", `{{ len .body.commits }} {{ printf "%s!" .body.ref }}`, "2 refs/heads/main!"},
		{"eq on strings", `{{ if eq (header "x-github-event") "push" }}push{{ end }}`, "push"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveOne(t, Arg{Value: tt.value}, pushData())
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeaderFunc_IgnoresCaseOfStoredNames(t *testing.T) {
	// Data built by hand may hold non-canonical names.
	h := headerFunc(map[string]string{"x-custom-id": "7"})
	for _, name := range []string{"X-Custom-Id", "x-custom-id", "X-CUSTOM-ID"} {
		if got := h(name); got != "7" {
			t.Errorf("header %q = %v, want 7", name, got)
		}
	}
	if got := h("X-Other"); got != nil {
		t.Errorf("header X-Other = %v, want nil", got)
	}
}

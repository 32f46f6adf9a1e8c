package argtemplate

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func ptr(s string) *string { return &s }

const pushBody = `{
  "ref": "refs/heads/main",
  "id": 12345678901234567890,
  "draft": null,
  "empty": "",
  "repository": {"name": "hookrun", "topics": ["go", "nats"], "owner": {"login": "octo"}},
  "commits": [{"id": "a1", "message": "Fix it"}, {"id": "b2", "message": "Add <b>"}]
}`

func pushData() Data {
	h := http.Header{}
	h["x-github-event"] = []string{"push"} // as a raw, non-canonical name
	h.Set("Content-Type", "application/json")
	return NewData([]byte(pushBody), "application/json", h,
		url.Values{"env": {"prod", "dev"}}, http.MethodPost, "report-github-push", "evt-1")
}

// resolveOne compiles a single argument and resolves it against d.
func resolveOne(t *testing.T, a Arg, d Data) (string, error) {
	t.Helper()
	if a.Name == "" {
		a.Name = "x"
	}
	s, err := Compile([]Arg{a})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	out, err := s.Resolve(d)
	return out[a.Name], err
}

func TestResolve_RendersDeliveryValues(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"body field", `{{ .body.ref }}`, "refs/heads/main"},
		{"nested field", `{{ .body.repository.owner.login }}`, "octo"},
		{"list item", `{{ index .body.repository.topics 1 }}`, "nats"},
		{"field of list item", `{{ (index .body.commits 0).message }}`, "Fix it"},
		{"big integer keeps its digits", `{{ .body.id }}`, "12345678901234567890"},
		{"header func ignores case", `{{ header "X-GitHub-Event" }}`, "push"},
		{"header map by canonical name", `{{ index .header "X-Github-Event" }}`, "push"},
		{"query first value", `{{ .query.env }}`, "prod"},
		{"method webhook eventId", `{{ .method }} {{ .webhook }} {{ .eventId }}`, "POST report-github-push evt-1"},
		{"text around actions", `branch={{ .body.ref }};`, "branch=refs/heads/main;"},
		{"range", `{{ range .body.commits }}{{ .id }},{{ end }}`, "a1,b2,"},
		{"range in a range", `{{ range .body.commits }}{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}{{ end }}`, "id=a1;message=Fix it;id=b2;message=Add <b>;"},
		{"if on missing key", `{{ if .body.action }}yes{{ else }}no{{ end }}`, "no"},
		{"empty string is a value", `{{ .body.empty }}`, ""},
		{"plain text", `literal`, "literal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveOne(t, Arg{Value: tt.value, Default: ptr("DEFAULT")}, pushData())
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolve_FallsBackToDefault(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"missing key", `{{ .body.topic }}`},
		{"missing parent", `{{ .body.pull_request.number }}`},
		{"null value", `{{ .body.draft }}`},
		{"missing key among text", `topic={{ .body.topic }}`},
		{"missing header", `{{ header "X-Missing" }}`},
		{"missing query parameter", `{{ .query.page }}`},
		{"missing query parameter among text", `page={{ .query.page }}`},
		{"missing header field", `{{ .header.Missing }}`},
		{"missing header by index", `{{ index .header "X-Missing" }}`},
		{"function error", `{{ join .body.ref "," }}`},
		{"index out of range", `{{ index .body.commits 9 }}`},
		{"no value template", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveOne(t, Arg{Value: tt.value, Default: ptr("AI startups")}, pushData())
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != "AI startups" {
				t.Errorf("Resolve = %q, want the default", got)
			}
		})
	}
}

func TestResolve_UnresolvableWithoutDefaultNamesTheArg(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"missing key", `{{ .body.topic }}`, `arg "x": cannot resolve {{ .body.topic }}: map has no entry for key "topic"`},
		{"null value", `{{ .body.draft }}`, `arg "x": cannot resolve {{ .body.draft }}: no value`},
		{"missing query parameter", `{{ .query.page }}`, `arg "x": cannot resolve {{ .query.page }}: map has no entry for key "page"`},
		{"missing header field", `{{ .header.Missing }}`, `arg "x": cannot resolve {{ .header.Missing }}: map has no entry for key "Missing"`},
		{"no value template", ``, `arg "x": no value template and no default`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveOne(t, Arg{Value: tt.value}, pushData())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Resolve error = %v, want %s", err, tt.want)
			}
		})
	}
}

// The example of the package documentation: a job run without ?env= gets
// the argument's default, not an empty value.
func TestResolve_MissingQueryParameterTakesTheDefault(t *testing.T) {
	d := NewData([]byte(`{}`), "application/json", http.Header{"X-Other": {"1"}}, nil, http.MethodPost, "w", "e")
	for _, value := range []string{`{{ .query.env }}`, `{{ .header.Env }}`} {
		got, err := resolveOne(t, Arg{Name: "env", Default: ptr("staging"), Value: value}, d)
		if err != nil || got != "staging" {
			t.Errorf("Resolve(%s) = %q, %v; want the default staging", value, got, err)
		}
	}
}

// Text/template prints a missing value as "<no value>", but a delivery may
// hold that text too: it is a value like any other, while a part that has
// no value still makes the argument take its default.
func TestResolve_NoValueTextInDataIsAValue(t *testing.T) {
	h := http.Header{}
	h.Set("X-Note", "<no value>")
	d := NewData([]byte(`{"topic":"see <no value> docs","exact":"<no value>","draft":null}`), "application/json",
		h, url.Values{"q": {"<no value>"}}, http.MethodPost, "w", "e")
	tests := []struct {
		name, value, want string
	}{
		{"in a body string", `{{ .body.topic }}`, "see <no value> docs"},
		{"a whole body string", `{{ .body.exact }}`, "<no value>"},
		{"in a body printed as JSON", `{{ .body }}`, `{"draft":null,"exact":"<no value>","topic":"see <no value> docs"}`},
		{"in a header", `{{ header "x-note" }}`, "<no value>"},
		{"in a query parameter", `{{ .query.q }}`, "<no value>"},
		{"after a handled missing key", `{{ .body.nope | default .body.exact }}`, "<no value>"},
		{"in the template text", `<no value>{{ .body.exact }}`, "<no value><no value>"},
		{"with a missing key beside it", `{{ .body.exact }}{{ .body.nope }}`, "DEFAULT"},
		{"with a null beside it", `{{ .body.topic }}{{ .body.draft }}`, "DEFAULT"},
		{"with a missing header beside it", `{{ header "X-Note" }}{{ header "X-Nope" }}`, "DEFAULT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveOne(t, Arg{Value: tt.value, Default: ptr("DEFAULT")}, d)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolve_StopsAtFirstUnresolvableArg(t *testing.T) {
	s, err := Compile([]Arg{
		{Name: "ok", Value: "{{ .body.ref }}"},
		{Name: "ref", Value: "{{ .body.nope }}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Resolve(pushData())
	if out != nil || err == nil || !strings.HasPrefix(err.Error(), `arg "ref": `) {
		t.Fatalf("Resolve = %v, %v; want nil and an error for arg ref", out, err)
	}
}

func TestResolve_RendersObjectsAsJSON(t *testing.T) {
	plain := Data{Body: map[string]any{"a": map[string]any{"b": []any{1.0, "x", nil, 2.5e6}}}}
	tests := []struct {
		name  string
		d     Data
		value string
		want  string
	}{
		{"object", pushData(), `{{ .body.repository.owner }}`, `{"login":"octo"}`},
		{"list", pushData(), `{{ .body.repository.topics }}`, `["go","nats"]`},
		{"no html escaping", pushData(), `{{ index .body.commits 1 }}`, `{"id":"b2","message":"Add <b>"}`},
		{"plain go maps", plain, `{{ .body }}`, `{"a":{"b":[1,"x",null,2500000]}}`},
		{"text body", NewData([]byte("hello"), "text/plain", nil, nil, "POST", "w", "e"), `{{ .body }}`, "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveOne(t, Arg{Value: tt.value}, tt.d)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestResolve_RejectsOversizedValue(t *testing.T) {
	big := `{"s":"` + strings.Repeat("a", MaxValueBytes+1) + `"}`
	d := NewData([]byte(big), "application/json", nil, nil, "POST", "w", "e")
	for _, value := range []string{
		`{{ .body.s }}`,
		`{{ if .body.s }}{{ .body.s | upper }}{{ end }}`,
		`x{{ json .body }}`,
		`{{ range len .body.s }}x{{ end }}`,
		`{{ .body.nope | default .body.s }}`,
	} {
		t.Run(value, func(t *testing.T) {
			_, err := resolveOne(t, Arg{Value: value, Default: ptr("small")}, d)
			if !errors.Is(err, ErrValueTooLarge) {
				t.Fatalf("Resolve error = %v, want %v", err, ErrValueTooLarge)
			}
		})
	}
}

func TestResolve_ConcurrentUse(t *testing.T) {
	s, err := Compile([]Arg{{Name: "event", Value: `{{ header "X-GitHub-Event" }}:{{ .body.ref }}`}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				out, err := s.Resolve(pushData())
				if err != nil || out["event"] != "push:refs/heads/main" {
					t.Errorf("Resolve = %v, %v", out, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCompile_NamesTheArg(t *testing.T) {
	tests := []struct {
		name string
		args []Arg
		want string
	}{
		{"parse error", []Arg{{Name: "topic", Value: "x"}, {Name: "ref", Value: "{{ .body.ref"}}, "args[1] (ref): template: ref:1: unclosed action"},
		{"unknown function", []Arg{{Name: "ref", Value: "{{ nope .body }}"}}, `args[0] (ref): template: ref:1: function "nope" not defined`},
		{"duplicate name", []Arg{{Name: "a", Value: "x"}, {Name: "a", Value: "y"}}, "args[1] (a): duplicate name"},
		{"empty name", []Arg{{Value: "x"}}, "args[0] (): name is empty"},
		{"define", []Arg{{Name: "a", Value: `{{ define "t" }}x{{ end }}`}}, "args[0] (a): " + errDefine.Error()},
		{"template", []Arg{{Name: "a", Value: `{{ template "a" . }}`}}, "args[0] (a): " + errDefine.Error()},
		{"block", []Arg{{Name: "a", Value: `{{ block "t" . }}x{{ end }}`}}, "args[0] (a): " + errDefine.Error()},
		{"range over a number", []Arg{{Name: "a", Value: `{{ range 1000000000 }}{{ end }}`}}, "args[0] (a): " + errNumber.Error()},
		{"number through or", []Arg{{Name: "a", Value: `{{ range or .body.n 1000000000 }}{{ end }}`}}, "args[0] (a): " + errNumber.Error()},
		{"number in a variable", []Arg{{Name: "a", Value: `{{ $n := 9 }}{{ with .body }}{{ range (($n)) }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNumber.Error()},
		{"number in parentheses", []Arg{{Name: "a", Value: `{{ if .body }}{{ range (1000) }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNumber.Error()},
		{"range in a range over $", []Arg{{Name: "a", Value: "x"}, {Name: "b", Value: `{{ range .body.a }}{{ range $.body.a }}{{ end }}{{ end }}`}}, "args[1] (b): " + errNestedRange.Error()},
		{"range in a range in a range over $", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ range .b }}{{ range $.body.a }}{{ end }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over a variable set outside", []Arg{{Name: "a", Value: `{{ $all := .body.a }}{{ range .body.a }}{{ range $all }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over the outer element from an inner range", []Arg{{Name: "a", Value: `{{ range $e := .body.a }}{{ range .b }}{{ range $e.b }}{{ end }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over the index", []Arg{{Name: "a", Value: `{{ range $i, $e := .body.a }}{{ range $i }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over a number's dot", []Arg{{Name: "a", Value: `{{ range len .body.a }}{{ range . }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over a number through default", []Arg{{Name: "a", Value: `{{ range $n := .body.b | default (len .body.a) }}{{ range $n }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range in a with of $", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ with $.body }}{{ range .a }}{{ end }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range in an if, in a range", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ if . }}{{ range $.body.a }}{{ end }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range in a range's else", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ range .b }}{{ else }}{{ range $.body.a }}{{ end }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over a header's length", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ range len (header "X-Big") }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over a reassigned variable", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ $e := . }}{{ $e = $.body.a }}{{ range $e }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
		{"range over a variable redeclared in parentheses", []Arg{{Name: "a", Value: `{{ range .body.a }}{{ $e := . }}{{ print ($e := $.body.a) }}{{ range $e }}{{ end }}{{ end }}`}}, "args[0] (a): " + errNestedRange.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.args)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Compile error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestCompile_AllowsNumbersAsFunctionArguments(t *testing.T) {
	for _, v := range []string{
		`{{ index .body.list 0 }}`,
		`{{ if gt (len .body.list) 2 }}many{{ else }}{{ printf "%03d" 7 }}{{ end }}`,
		`{{ range $i, $c := .body.commits }}{{ if lt $i 3 }}{{ $c.id }}{{ end }}{{ end }}`,
		`{{ slice .body.ref 0 4 }}`,
	} {
		if _, err := Compile([]Arg{{Name: "a", Value: v}}); err != nil {
			t.Errorf("Compile(%s): %v", v, err)
		}
	}
}

// A range inside a range may loop over its element: each element is then
// walked once more, which stays bounded by the body's size.
func TestCompile_AllowsRangeOverTheOuterElement(t *testing.T) {
	for _, v := range []string{
		`{{ range .body.commits }}{{ range .files }}{{ . }}{{ end }}{{ end }}`,
		`{{ range .body.matrix }}{{ range . }}{{ . }},{{ end }};{{ end }}`,
		`{{ range $i, $c := .body.commits }}{{ range $c.files }}{{ $i }}{{ $.body.ref }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ with .b }}{{ range . }}{{ end }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ $e := .b }}{{ if $e }}{{ range $e }}{{ end }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ range len .name }}x{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ range index . "tags" }}{{ end }}{{ range .b | default .c }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ range .b }}{{ range .c }}{{ end }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ end }}{{ range $.body.a }}{{ end }}{{ range len .body.a }}{{ . }}{{ end }}`,
		`{{ $all := .body.a }}{{ range $all }}{{ range . }}{{ end }}{{ end }}`,
	} {
		if _, err := Compile([]Arg{{Name: "a", Value: v}}); err != nil {
			t.Errorf("Compile(%s): %v", v, err)
		}
	}
}

func TestCheckDefaults(t *testing.T) {
	tests := []struct {
		name string
		args []Arg
		want string
	}{
		{"default only", []Arg{{Name: "a", Default: ptr("")}}, ""},
		{"value only", []Arg{{Name: "a", Value: "{{ .body.a }}"}}, ""},
		{"none", nil, ""},
		{"first offender named", []Arg{{Name: "a", Value: "x"}, {Name: "b"}, {Name: "c"}}, "args[1] (b): needs a default or a value"},
		{"literal value", []Arg{{Name: "c", Value: " "}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDefaults(tt.args)
			if got := errString(err); got != tt.want {
				t.Errorf("CheckDefaults = %q, want %q", got, tt.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A set whose arguments are all plain defaults needs no delivery data:
// Templated says so, and Resolve gives the defaults from empty data.
func TestSet_TemplatedOnlyWithAValueTemplate(t *testing.T) {
	plain, err := Compile([]Arg{{Name: "env", Default: ptr("prod")}})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Templated() {
		t.Fatal("a set of defaults reports a template")
	}
	out, err := plain.Resolve(Data{})
	if err != nil || out["env"] != "prod" {
		t.Fatalf("Resolve(empty) = %v, %v", out, err)
	}
	tmpl, err := Compile([]Arg{{Name: "env", Default: ptr("prod")}, {Name: "ref", Value: "{{ .body.ref }}"}})
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.Templated() {
		t.Fatal("a set with a value template reports none")
	}
}

// Some senders (.NET's UTF-8 encoders) start a JSON body with a byte order
// mark: it is still JSON.
func TestResolve_JSONAfterAByteOrderMark(t *testing.T) {
	d := NewData([]byte("\xEF\xBB\xBF"+`{"ref":"refs/heads/main"}`), "application/json", nil, nil, http.MethodPost, "w", "e")
	got, err := resolveOne(t, Arg{Value: `{{ .body.ref }}`}, d)
	if err != nil || got != "refs/heads/main" {
		t.Fatalf("Resolve = %q, %v; want refs/heads/main", got, err)
	}
}

// A value that is not UTF-8 (a Latin-1 form: name=Caf%E9) would reach the
// job with U+FFFD in place of its bytes, without a word (the run's records
// carry values as JSON text): the default applies, or resolution says why.
func TestResolve_AValueThatIsNotUTF8IsNoValue(t *testing.T) {
	d := NewData([]byte("name=Caf%E9"), "application/x-www-form-urlencoded", http.Header{}, nil, http.MethodPost, "form", "evt-1")
	if got, err := resolveOne(t, Arg{Value: `{{ .body.name }}`, Default: ptr("guest")}, d); err != nil || got != "guest" {
		t.Errorf("with a default: %q, %v; want the default", got, err)
	}
	if _, err := resolveOne(t, Arg{Value: `{{ .body.name }}`}, d); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("without a default: %v; want an error saying why", err)
	}
	ok := NewData([]byte("name=Caf%C3%A9"), "application/x-www-form-urlencoded", http.Header{}, nil, http.MethodPost, "form", "evt-1")
	if got, err := resolveOne(t, Arg{Value: `{{ .body.name }}`}, ok); err != nil || got != "Café" {
		t.Errorf("a UTF-8 form: %q, %v", got, err)
	}
}

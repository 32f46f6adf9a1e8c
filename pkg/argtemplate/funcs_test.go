package argtemplate

import (
	"strings"
	"testing"
	"time"
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
		{"toString null is no value", `[{{ toString .body.draft | default "" }}]`, "[]"},
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
	stored := map[string]string{"x-custom-id": "7"}
	h := headerFunc(&stored, &budget{left: baseWork})
	for _, name := range []string{"X-Custom-Id", "x-custom-id", "X-CUSTOM-ID"} {
		if got, err := h(name); got != "7" || err != nil {
			t.Errorf("header %q = %v, %v; want 7", name, got, err)
		}
	}
	if got, err := h("X-Other"); got != nil || err != nil {
		t.Errorf("header X-Other = %v, %v; want nil", got, err)
	}
}

// A missing key or null passed through a function that turns it into text
// is still no value: the argument takes its default (or default replaces
// it), not "", "<nil>" or "%!s(<nil>)".
func TestFuncs_NoValueThroughAFunctionTakesTheDefault(t *testing.T) {
	def := "DEF"
	for _, value := range []string{
		`{{ .body.branch | lower }}`, `{{ .body.branch | upper }}`, `{{ trim .body.branch }}`,
		`{{ .body.branch | toString }}`, `{{ toString .body.draft }}`,
		`{{ .body.branch | printf "%v" }}`, `{{ printf "%s" .body.branch }}`, `{{ printf "%s-%s" .body.ref .body.draft }}`,
		`{{ print .body.branch }}`, `{{ println .body.branch }}`,
		`{{ header "X-None" | lower }}`, `{{ .query.page | trim }}`,
	} {
		got, err := resolveOne(t, Arg{Value: value, Default: &def}, pushData())
		if err != nil || got != def {
			t.Errorf("%s = %q, %v; want the default %q", value, got, err, def)
		}
		if _, err := resolveOne(t, Arg{Value: value}, pushData()); err == nil {
			t.Errorf("%s without a default resolved; want an error", value)
		}
	}
	for value, want := range map[string]string{
		`{{ .body.branch | lower | default "main" }}`:            "main",
		`{{ header "X-None" | upper | default "none" }}`:         "none",
		`{{ printf "%s!" .body.ref }}`:                           "refs/heads/main!",
		`{{ if lower .body.branch }}set{{ else }}unset{{ end }}`: "unset",
		// Not printed, a text function gives "" for no value, as always.
		`{{ if eq (trim .body.missing) "" }}empty{{ else }}set{{ end }}`:   "empty",
		`{{ if ne (toString .body.draft) "" }}set{{ else }}empty{{ end }}`: "empty",
		`{{ len (toString .body.draft) }}`:                                 "0",
		`{{ join .body.repository.topics (lower .body.missing) }}`:         "gonats",
		`{{ printf "%s" (lower .body.missing) }}`:                          "",
	} {
		got, err := resolveOne(t, Arg{Value: value, Default: &def}, pushData())
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", value, got, err, want)
		}
	}
}

// A JSON number compares as a number with a number in the template (and
// with another JSON number), as text with a string.
func TestFuncs_JSONNumbersCompareAsNumbers(t *testing.T) {
	def := "DEF"
	d := NewData([]byte(`{"count": 5, "price": 2.50, "same": 5.0, "name": "octo", "ok": true, "none": null}`), "application/json", nil, nil, "POST", "w", "evt")
	for value, want := range map[string]string{
		`{{ if gt .body.count 3 }}big{{ else }}small{{ end }}`:   "big",
		`{{ if lt .body.count 3 }}small{{ else }}big{{ end }}`:   "big",
		`{{ if eq .body.count 5 }}five{{ end }}`:                 "five",
		`{{ if eq .body.count .body.same }}same{{ end }}`:        "same",
		`{{ if ne .body.count 4 }}not4{{ end }}`:                 "not4",
		`{{ if ge .body.price 2.5 }}ge{{ end }}`:                 "ge",
		`{{ if le .body.count 5 }}le{{ end }}`:                   "le",
		`{{ if eq .body.count "5" }}text{{ end }}`:               "text",
		`{{ if eq .body.name "octo" "cat" }}any{{ end }}`:        "any",
		`{{ if lt .body.name "z" }}before{{ end }}`:              "before",
		`{{ if eq .body.ok true }}yes{{ end }}`:                  "yes",
		`{{ if eq (len .body.name) 4 }}four{{ end }}`:            "four",
		`{{ if eq .body.none .body.missing }}both-none{{ end }}`: "both-none",
	} {
		got, err := resolveOne(t, Arg{Value: value, Default: &def}, d)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", value, got, err, want)
		}
	}
	// Exactly: ids past 2^53 differ in their last digits. Two JSON
	// numbers compare as numbers (text/template compared them as text).
	big := NewData([]byte(`{"id": 12345678901234567890, "id2": 12345678901234567891, "sid": 9007199254740993, "nine": 9, "ten": 10}`), "application/json", nil, nil, "POST", "w", "evt")
	for value, want := range map[string]string{
		`{{ if eq .body.id .body.id2 }}same{{ else }}differ{{ end }}`:         "differ",
		`{{ if eq .body.sid 9007199254740992 }}same{{ else }}differ{{ end }}`: "differ",
		`{{ if lt .body.id .body.id2 }}less{{ end }}`:                         "less",
		`{{ if lt .body.nine .body.ten }}less{{ end }}`:                       "less",
	} {
		got, err := resolveOne(t, Arg{Value: value, Default: &def}, big)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", value, got, err, want)
		}
	}
	// A float in the template equals the same decimal in the delivery.
	dec := NewData([]byte(`{"price": 0.1, "huge": 1e500}`), "application/json", nil, nil, "POST", "w", "evt")
	for value, want := range map[string]string{
		`{{ if eq .body.price 0.1 }}tenth{{ end }}`:         "tenth",
		`{{ if gt .body.huge 3 }}big{{ else }}not{{ end }}`: "DEF", // past float64: not a number
	} {
		got, err := resolveOne(t, Arg{Value: value, Default: &def}, dec)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", value, got, err, want)
		}
	}
	// Comparing what cannot be compared is an error: the default.
	for _, value := range []string{`{{ if lt .body.ok true }}x{{ end }}`, `{{ if gt .body.name 3 }}x{{ end }}`} {
		if got, err := resolveOne(t, Arg{Value: value, Default: &def}, d); err != nil || got != def {
			t.Errorf("%s = %q, %v; want the default", value, got, err)
		}
	}
}

// An HTTP job's body template has no default to fall back on: there the
// text functions still render a missing key as "", and numbers compare.
func TestRenderBody_TextFunctionsRenderNoValueAsEmpty(t *testing.T) {
	d := NewData([]byte(`{"count": 5}`), "application/json", nil, nil, "POST", "w", "evt")
	got, err := RenderBody(`[{{ .body.branch | lower }}|{{ toString .body.none }}|{{ if gt .body.count 3 }}big{{ end }}]`, d, nil)
	if err != nil || string(got) != "[||big]" {
		t.Fatalf("RenderBody = %q, %v; want [||big]", got, err)
	}
}

// A part of an HTTP job's body with no value (a missing body key, query
// parameter or header, a JSON null, a variable holding one) prints as "",
// as GitHub Actions or Helm render a missing value, not as text/template's
// "<no value>", which reached the job's endpoint. A delivery's own
// "<no value>" text is kept, and json of a missing value is still null.
func TestRenderBody_APartWithNoValuePrintsNothing(t *testing.T) {
	d := NewData([]byte(`{"count": 5, "draft": null, "note": "<no value>"}`), "application/json", nil, nil, "POST", "w", "evt")
	for tmpl, want := range map[string]string{
		`{"env": "{{ .query.env }}", "ref": "{{ .body.ref }}", "x": "{{ .header.X }}"}`: `{"env": "", "ref": "", "x": ""}`,
		`[{{ .body.draft }}|{{ .body.count }}|{{ .body.note }}|{{ json .body.ref }}]`:   `[|5|<no value>|null]`,
		`{{ $r := .body.ref }}[{{ $r }}]{{ with .body.ref }}x{{ else }}none{{ end }}`:   `[]none`,
		`{{ range .body.items }}{{ . }}{{ else }}[{{ .body.ref }}]{{ end }}`:            `[]`,
		`{{ if .body.count }}{{ .body.missing }}{{ end }}`:                              ``,
	} {
		got, err := RenderBody(tmpl, d, nil)
		if err != nil || string(got) != want {
			t.Errorf("RenderBody(%s) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

// A sender's huge number costs a comparison little: a long one is
// compared as a float64, not parsed exactly (which grows with the square of
// its digits); one past float64's range is no number (the default).
func TestFuncs_HugeNumbersCompareCheaply(t *testing.T) {
	def := "DEF"
	for digits, want := range map[string]string{
		"1" + strings.Repeat("0", 100): "big",
		strings.Repeat("7", 1<<20):     "DEF",
	} {
		d := NewData([]byte(`{"count": `+digits+`}`), "application/json", nil, nil, "POST", "w", "evt")
		start := time.Now()
		got, err := resolveOne(t, Arg{Value: `{{ if gt .body.count 3 }}big{{ end }}`, Default: &def}, d)
		if took := time.Since(start); err != nil || got != want || took > 500*time.Millisecond {
			t.Errorf("%d digits: %q, %v in %v; want %q, quickly (it took seconds when parsed exactly)", len(digits), got, err, took, want)
		}
	}
}

// Every text function whose result is printed, however reached, hands no
// value on; a variable gives "" (documented).
func TestFuncs_NoValueThroughPipelinesAndParentheses(t *testing.T) {
	def := "DEF"
	for value, want := range map[string]string{
		`{{ printf "%s" .body.x | upper }}`:      "DEF",
		`{{ .body.x | trim | lower }}`:           "DEF",
		`{{ (lower .body.x) }}`:                  "DEF",
		`{{ (.body.x | lower) }}`:                "DEF",
		`{{ .body.draft | toString | upper }}`:   "DEF",
		`{{ $v := lower .body.x }}[{{ $v }}]`:    "[]",
		`{{ .body.ref | trim | upper }}`:         "REFS/HEADS/MAIN",
		`{{ (printf "%s!" .body.ref) | lower }}`: "refs/heads/main!",
	} {
		got, err := resolveOne(t, Arg{Value: value, Default: &def}, pushData())
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", value, got, err, want)
		}
	}
}

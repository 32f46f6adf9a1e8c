package argtemplate

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// costlyData is a delivery of about 256 KiB whose parts a template can
// walk once per item of .body.a: 64Ki items, two 48 KiB strings, an object
// of 2,048 keys and 2,048 headers.
func costlyData() (Data, []byte) {
	var b strings.Builder
	b.WriteString(`{"a":[0`)
	b.WriteString(strings.Repeat(",0", 64<<10-1))
	b.WriteString(`],"s":"` + strings.Repeat("x", 48<<10) + `","t":"` + strings.Repeat("x", 48<<10) + `","m":{"k0":0`)
	for i := 1; i < 2048; i++ {
		fmt.Fprintf(&b, `,"k%d":0`, i)
	}
	b.WriteString(`}}`)
	h := http.Header{}
	for i := range 2048 {
		h.Set(fmt.Sprintf("X-Custom-%d", i), "v")
	}
	body := []byte(b.String())
	return NewData(body, "application/json", h, nil, http.MethodPost, "w", "evt"), body
}

// quadraticDeadline is how long a table of renderings that run out of
// work may take in all. They take a fraction of a second each (a few
// under the race detector); without a budget, minutes each.
const quadraticDeadline = 30 * time.Second

// before fails the test unless f returns before deadline. The rendering
// goes on in the background after a failure: text/template cannot be
// stopped.
func before[T any](t *testing.T, deadline time.Time, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(time.Until(deadline)):
		t.Fatalf("still rendering at the deadline")
		panic("unreachable")
	}
}

// A template that walks the whole delivery once per item of a list does
// work of the square of the body's size while printing nothing, so the
// output cap never stops it: the work budget does, default or not.
func TestResolve_QuadraticTemplateRunsOutOfWork(t *testing.T) {
	d, _ := costlyData()
	deadline := time.Now().Add(quadraticDeadline)
	for _, value := range []string{
		`{{ range .body.a }}{{ if eq (json $.body) "" }}x{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ $s := toString $.body }}{{ end }}`,
		`{{ range .body.a }}{{ if printf "%.0s" $.body }}x{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ $s := html $ }}{{ end }}`,
		`{{ range .body.a }}{{ if eq $.body.s $.body.t }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ $s := lower $.body.s }}{{ end }}`,
		`{{ range .body.a }}{{ $s := join $.body.a "," }}{{ end }}`,
		`{{ range .body.a }}{{ $v := index $.body.m $.body.s }}{{ end }}`,
		`{{ range .body.a }}{{ $v := header "X-None" }}{{ end }}`,
	} {
		t.Run(value, func(t *testing.T) {
			s, err := Compile([]Arg{{Name: "x", Value: value, Default: ptr("d")}})
			if err != nil {
				t.Fatal(err)
			}
			err = before(t, deadline, func() error {
				_, err := s.Resolve(d)
				return err
			})
			if !errors.Is(err, ErrTooMuchWork) || !strings.Contains(err.Error(), `arg "x": cannot resolve {{ range .body.a }}`) {
				t.Fatalf("Resolve error = %v, want %v naming the argument", err, ErrTooMuchWork)
			}
		})
	}
}

// A body template may nest ranges over the same data (only its output is
// capped): an inner range that prints nothing counts its iterations, and a
// range over an object its keys, even when it breaks at once.
func TestRenderBody_QuadraticTemplateRunsOutOfWork(t *testing.T) {
	d, body := costlyData()
	deadline := time.Now().Add(quadraticDeadline)
	for _, text := range []string{
		`{{ range .body.a }}{{ range $.body.a }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ range $.body.m }}{{ break }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ if eq (json $.payload) "" }}{{ end }}{{ end }}`,
	} {
		t.Run(text, func(t *testing.T) {
			err := before(t, deadline, func() error {
				_, err := RenderBody(text, d, map[string]any{"payload": string(body)})
				return err
			})
			if !errors.Is(err, ErrTooMuchWork) {
				t.Fatalf("RenderBody error = %v, want %v", err, ErrTooMuchWork)
			}
		})
	}
}

// The budget grows with the delivery: ordinary templates, and ones that
// walk a large body a few times over, render as they did on a body at
// a webhook's default limit (1 MiB).
func TestResolve_OrdinaryTemplatesFitTheBudgetOfALargeBody(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"topic":"AI startups","tags":["go","nats"],"items":[`)
	const items = 16 << 10
	for i := range items {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":"item-%05d","type":"%s","id":%d,"pad":"%s"}`, i, []string{"push", "tag"}[i%2], i, strings.Repeat("p", 20))
	}
	b.WriteString(`]}`)
	body := b.String()
	d := NewData([]byte(body), "application/json", http.Header{"X-Github-Event": {"push"}}, nil, http.MethodPost, "w", "evt")
	tests := []struct {
		name, value, want string
	}{
		{"field", `{{ .body.topic }}`, "AI startups"},
		{"range over a few items", `{{ range $i, $e := .body.items }}{{ if lt $i 3 }}{{ .name }},{{ end }}{{ end }}`, "item-00000,item-00001,item-00002,"},
		{"filter every item", `{{ range .body.items }}{{ if and (eq .type "tag") (eq .name "item-16383") }}{{ .id }}{{ end }}{{ end }}`, "16383"},
		{"text function on every item", `{{ range .body.items }}{{ if eq (upper .type) "NONE" }}x{{ end }}{{ end }}done`, "done"},
		{"json of the body, twice", `{{ len (json .body) }} {{ len (toString .body) }}`, fmt.Sprintf("%d %d", len(body), len(body))},
		{"join", `{{ join .body.tags "," }}`, "go,nats"},
		{"header", `{{ header "x-github-event" }}`, "push"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveOne(t, Arg{Value: tt.value}, d)
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Logf("body of %d bytes", len(body))
}

// String and Float64, which text/template calls itself (uncounted), would
// render or parse a whole value once per iteration.
func TestCompile_RefusesCostlyMethodsWithinARange(t *testing.T) {
	for _, value := range []string{
		`{{ range .body.a }}{{ if $.body.String }}x{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ $.body.n.Float64 }}{{ end }}`,
		`{{ range .body.a }}{{ .String }}{{ end }}`,
		`{{ $b := .body }}{{ range .body.a }}{{ with $b.String }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ if eq (index $.body 0).String "" }}{{ end }}{{ end }}`,
		`{{ range .body.a }}{{ range .b }}{{ else }}{{ len $.body.String }}{{ end }}{{ end }}`,
	} {
		if _, err := Compile([]Arg{{Name: "a", Value: value}}); !errors.Is(err, errMethod) {
			t.Errorf("Compile(%s) = %v, want %v", value, err, errMethod)
		}
		if _, err := BodyTemplate(value); !errors.Is(err, errMethod) {
			t.Errorf("BodyTemplate(%s) = %v, want %v", value, err, errMethod)
		}
	}
	// Outside a range each runs once; index reads a key of that name.
	for _, value := range []string{
		`{{ .body.String }}`,
		`{{ range .body.a }}{{ end }}{{ .body.n.Float64 }}`,
		`{{ range .body.a }}{{ else }}{{ .body.String }}{{ end }}`,
		`{{ range .body.a }}{{ index . "String" }}{{ toString $.body.x }}{{ end }}`,
	} {
		if _, err := Compile([]Arg{{Name: "a", Value: value}}); err != nil {
			t.Errorf("Compile(%s) = %v", value, err)
		}
	}
}

// join charges its output before making it: a sender's long separator
// between a sender's many parts (output growing with the square of the
// body) runs out of work without the output being built. 60 MB were
// allocated for a 28 KB body, then refused.
func TestJoin_ChargesItsOutputBeforeMakingIt(t *testing.T) {
	body := []byte(`{"list":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 2000), ",") + `],"sep":"` + strings.Repeat("x", 20<<10) + `"}`)
	d := NewData(body, "application/json", nil, nil, http.MethodPost, "w", "evt")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := RenderBody(`{{ join .body.list .body.sep }}`, d, nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooMuchWork) {
		t.Fatalf("a 40 MB join: %v; want ErrTooMuchWork", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("a join refused for its size allocated %d bytes first", alloc)
	}
	// A join within the budget still joins.
	got, err := RenderBody(`{{ join .body.list "," | len }}`, d, nil)
	if err != nil || string(got) != "3999" {
		t.Fatalf("a small join: %q, %v", got, err)
	}
}

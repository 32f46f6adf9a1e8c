package argtemplate

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

// fuzzArgs are templates of the kinds operators write; FuzzResolve renders
// hostile bodies through them. All have defaults, so Resolve may only fail
// on the size or work limit.
var fuzzArgs = []Arg{
	{Name: "ref", Default: ptr("main"), Value: `{{ .body.ref }}`},
	{Name: "nested", Default: ptr("-"), Value: `{{ .body.repository.owner.login | lower }}`},
	{Name: "json", Default: ptr("{}"), Value: `{{ json .body }}`},
	{Name: "whole", Default: ptr(""), Value: `{{ .body }}`},
	{Name: "list", Default: ptr(""), Value: `{{ range .body.commits }}{{ .id }} {{ end }}`},
	{Name: "joined", Default: ptr(""), Value: `{{ .body.tags | join "," }}`},
	{Name: "event", Default: ptr("none"), Value: `{{ header "X-GitHub-Event" | default "ping" }}`},
	{Name: "first", Default: ptr(""), Value: `{{ index .body 0 }}`},
	{Name: "str", Default: ptr(""), Value: `{{ toString .body.n | upper | trim }}`},
}

func FuzzResolve(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main","repository":{"owner":{"login":"Octo"}},"commits":[{"id":"a"}],"tags":["x",1,null]}`), "application/json", "push")
	f.Add([]byte(`[1,2,{"a":[]}]`), "", "")
	f.Add([]byte(`{"n":12345678901234567890123}`), "application/json", "")
	f.Add([]byte(`a=1&ref=x`), "application/x-www-form-urlencoded", "")
	f.Add([]byte(`not json {{ .body }}`), "text/plain", "<no value>")
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`), "application/json", "")
	f.Add([]byte("\xff\xfe{\"ref\":\"\\ud800\"}"), "application/json", "")
	s, err := Compile(fuzzArgs)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType, event string) {
		d := NewData(body, contentType, http.Header{"X-Github-Event": {event}}, url.Values{"q": {event}}, "POST", "w", "e")
		out, err := s.Resolve(d)
		if err != nil {
			if !errors.Is(err, ErrValueTooLarge) && !errors.Is(err, ErrTooMuchWork) {
				t.Fatalf("Resolve: %v", err)
			}
			return
		}
		for _, a := range fuzzArgs {
			v, ok := out[a.Name]
			if !ok || len(v) > MaxValueBytes {
				t.Fatalf("arg %s: %q, %v", a.Name, v, ok)
			}
		}
	})
}

func FuzzCompileTemplate(f *testing.F) {
	for _, a := range fuzzArgs {
		f.Add(a.Value)
	}
	f.Add(`{{ .body.ref`)
	f.Add(`{{ range 100 }}x{{ end }}`)
	f.Add(`{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}`)
	f.Add(`{{ if gt (len .body) 1 }}{{ index .body 1 }}{{ else }}{{ printf "%05d" 3 }}{{ end }}`)
	f.Add(`{{ with $x := .body }}{{ range $k, $v := $x }}{{ $k }}={{ $v }};{{ break }}{{ end }}{{ end }}`)
	f.Add(`{{/* comment */}}{{- .method -}}{{ .query.q | default (header "x") }}`)
	d := NewData([]byte(`{"ref":"r","list":[1,"a",{"b":null}],"n":3}`), "application/json",
		http.Header{"X-A": {"1"}}, url.Values{"q": {"v"}}, "POST", "w", "e")
	f.Fuzz(func(t *testing.T, value string) {
		s, err := Compile([]Arg{{Name: "a", Value: value, Default: ptr("d")}})
		if err != nil {
			return
		}
		// Anything that compiles must render, or fall back, without
		// panicking or looping beyond the data.
		out, err := s.Resolve(d)
		if err == nil && len(out["a"]) > MaxValueBytes {
			t.Fatalf("value of %d bytes", len(out["a"]))
		}
	})
}

package argtemplate

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkResolve measures ordinary templates over a body of 200 items:
// the work budget adds no allocation per function call or iteration.
func BenchmarkResolve(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"topic":"AI","items":[`)
	for i := range 200 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"name":"n%d","type":"push","id":%d}`, i, i)
	}
	body.WriteString(`]}`)
	d := NewData([]byte(body.String()), "application/json", nil, nil, http.MethodPost, "w", "evt")
	for _, value := range []string{
		`{{ .body.topic }}`,
		`{{ range .body.items }}{{ .name }},{{ end }}`,
		`{{ json .body }}`,
		`{{ range .body.items }}{{ if eq .type "push" }}{{ .id }}{{ end }}{{ end }}`,
	} {
		s, err := Compile([]Arg{{Name: "x", Value: value}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(value, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Resolve(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package filter

import (
	"bytes"
	"encoding/json"
	"net/url"

	"github.com/hookrun/hookrun/pkg/payload"
)

// maxDepth is the deepest JSON nesting decoded; a deeper body is kept as a
// string so a hostile sender cannot make evaluation walk a deep tree.
const maxDepth = 64

// decodeBody turns the raw body into the value of the body variable; see
// the package documentation for the rules.
func decodeBody(body []byte, contentType string) any {
	body = payload.TrimBOM(body)
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}
	}
	if doc, ok := payload.FormJSON(body, contentType); ok {
		body = doc
	} else if payload.IsForm(contentType) {
		if v, err := url.ParseQuery(string(body)); err == nil {
			return firstValues(v)
		}
		return string(body)
	}
	if depth(body) > maxDepth {
		return string(body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return string(body)
	}
	if v == nil { // a literal null filters like an empty body
		return map[string]any{}
	}
	return v
}

// depth returns the maximum nesting of arrays and objects in data, which
// need not be valid JSON. Brackets inside strings do not count.
func depth(data []byte) int {
	var d, most int
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			d++
			most = max(most, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return most
}

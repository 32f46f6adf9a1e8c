// Package payload holds the rules by which a delivery's body is read as
// JSON where its content type says otherwise. Filters (pkg/filter) and job
// argument templates (pkg/argtemplate) apply them alike.
package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"
)

// FormJSON returns the JSON document an application/x-www-form-urlencoded
// body carries, if it carries one:
//
//   - the body itself, when it is a JSON object or array: what `curl -d`
//     sends, with the form content type it sets by default;
//   - the value of its only field, "payload", when that is JSON: GitHub's
//     form content type for webhooks and Slack's interactive payloads.
//
// Any other body, and a body of another content type, is not (ok false).
func FormJSON(body []byte, contentType string) (doc []byte, ok bool) {
	if !IsForm(contentType) {
		return nil, false
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		return t, true
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || len(v) != 1 || len(v["payload"]) != 1 {
		return nil, false
	}
	p := []byte(v["payload"][0])
	if t := bytes.TrimSpace(p); len(t) == 0 || t[0] != '{' && t[0] != '[' || !json.Valid(t) {
		return nil, false
	}
	return p, true
}

// IsForm reports whether a Content-Type names a URL-encoded form.
func IsForm(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt == "application/x-www-form-urlencoded"
}

// utf8BOM is the byte order mark some senders (.NET's UTF-8 encoders among
// them) put before a JSON document.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// TrimBOM returns body without a leading UTF-8 byte order mark, so that a
// JSON document that starts with one is read as JSON (RFC 8259 lets a
// parser ignore it), not as text.
func TrimBOM(body []byte) []byte { return bytes.TrimPrefix(body, utf8BOM) }

// MaxDepth is the deepest JSON nesting filters and templates decode; a
// deeper body is kept as text.
const MaxDepth = 64

// Depth returns the maximum nesting of arrays and objects in data, which
// need not be valid JSON. Brackets inside strings do not count.
func Depth(data []byte) int {
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

// Descriptions of a body that is not a JSON object, for an error that
// would otherwise read as if a key were missing from one: filters and
// templates decode bodies alike, each into its own types, and say the same
// of them (NotAnObject).

// EmptyKind describes raw, a body decoded as an empty object: "the body is
// empty", "the body is JSON null", or "" when it is an object ({}).
func EmptyKind(raw []byte) string {
	switch trimmed := bytes.TrimSpace(TrimBOM(raw)); {
	case len(trimmed) == 0:
		return "the body is empty"
	case string(trimmed) == "null":
		return "the body is JSON null"
	}
	return ""
}

// TextKind describes raw, a body decoded as text: nested past MaxDepth, a
// JSON string, or text.
func TextKind(raw []byte) string {
	switch raw = TrimBOM(raw); {
	case Depth(raw) > MaxDepth:
		return fmt.Sprintf("the body is text (JSON nested deeper than %d levels is not decoded)", MaxDepth)
	case json.Valid(raw):
		return "the body is a JSON string"
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		// Meant as JSON and broken (cut short, a stray comma): "text"
		// alone sent senders looking at their Content-Type.
		var v any
		if err := json.Unmarshal(t, &v); err != nil {
			return "the body is text: it is not valid JSON (" + err.Error() + ")"
		}
	}
	return "the body is text"
}

// NotAnObject is kind ("the body is text", …) with the body's content
// type and size: "the body is text, not a JSON object (Content-Type
// text/plain, 5 bytes)".
func NotAnObject(kind, contentType string, size int) string {
	if contentType == "" {
		contentType = "none"
	}
	return fmt.Sprintf("%s, not a JSON object (Content-Type %s, %d bytes)", kind, contentType, size)
}

// Package payload holds the rules by which a delivery's body is read as
// JSON where its content type says otherwise. Filters (pkg/filter) and job
// argument templates (pkg/argtemplate) apply them alike.
package payload

import (
	"bytes"
	"encoding/json"
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

package filter

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hookrun/hookrun/pkg/payload"
)

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
	if payload.Depth(body) > payload.MaxDepth {
		return string(body)
	}
	if !json.Valid(body) {
		return string(body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(body)
	}
	if v == nil { // a literal null filters like an empty body
		return map[string]any{}
	}
	return numbers(v)
}

// numbers replaces the json.Numbers in v, in place, with CEL's numbers: an
// integer (a number written without a fraction or an exponent) that fits
// int64 becomes an int, a larger positive one a uint, anything else a
// double. Decoded as float64, as json.Unmarshal does, an id past 2^53
// would equal its neighbours (1234567890123456789 ==
// 1234567890123456700), letting another account through an allow-list,
// and string(body.id) would print 7.0815329e+08.
func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return u
		}
		// Valid JSON, so it parses; one beyond float64's range is ±Inf.
		f, _ := strconv.ParseFloat(string(v), 64)
		return f
	}
	return v
}

// notAnObject describes the body when it is not a JSON object (nor a
// form), for an evaluation error, which would otherwise read as if a key
// were missing from an object: "the body is text, not a JSON object
// (Content-Type text/plain, 5 bytes)". It is "" for an object.
func notAnObject(in Input, body any) string {
	var kind string
	switch v := body.(type) {
	case map[string]any:
		if len(v) > 0 {
			return ""
		}
		if len(bytes.TrimSpace(payload.TrimBOM(in.Body))) == 0 && in.Method == http.MethodGet {
			return "a GET request has no body"
		}
		if kind = payload.EmptyKind(in.Body); kind == "" {
			return ""
		}
	case map[string]string:
		return ""
	case string:
		kind = payload.TextKind(in.Body)
	case []any:
		kind = "the body is a JSON array"
	case bool:
		kind = "the body is a JSON boolean"
	default:
		kind = "the body is a JSON number"
	}
	return payload.NotAnObject(kind, in.ContentType, len(in.Body))
}

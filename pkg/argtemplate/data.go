package argtemplate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hookrun/hookrun/pkg/payload"
)

// Data is what an argument template sees. Build it with NewData.
type Data struct {
	// Body is the decoded body (see the package documentation); objects
	// and lists may also be given as map[string]any and []any.
	Body any
	// Header maps canonical header names to their first value.
	Header map[string]string
	// Query maps query parameters to their first value.
	Query map[string]string
	// Method is the HTTP method.
	Method string
	// Webhook is the webhook's name.
	Webhook string
	// EventID is the delivery's event id.
	EventID string

	// contentType and bodyBytes describe the raw body in errors
	// (notAnObject).
	contentType string
	bodyBytes   []byte

	// size is the delivery's size in bytes, which sizes the work budget
	// of its renderings (workFor); 0 when Data is built by hand.
	size int
}

// NewData builds the template data of one delivery. The body is decoded
// as JSON, with numbers kept as json.Number so big integers survive, when
// it parses; otherwise it is the raw text.
func NewData(body []byte, contentType string, h http.Header, q url.Values, method, webhook, eventID string) Data {
	header := make(map[string]string, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if _, dup := header[ck]; !dup && len(vs) > 0 {
			header[ck] = vs[0]
		}
	}
	d := Data{
		Body:    decodeBody(body, contentType),
		Header:  header,
		Query:   firstValues(q),
		Method:  method,
		Webhook: webhook,
		EventID: eventID,

		contentType: contentType,
		bodyBytes:   body,
	}
	d.size = len(body) + len(method) + len(webhook) + len(eventID)
	for _, m := range []map[string]string{d.Header, d.Query} {
		for k, v := range m {
			d.size += len(k) + len(v)
		}
	}
	return d
}

// root is the template's dot.
func (d Data) root() map[string]any {
	return map[string]any{
		"body":    wrap(d.Body),
		"header":  anyValues(d.Header),
		"query":   anyValues(d.Query),
		"method":  d.Method,
		"webhook": d.Webhook,
		"eventId": d.EventID,
	}
}

// anyValues gives a template a map[string]any, never a map[string]string:
// text/template reads a missing key of a map[string]string as "" when
// missing keys are zero (the second rendering, see the package
// documentation), which would pass for a value, while a missing key of a
// map[string]any has no value, as a missing body key has.
func anyValues(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func decodeBody(body []byte, contentType string) any {
	body = payload.TrimBOM(body)
	if len(bytes.TrimSpace(body)) == 0 {
		return jsonObject{}
	}
	if doc, ok := payload.FormJSON(body, contentType); ok {
		body = doc
	} else if payload.IsForm(contentType) {
		if v, err := url.ParseQuery(string(body)); err == nil {
			m := make(jsonObject, len(v))
			for k, s := range firstValues(v) {
				m[k] = s
			}
			return m
		}
		return string(body)
	}
	if payload.Depth(body) > payload.MaxDepth || !json.Valid(body) {
		return string(body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(body)
	}
	if v == nil {
		return jsonObject{}
	}
	return wrap(v)
}

func firstValues(q url.Values) map[string]string {
	m := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return m
}

// jsonObject and jsonList are decoded JSON objects and arrays. They print
// as JSON: text/template prints a fmt.Stringer with its String method.
type (
	jsonObject map[string]any
	jsonList   []any
)

func (o jsonObject) String() string { return mustJSON(o) }
func (l jsonList) String() string   { return mustJSON(l) }

func mustJSON(v any) string {
	s, err := toJSON(v)
	if err != nil {
		return err.Error()
	}
	return s
}

// wrap converts plain decoded JSON (map[string]any, []any, float64) into
// the types above. Values NewData produced are already converted.
func wrap(v any) any {
	switch v := v.(type) {
	case map[string]any:
		o := make(jsonObject, len(v))
		for k, e := range v {
			o[k] = wrap(e)
		}
		return o
	case []any:
		l := make(jsonList, len(v))
		for i, e := range v {
			l[i] = wrap(e)
		}
		return l
	case float64:
		return json.Number(strconv.FormatFloat(v, 'f', -1, 64))
	}
	return v
}

// notAnObject describes the body when it is not a JSON object (nor a
// form), for an error that would otherwise blame a key: text/template
// says "can't evaluate field topic in type interface {}" of .body.topic
// on a text body. It is "" for an object.
func (d Data) notAnObject() string {
	var kind string
	switch v := d.Body.(type) {
	case jsonObject:
		if len(v) > 0 {
			return ""
		}
		if kind = payload.EmptyKind(d.bodyBytes); kind == "" {
			return ""
		}
	case map[string]any:
		return ""
	case nil:
		return "there is no body"
	case string:
		kind = payload.TextKind(d.bodyBytes)
	case jsonList, []any:
		kind = "the body is a JSON array"
	case bool:
		kind = "the body is a JSON boolean"
	default:
		kind = "the body is a JSON number"
	}
	return payload.NotAnObject(kind, d.contentType, len(d.bodyBytes))
}

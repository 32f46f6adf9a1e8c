package argtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"text/template"
)

// funcs is the function set documented in the package comment. header is
// bound to one delivery's headers; Compile passes nil, only to declare it.
func funcs(header map[string]string) template.FuncMap {
	return template.FuncMap{
		"header":   headerFunc(header),
		"json":     toJSON,
		"default":  defaultFunc,
		"lower":    func(v any) string { return strings.ToLower(toString(v)) },
		"upper":    func(v any) string { return strings.ToUpper(toString(v)) },
		"trim":     func(v any) string { return strings.TrimSpace(toString(v)) },
		"join":     join,
		"toString": toString,
	}
}

// headerFunc looks a header up by name in any case. A missing header is
// nil, so it renders as no value and default can replace it.
func headerFunc(h map[string]string) func(string) any {
	return func(name string) any {
		if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
			return v
		}
		for k, v := range h {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return nil
	}
}

// toJSON marshals v without HTML escaping: values go to jobs, not pages.
func toJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// defaultFunc is `default D V`: V unless it is empty.
func defaultFunc(def, v any) any {
	if isEmpty(v) {
		return def
	}
	return v
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// toString renders v as text: strings as they are, objects and lists as
// JSON, null as "".
func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case fmt.Stringer:
		return v.String()
	case map[string]any, []any:
		return mustJSON(v)
	}
	return fmt.Sprint(v)
}

var errJoinArgs = errors.New("join: want a list and a separator string")

// join accepts `join LIST SEP` and the piped `LIST | join SEP`, which
// calls join SEP LIST.
func join(a, b any) (string, error) {
	list, sep := a, b
	if _, ok := a.(string); ok && isList(b) {
		list, sep = b, a
	}
	s, ok := sep.(string)
	if !ok || !isList(list) {
		return "", errJoinArgs
	}
	rv := reflect.ValueOf(list)
	parts := make([]string, rv.Len())
	for i := range parts {
		parts[i] = toString(rv.Index(i).Interface())
	}
	return strings.Join(parts, s), nil
}

func isList(v any) bool {
	if v == nil {
		return false
	}
	k := reflect.ValueOf(v).Kind()
	return k == reflect.Slice || k == reflect.Array
}

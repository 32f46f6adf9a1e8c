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
		"lower":    text(strings.ToLower),
		"upper":    text(strings.ToUpper),
		"trim":     text(strings.TrimSpace),
		"join":     join,
		"toString": text(func(s string) string { return s }),
		// The built-ins that print their arguments, so that a missing key
		// or null passed through them stays no value (see noValue).
		"print":   printing(fmt.Sprint),
		"println": printing(fmt.Sprintln),
		"printf": func(format string, args ...any) any {
			if noValue(args...) {
				return nil
			}
			return fmt.Sprintf(format, args...)
		},
		// The comparisons, so that a JSON number compares as a number.
		"eq": eq,
		"ne": func(a, b any) (bool, error) { r, err := eq(a, b); return !r, err },
		"lt": ordered(func(c int) bool { return c < 0 }),
		"le": ordered(func(c int) bool { return c <= 0 }),
		"gt": ordered(func(c int) bool { return c > 0 }),
		"ge": ordered(func(c int) bool { return c >= 0 }),
	}
}

// bodyFuncs is funcs for an HTTP job's body template, which has no
// default to fall back on and is rendered once, with missing keys as no
// value: there the text functions turn no value into "" (toString, lower,
// ...) or print it as fmt does (printf), as they always have.
func bodyFuncs(header map[string]string) template.FuncMap {
	m := funcs(header)
	m["lower"] = func(v any) string { return strings.ToLower(toString(v)) }
	m["upper"] = func(v any) string { return strings.ToUpper(toString(v)) }
	m["trim"] = func(v any) string { return strings.TrimSpace(toString(v)) }
	m["toString"] = toString
	m["print"], m["println"], m["printf"] = fmt.Sprint, fmt.Sprintln, fmt.Sprintf
	return m
}

// noValue reports whether any of args is no value (a missing key, read
// with missingkey=zero, or a JSON null). A function that turns its
// argument into text hands such a value on as no value, nil, rather than
// as "" or "<nil>": printed, it still makes the argument take its default
// (and default still replaces it), as it would printed directly.
func noValue(args ...any) bool {
	for _, a := range args {
		if a == nil {
			return true
		}
	}
	return false
}

// text makes a function of one value's text (toString) that hands no
// value on.
func text(f func(string) string) func(any) any {
	return func(v any) any {
		if v == nil {
			return nil
		}
		return f(toString(v))
	}
}

// printing is print or println handing no value on.
func printing(f func(...any) string) func(...any) any {
	return func(args ...any) any {
		if noValue(args...) {
			return nil
		}
		return f(args...)
	}
}

var errCompare = errors.New("incompatible types for comparison")

// number is v as a number: a Go number (a number in the template), or a
// JSON number from the delivery, which text/template's own comparisons
// see as a string and refuse to compare with 3.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case nil, string, bool:
		return 0, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// compare orders a and b: as numbers when both are (a JSON number
// included), else as strings (a JSON number compared with a string as its
// text, as before), or, for eq and ne only, as booleans or nil.
func compare(a, b any) (c int, orderable bool, err error) {
	na, aNum := number(a)
	nb, bNum := number(b)
	if aNum && bNum {
		switch {
		case na < nb:
			return -1, true, nil
		case na > nb:
			return 1, true, nil
		}
		return 0, true, nil
	}
	sa, aStr := asString(a)
	sb, bStr := asString(b)
	if aStr && bStr {
		return strings.Compare(sa, sb), true, nil
	}
	ba, aBool := a.(bool)
	bb, bBool := b.(bool)
	if aBool && bBool {
		if ba == bb {
			return 0, false, nil
		}
		return 1, false, nil
	}
	if a == nil || b == nil {
		if a == nil && b == nil {
			return 0, false, nil
		}
		return 1, false, nil
	}
	return 0, false, errCompare
}

func asString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case json.Number:
		return s.String(), true
	}
	return "", false
}

// eq is text/template's eq (a equal to any of bs) with compare's numbers.
func eq(a any, bs ...any) (bool, error) {
	if len(bs) == 0 {
		return false, errors.New("eq: missing argument for comparison")
	}
	for _, b := range bs {
		c, _, err := compare(a, b)
		if err != nil {
			return false, err
		}
		if c == 0 {
			return true, nil
		}
	}
	return false, nil
}

// ordered is lt, le, gt or ge over compare's order.
func ordered(ok func(int) bool) func(a, b any) (bool, error) {
	return func(a, b any) (bool, error) {
		c, orderable, err := compare(a, b)
		if err == nil && !orderable {
			err = errCompare
		}
		return err == nil && ok(c), err
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

package argtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
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
		// The comparisons, so that a JSON number compares as a number.
		"eq": eq,
		"ne": func(a, b any) (bool, error) { r, err := eq(a, b); return !r, err },
		"lt": ordered(func(c int) bool { return c < 0 }),
		"le": ordered(func(c int) bool { return c <= 0 }),
		"gt": ordered(func(c int) bool { return c > 0 }),
		"ge": ordered(func(c int) bool { return c >= 0 }),
	}
}

// noValueFuncs are the functions that turn a value into text. Where an
// argument value prints their result, a missing key or null given to them
// stays no value, so the argument takes its default as when the key is
// printed directly ({{ .body.branch | lower }}, {{ printf "%s" .body.x }}),
// not "" or "<nil>". markPrinted names them noValuePrefix+name there.
// Anywhere else (an argument to another function, a condition) they give
// "" (fmt's text for printf) for such a value, as they always have, so
// {{ if eq (trim .body.x) "" }} and {{ .body.x | lower | default "d" }}
// read as before. Body templates, which have no default, never use them.
var noValueFuncs = map[string]bool{"lower": true, "upper": true, "trim": true, "toString": true, "print": true, "println": true, "printf": true}

// noValuePrefix starts the names of noValueFuncs' variants. They are not
// among the functions a template is parsed with (execute adds them, as it
// adds printedFunc), so a value cannot call them itself.
const noValuePrefix = "_nv_"

// noValueVariants are noValueFuncs' variants, under their names.
func noValueVariants() template.FuncMap {
	return template.FuncMap{
		noValuePrefix + "lower":    text(strings.ToLower),
		noValuePrefix + "upper":    text(strings.ToUpper),
		noValuePrefix + "trim":     text(strings.TrimSpace),
		noValuePrefix + "toString": text(func(s string) string { return s }),
		noValuePrefix + "print":    printing(fmt.Sprint),
		noValuePrefix + "println":  printing(fmt.Sprintln),
		noValuePrefix + "printf": func(format string, args ...any) any {
			if noValue(args...) {
				return nil
			}
			return fmt.Sprintf(format, args...)
		},
	}
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

// number is v as an exact number: a Go number (a number in the template),
// or a JSON number from the delivery, which text/template's own
// comparisons see as a string and refuse to compare with 3. Exact, not a
// float64: ids past 2^53 (GitHub's, snowflakes) differ in their last
// digits.
func number(v any) (*big.Rat, bool) {
	switch n := v.(type) {
	case json.Number:
		return jsonNumber(string(n))
	case nil, string, bool:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return new(big.Rat).SetInt64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return new(big.Rat).SetUint64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return floatRat(rv.Float())
	}
	return nil, false
}

// maxExactDigits bounds the JSON numbers compared exactly: big.Rat's
// parsing grows with the square of the digits, and a sender could post a
// megabyte of them to a field a template compares (seconds of a
// dispatcher's CPU). Longer ones compare as float64s, as do exponents
// beyond maxExactExp.
const (
	maxExactDigits = 64
	maxExactExp    = 400
)

// jsonNumber is a JSON number as a Rat: exactly when short, else as the
// nearest float64 (infinite ones are not numbers).
func jsonNumber(n string) (*big.Rat, bool) {
	if i, err := strconv.ParseInt(n, 10, 64); err == nil {
		return new(big.Rat).SetInt64(i), true
	}
	if len(n) <= maxExactDigits {
		if _, exp, ok := strings.Cut(strings.ToLower(n), "e"); !ok || len(strings.TrimLeft(exp, "+-0")) <= 3 {
			if e, _ := strconv.Atoi(exp); !ok || e <= maxExactExp && e >= -maxExactExp {
				return new(big.Rat).SetString(n)
			}
		}
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, false
	}
	return floatRat(f)
}

// floatRat is f as the Rat of its shortest decimal form, so that 0.1 in
// a template equals 0.1 in a delivery.
func floatRat(f float64) (*big.Rat, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	return new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
}

// compare orders a and b: as numbers when both are (a JSON number
// included), else as strings (a JSON number compared with a string as its
// text), or, for eq and ne only, as booleans or nil.
func compare(a, b any) (c int, orderable bool, err error) {
	na, aNum := number(a)
	nb, bNum := number(b)
	if aNum && bNum {
		return na.Cmp(nb), true, nil
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
	return 0, false, fmt.Errorf("%w: %s and %s", errCompare, typeName(a), typeName(b))
}

// typeName names v's type as text/template's own comparison errors do.
func typeName(v any) string { return fmt.Sprintf("%T", v) }

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
			err = fmt.Errorf("%w: %s and %s", errCompare, typeName(a), typeName(b))
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

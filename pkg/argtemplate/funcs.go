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

// funcs is the function set documented in the package comment, and
// text/template's built-ins whose work grows with their arguments, in
// metered versions (builtins.go), all charging b: a FuncMap entry takes
// the place of a built-in of its name. header points to the rendered
// delivery's headers; Compile passes nil for both, only to declare the
// functions.
func funcs(header *map[string]string, b *budget) template.FuncMap {
	return template.FuncMap{
		"header":   headerFunc(header, b),
		"json":     b.json,
		"default":  defaultFunc,
		"lower":    b.lower,
		"upper":    b.upper,
		"trim":     b.trim,
		"join":     b.join,
		"toString": b.toString,
		// The comparisons, so that a JSON number compares as a number.
		"eq": b.eq,
		"ne": func(x, y any) (bool, error) { r, err := b.eq(x, y); return !r, err },
		"lt": b.ordered(func(c int) bool { return c < 0 }),
		"le": b.ordered(func(c int) bool { return c <= 0 }),
		"gt": b.ordered(func(c int) bool { return c > 0 }),
		"ge": b.ordered(func(c int) bool { return c >= 0 }),
		// The built-ins; len, slice, and, or, not and call take constant
		// time.
		"print":    b.metered(fmt.Sprint),
		"println":  b.metered(fmt.Sprintln),
		"printf":   b.printf,
		"html":     b.metered(template.HTMLEscaper),
		"js":       b.metered(template.JSEscaper),
		"urlquery": b.metered(template.URLQueryEscaper),
		"index":    b.index,
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

// addNoValueVariants adds noValueFuncs' variants to m, under their names,
// charging b as the originals do.
func addNoValueVariants(m template.FuncMap, b *budget) {
	m[noValuePrefix+"lower"] = text(b.lower)
	m[noValuePrefix+"upper"] = text(b.upper)
	m[noValuePrefix+"trim"] = text(b.trim)
	m[noValuePrefix+"toString"] = text(b.toString)
	m[noValuePrefix+"print"] = printing(b.metered(fmt.Sprint))
	m[noValuePrefix+"println"] = printing(b.metered(fmt.Sprintln))
	m[noValuePrefix+"printf"] = func(format string, args ...any) (any, error) {
		if noValue(args...) {
			return nil, nil
		}
		return b.printf(format, args...)
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
func text(f func(any) (string, error)) func(any) (any, error) {
	return func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		return f(v)
	}
}

// printing is print or println handing no value on.
func printing(f func(...any) (string, error)) func(...any) (any, error) {
	return func(args ...any) (any, error) {
		if noValue(args...) {
			return nil, nil
		}
		return f(args...)
	}
}

// lower, upper and trim are the text functions: v as text (toString),
// changed. Each walks the text once.
func (b *budget) lower(v any) (string, error) { return b.change(v, strings.ToLower) }
func (b *budget) upper(v any) (string, error) { return b.change(v, strings.ToUpper) }
func (b *budget) trim(v any) (string, error)  { return b.change(v, strings.TrimSpace) }

func (b *budget) change(v any, f func(string) string) (string, error) {
	s, err := b.toString(v)
	if err != nil {
		return "", err
	}
	return f(s), b.charge(len(s))
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

// eq is text/template's eq (x equal to any of ys) with compare's numbers.
func (b *budget) eq(x any, ys ...any) (bool, error) {
	if len(ys) == 0 {
		return false, errors.New("eq: missing argument for comparison")
	}
	for _, y := range ys {
		if err := b.charge(callWork + compareWork(x, y)); err != nil {
			return false, err
		}
		c, _, err := compare(x, y)
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
func (b *budget) ordered(ok func(int) bool) func(x, y any) (bool, error) {
	return func(x, y any) (bool, error) {
		if err := b.charge(callWork + compareWork(x, y)); err != nil {
			return false, err
		}
		c, orderable, err := compare(x, y)
		if err == nil && !orderable {
			err = fmt.Errorf("%w: %s and %s", errCompare, typeName(x), typeName(y))
		}
		return err == nil && ok(c), err
	}
}

// compareWork is what compare costs: texts compare up to the shorter's
// length, and a JSON number longer than maxExactDigits is parsed whole.
// Anything else compares in constant time.
func compareWork(a, b any) int {
	n := 0
	for _, v := range [2]any{a, b} {
		if s, ok := v.(json.Number); ok && len(s) > maxExactDigits {
			n += len(s)
		}
	}
	if sa, ok := asString(a); ok {
		if sb, ok := asString(b); ok {
			n += min(len(sa), len(sb))
		}
	}
	return n
}

// headerFunc looks a header up by name in any case. A missing header is
// nil, so it renders as no value and default can replace it. A name not
// found as given is compared with every header's, charged to b. *hp is
// read at each call: a renderer is bound once and renders many deliveries.
func headerFunc(hp *map[string]string, b *budget) func(string) (any, error) {
	return func(name string) (any, error) {
		h := *hp
		if err := b.charge(callWork); err != nil {
			return nil, err
		}
		if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
			return v, nil
		}
		if err := b.charge(len(h) * stepWork); err != nil {
			return nil, err
		}
		for k, v := range h {
			if strings.EqualFold(k, name) {
				return v, nil
			}
		}
		return nil, nil
	}
}

// json is toJSON, charged for the length of the JSON.
func (b *budget) json(v any) (string, error) {
	s, err := toJSON(v)
	if err != nil {
		return "", err
	}
	return s, b.charge(len(s) + callWork)
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

// toString is the toString function: the package's toString, charged for
// the text it makes, which a string, a number or a boolean has at hand.
func (b *budget) toString(v any) (string, error) {
	s := toString(v)
	switch v.(type) {
	case nil, string, json.Number, bool:
		return s, b.charge(callWork)
	}
	return s, b.charge(len(s) + callWork)
}

var errJoinArgs = errors.New("join: want a list and a separator string")

// join accepts `join LIST SEP` and the piped `LIST | join SEP`, which
// calls join SEP LIST.
func (b *budget) join(x, y any) (string, error) {
	list, sep := x, y
	if _, ok := x.(string); ok && isList(y) {
		list, sep = y, x
	}
	s, ok := sep.(string)
	if !ok || !isList(list) {
		return "", errJoinArgs
	}
	rv := reflect.ValueOf(list)
	parts := make([]string, rv.Len())
	size := 0
	for i := range parts {
		p, err := b.toString(rv.Index(i).Interface())
		if err != nil {
			return "", err
		}
		parts[i] = p
		size += len(p)
	}
	// Charged before it is made: the separator is repeated once per
	// part, and a sender's long separator between a sender's many parts
	// grows with the square of the body (60 MB of output for a 28 KB
	// body was made, then refused).
	if len(parts) > 1 {
		size += len(s) * (len(parts) - 1)
	}
	if err := b.charge(size + callWork); err != nil {
		return "", err
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

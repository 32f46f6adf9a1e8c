package argtemplate

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// printfNumber is a JSON number given to printf. A json.Number is a
// string to fmt, so %d printed %!d(json.Number=5) and %x the hex of its
// digits; printfNumber formats it as the number it is, exactly: an
// integer as a big.Int, under a float verb as a float64 (a big.Float past
// int64).
// %s, %v and %q print its text, as the number was sent.
type printfNumber json.Number

// maxPrintfDigits bounds the numbers printf formats other than as their
// text (%s, %v, %q): big.Int's parsing grows with the square of the
// digits, and a sender could post a megabyte of them. 4096 digits parse
// in microseconds, and no id or amount comes near.
const maxPrintfDigits = 4096

// floatPrec is the precision (bits of mantissa) with which an integer
// verb parses a number written with a fraction or an exponent (5.0, 5e3):
// exact for an integer of 20 digits.
const floatPrec = 128

// Format implements fmt.Formatter. A verb that does not suit the number
// (%d of 2.5, %t) prints fmt's %!verb(...) form, which printf turns into
// an error.
func (n printfNumber) Format(f fmt.State, verb rune) {
	s := string(n)
	switch {
	case verb == 's', verb == 'v', verb == 'q':
		fmt.Fprintf(f, fmt.FormatString(f, verb), s)
		return
	case len(s) > maxPrintfDigits:
		// Parsing it would take the time of its digits squared (a
		// megabyte of them: seconds of a dispatcher's CPU).
		fmt.Fprintf(f, "%%!%c(number of %d characters: at most %d)", verb, len(s), maxPrintfDigits)
		return
	}
	switch verb {
	case 'd', 'b', 'o', 'O', 'x', 'X', 'c', 'U':
		i, ok := n.integer()
		if !ok {
			fmt.Fprintf(f, "%%!%c(number=%s)", verb, s)
			return
		}
		switch verb {
		case 'c', 'U', 'O':
			if !i.IsInt64() {
				fmt.Fprintf(f, "%%!%c(number=%s)", verb, s)
				return
			}
			fmt.Fprintf(f, fmt.FormatString(f, verb), i.Int64())
		default:
			i.Format(f, verb)
		}
	case 'e', 'E', 'f', 'F', 'g', 'G':
		if i, ok := new(big.Int).SetString(s, 10); ok && !i.IsInt64() {
			// Past int64: as a big.Float, as exact as the integer.
			new(big.Float).SetPrec(uint(max(64, i.BitLen()))).SetInt(i).Format(f, verb)
			return
		}
		// As float64, so 2.345 rounds (%.2f) as it does in Go and
		// JavaScript. Valid JSON parses; past float64's range it is ±Inf.
		x, _ := strconv.ParseFloat(s, 64)
		fmt.Fprintf(f, fmt.FormatString(f, verb), x)
	default:
		fmt.Fprintf(f, "%%!%c(number=%s)", verb, s)
	}
}

// integer is n as an integer, when it is one (5, 5.0, 5e3; not 5.5).
// An integer written as such is parsed whole: its size is the sender's.
func (n printfNumber) integer() (*big.Int, bool) {
	if i, ok := new(big.Int).SetString(string(n), 10); ok {
		return i, true
	}
	x, ok := n.float()
	if !ok || !x.IsInt() {
		return nil, false
	}
	i, acc := x.Int(nil)
	return i, acc == big.Exact
}

// maxExp bounds the binary exponent of a number printfNumber formats from
// its float form: 1e999999999 is short to send but would print (%f) or
// expand (%d) to a billion digits. It is float64's range, and then some.
const maxExp = 1100

// float is n as a big.Float, unless it is beyond ±2^maxExp.
func (n printfNumber) float() (*big.Float, bool) {
	x, _, err := big.ParseFloat(string(n), 10, floatPrec, big.ToNearestEven)
	if err != nil || x.MantExp(nil) > maxExp {
		return nil, false
	}
	return x, true
}

// printfArgs wraps the JSON numbers among args as printfNumbers.
func printfArgs(args []any) []any {
	out := args
	for i, a := range args {
		if n, ok := a.(json.Number); ok {
			if &out[0] == &args[0] {
				out = append([]any(nil), args...)
			}
			out[i] = printfNumber(n)
		}
	}
	return out
}

// printfError reports a format that did not suit its arguments: fmt
// prints %!d(string=x), %!d(MISSING) or %!(EXTRA ...) in the text instead
// of failing, which would pass for a value. Those printed by the format
// itself or by an argument (a delivery may hold "%!", in a text or deep in
// an object) are not errors: the arguments are formatted again with their
// "%!" made "%?", and what is left is fmt's. Only a text holding "%!" pays
// for the second formatting, no more than the first.
func printfError(format string, args []any, out string) error {
	if !strings.Contains(out, "%!") {
		return nil
	}
	clean := out
	if cleaned, changed := withoutPercentBang(args); changed {
		clean = fmt.Sprintf(format, printfArgs(cleaned)...)
	}
	n := strings.Count(clean, "%!") - strings.Count(strings.ReplaceAll(format, "%%", "%"), "%!")
	if n <= 0 {
		return nil
	}
	// fmt's own reads %!d(...), %!(EXTRA ...) or %!(NOVERB); a text
	// argument's "100%!" does not.
	bad := out[strings.Index(out, "%!"):]
	for rest := bad; ; {
		i := strings.Index(rest, "%!")
		if i < 0 {
			break
		}
		if p := strings.IndexByte(rest[i:], '('); p == 2 || p == 3 {
			bad = rest[i:]
			break
		}
		rest = rest[i+2:]
	}
	if end := strings.IndexByte(bad, ')'); end >= 0 {
		bad = bad[:end+1]
	}
	return fmt.Errorf("format %q does not suit its arguments: %s", format, bad)
}

// withoutPercentBang is args with every "%!" in their texts, object keys
// and values made "%?", and whether any was.
func withoutPercentBang(args []any) ([]any, bool) {
	changed := false
	var clean func(v any) any
	clean = func(v any) any {
		switch v := v.(type) {
		case string:
			if strings.Contains(v, "%!") {
				changed = true
				return strings.ReplaceAll(v, "%!", "%?")
			}
		case jsonObject:
			o := make(jsonObject, len(v))
			for k, x := range v {
				o[clean(k).(string)] = clean(x)
			}
			return o
		case jsonList:
			l := make(jsonList, len(v))
			for i, x := range v {
				l[i] = clean(x)
			}
			return l
		case map[string]any:
			o := make(map[string]any, len(v))
			for k, x := range v {
				o[clean(k).(string)] = clean(x)
			}
			return o
		case []any:
			l := make([]any, len(v))
			for i, x := range v {
				l[i] = clean(x)
			}
			return l
		case map[string]string: // headers and query parameters
			o := make(map[string]string, len(v))
			for k, x := range v {
				o[clean(k).(string)] = clean(x).(string)
			}
			return o
		case []string:
			l := make([]string, len(v))
			for i, x := range v {
				l[i] = clean(x).(string)
			}
			return l
		}
		return v
	}
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = clean(a)
	}
	return out, changed
}

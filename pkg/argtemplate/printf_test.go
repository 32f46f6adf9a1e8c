package argtemplate

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const numbersBody = `{"count":5,"price":2.345,"id":12345678901234567891,"neg":-255,"whole":3.0,"huge":1e999999999,"pct":"100%!"}`

func numbersData() Data {
	return NewData([]byte(numbersBody), "application/json", http.Header{}, url.Values{}, http.MethodPost, "w", "evt-1")
}

func TestPrintf_FormatsJSONNumbersAsNumbers(t *testing.T) {
	tests := []struct {
		value, want string
	}{
		{`{{ printf "%d items" .body.count }}`, "5 items"},
		{`{{ printf "%05d" .body.count }}`, "00005"},
		{`{{ .body.count | printf "%03d" }}`, "005"},
		{`{{ printf "%x %X %o %b" .body.neg .body.neg .body.count .body.count }}`, "-ff -FF 5 101"},
		{`{{ printf "%d" .body.id }}`, "12345678901234567891"},
		{`{{ printf "%x" .body.id }}`, "ab54a98ceb1f0ad3"},
		{`{{ printf "%d" .body.whole }}`, "3"},
		{`{{ printf "%.2f" .body.price }}`, "2.35"},
		{`{{ printf "%.1f|%g|%e" .body.count .body.price .body.count }}`, "5.0|2.345|5.000000e+00"},
		{`{{ printf "%.0f" .body.id }}`, "12345678901234567891"},
		{`{{ printf "%s %v %q" .body.price .body.id .body.count }}`, `2.345 12345678901234567891 "5"`},
		{`{{ printf "%s" .body.pct }}`, "100%!"},
		{`{{ printf "100%%!" }}`, "100%!"},
	}
	for _, tt := range tests {
		got, err := resolveOne(t, Arg{Value: tt.value}, numbersData())
		if err != nil {
			t.Errorf("%s: %v", tt.value, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.value, got, tt.want)
		}
	}
}

func TestPrintf_FormatNotSuitingItsArgumentsIsAnError(t *testing.T) {
	tests := []struct {
		value, reason string
	}{
		{`{{ printf "%d" .body.price }}`, `%!d(number=2.345)`},
		{`{{ printf "%d" .body.huge }}`, `%!d(number=1e999999999)`},
		{`{{ printf "%t" .body.count }}`, `%!t(number=5)`},
		{`{{ printf "%d" .body.pct }}`, `%!d(string=100%!)`},
		{`{{ printf "%s %s" .body.pct }}`, `%!s(MISSING)`},
	}
	for _, tt := range tests {
		_, err := resolveOne(t, Arg{Value: tt.value}, numbersData())
		if err == nil || !strings.Contains(err.Error(), "does not suit its arguments: "+tt.reason) {
			t.Errorf("%s: error %v, want one naming %s", tt.value, err, tt.reason)
		}
		if err != nil && strings.Contains(err.Error(), noValuePrefix) {
			t.Errorf("%s: error %v names an internal function", tt.value, err)
		}
		got, err := resolveOne(t, Arg{Value: tt.value, Default: ptr("D")}, numbersData())
		if err != nil || got != "D" {
			t.Errorf("%s with a default = %q, %v; want the default", tt.value, got, err)
		}
	}
}

func TestRenderBody_PrintfFormatsJSONNumbers(t *testing.T) {
	out, err := RenderBody(`{"n": {{ printf "%d" .body.count }}, "p": {{ printf "%.2f" .body.price }}}`, numbersData(), nil)
	if err != nil || string(out) != `{"n": 5, "p": 2.35}` {
		t.Fatalf("RenderBody = %s, %v", out, err)
	}
	if _, err := RenderBody(`{{ printf "%d" .body.price }}`, numbersData(), nil); err == nil || !strings.Contains(err.Error(), "does not suit") {
		t.Fatalf("RenderBody of a bad format: %v, want an error", err)
	}
}

// A number too long to parse cheaply (big.Int's parsing grows with the
// square of its digits: a sender's megabyte of them took seconds of a
// dispatcher's CPU per printf) is refused at once, and takes the default;
// %s and %v still print its text.
func TestPrintf_ANumberOfTooManyDigitsIsRefusedAtOnce(t *testing.T) {
	long := strings.Repeat("7", 1<<20) // a 1 MiB body of digits
	data := NewData([]byte(`{"id":`+long+`}`), "application/json", http.Header{}, url.Values{}, http.MethodPost, "w", "evt-1")
	for _, verb := range []string{"%d", "%x", "%.2f", "%e"} {
		got, err := resolveOne(t, Arg{Value: `{{ printf "` + verb + `" .body.id }}`, Default: ptr("D")}, data)
		if err != nil || got != "D" {
			t.Errorf("%s of %d digits = %.20q, %v; want the default", verb, len(long), got, err)
		}
	}
	if got, err := resolveOne(t, Arg{Value: `{{ printf "%.5s" .body.id }}`}, data); err != nil || got != "77777" {
		t.Errorf("%%.5s = %q, %v", got, err)
	}
}

// A JSON object or list argument that holds "%!" in its values prints it
// as it is: that is not fmt complaining of the format.
func TestPrintf_AnObjectHoldingPercentBangIsNoError(t *testing.T) {
	d := NewData([]byte(`{"m": {"note": "100%!"}, "l": ["50%!", "x"]}`), "application/json", http.Header{}, url.Values{}, http.MethodPost, "w", "evt-1")
	for value, want := range map[string]string{
		`{{ printf "%v" .body.m }}`:          `{"note":"100%!"}`,
		`{{ printf "%v and %v" .body.l 1 }}`: `["50%!","x"] and 1`,
	} {
		got, err := resolveOne(t, Arg{Value: value}, d)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", value, got, err, want)
		}
	}
	// A real misfit beside such an object is still one, however the
	// object prints (%T and %x do not print its "%!").
	for _, value := range []string{`{{ printf "%v %d" .body.m "x" }}`, `{{ printf "%T %d" .body.m "x" }}`, `{{ printf "%x %d" .body.l "x" }}`, `{{ printf "%x %d" "50%!" "x" }}`} {
		if _, err := resolveOne(t, Arg{Value: value}, d); err == nil || !strings.Contains(err.Error(), "%!d(string=x)") {
			t.Errorf("%s: %v, want an error naming %%!d(string=x)", value, err)
		}
	}
}

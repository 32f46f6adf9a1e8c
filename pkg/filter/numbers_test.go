package filter

import (
	"context"
	"net/http"
	"testing"
)

// matchBody evaluates expr against a JSON body.
func matchBody(t *testing.T, expr, body string) (bool, error) {
	t.Helper()
	in := Input{Body: []byte(body), ContentType: "application/json", Header: http.Header{"X-Account": {"708153290"}}}
	return mustCompile(t, expr).Match(context.Background(), in)
}

func TestMatch_NumbersAreExact(t *testing.T) {
	tests := []struct {
		name string
		expr string
		body string
		want bool
	}{
		// As float64 both are 1234567890123456768: another account would
		// pass an allow-list.
		{"big id allow-list refuses a neighbour", `body.account_id == 1234567890123456789`, `{"account_id":1234567890123456700}`, false},
		{"big id allow-list admits the id", `body.account_id in [1234567890123456789, 42]`, `{"account_id":1234567890123456789}`, true},
		{"id past int64 is a uint", `body.id == 12345678901234567891u`, `{"id":12345678901234567891}`, true},
		{"id past int64 refuses a neighbour", `body.id == 12345678901234567890u`, `{"id":12345678901234567891}`, false},
		{"string of a 9-digit id", `string(body.id) == "708153290"`, `{"id":708153290}`, true},
		{"body id equals a header", `string(body.id) == header["X-Account"]`, `{"id":708153290}`, true},
		{"int arithmetic", `body.count + 1 == 4 && body.count % 2 == 1`, `{"count":3}`, true},
		{"int() still works", `int(body.count) + 1 == 4`, `{"count":3}`, true},
		{"double() for double arithmetic", `double(body.count) * 1.5 == 4.5`, `{"count":3}`, true},
		{"negative int", `body.n < 0 && body.n == -4`, `{"n":-4}`, true},
		// Comparisons with double literals read as before.
		{"int above double literal", `body.count > 2.5`, `{"count":3}`, true},
		{"int below double literal", `body.count < 2.5`, `{"count":3}`, false},
		{"int equals double literal", `body.count == 3.0`, `{"count":3}`, true},
		{"int not equal double literal", `body.count == 3.5`, `{"count":3}`, false},
		{"int in list of doubles", `body.count in [1.0, 3.0]`, `{"count":3}`, true},
		{"fraction is a double", `body.f > 2 && body.f < 2.6 && body.f == 2.5`, `{"f":2.5}`, true},
		{"fraction arithmetic", `body.f + 0.5 == 3.0`, `{"f":2.5}`, true},
		{"written with a fraction is a double", `body.x == 3 && body.x + 0.5 == 3.5`, `{"x":3.0}`, true},
		{"exponent is a double", `body.e == 1000 && body.e > 999.5`, `{"e":1e3}`, true},
		{"numbers in lists", `body.l.exists(x, x == 2) && body.l[1] > 1.5`, `{"l":[1,2.0,3]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := matchBody(t, tt.expr, tt.body)
			if err != nil {
				t.Fatalf("Match(%s): %v", tt.expr, err)
			}
			if got != tt.want {
				t.Errorf("Match(%s) on %s = %v, want %v", tt.expr, tt.body, got, tt.want)
			}
		})
	}
}

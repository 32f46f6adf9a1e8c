package filter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

func mustCompile(t *testing.T, expr string) *Program {
	t.Helper()
	p, err := Compile(expr)
	if err != nil {
		t.Fatalf("Compile(%q): %v", expr, err)
	}
	return p
}

const pushBody = `{"ref":"refs/heads/main","count":3,"repository":{"name":"hookrun","topics":["go","nats"]}}`

func pushInput() Input {
	return Input{
		Body:        []byte(pushBody),
		ContentType: "application/json",
		Header:      http.Header{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}},
		Query:       url.Values{"env": {"prod", "dev"}},
		Method:      http.MethodPost,
	}
}

func TestMatch_EvaluatesAgainstDelivery(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want bool
	}{
		{"api.md example", `header["X-GitHub-Event"] == "push" && body.ref == "refs/heads/main"`, true},
		{"other branch", `body.ref == "refs/heads/dev"`, false},
		{"nested field", `body.repository.name == "hookrun"`, true},
		{"list membership", `"nats" in body.repository.topics`, true},
		{"number equals int literal", `body.count == 3`, true},
		{"number compares with int", `body.count > 2 && body.count < 4`, true},
		{"query first value", `query.env == "prod"`, true},
		{"method", `method == "POST"`, true},
		{"has macro on missing field", `has(body.action) && body.action == "opened"`, false},
		{"optional missing field", `body.?action.orValue("none") == "none"`, true},
		{"strings extension", `body.ref.split("/")[2] == "main" && body.ref.lowerAscii().startsWith("refs/")`, true},
		{"literal true", `true`, true},
		{"dyn bool", `body.repository.name.size() > 0 ? true : false`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustCompile(t, tt.expr).Match(context.Background(), pushInput())
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatch_HeaderLookupIgnoresCase(t *testing.T) {
	in := Input{Header: http.Header{}}
	// Set the raw lower-case name, as an HTTP/2 peer or a hand-built
	// http.Header would, bypassing canonicalisation.
	in.Header["x-github-event"] = []string{"push", "ignored"}
	for _, expr := range []string{
		`header["X-GitHub-Event"] == "push"`,
		`header["x-github-event"] == "push"`,
		`header["X-GITHUB-EVENT"] == "push"`,
		`"X-GitHub-Event" in header`,
		`header[?"X-GitHub-Event"].orValue("") == "push"`,
		`header.exists(k, k == "X-Github-Event")`,
		`!("X-Other" in header)`,
	} {
		t.Run(expr, func(t *testing.T) {
			got, err := mustCompile(t, expr).Match(context.Background(), in)
			if err != nil || !got {
				t.Errorf("Match = %v, %v; want true, nil", got, err)
			}
		})
	}
}

func TestMatch_DecodesBodyByContent(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		expr        string
	}{
		{"text body is a string", "ping from cron", "text/plain", `body == "ping from cron" && body.contains("cron")`},
		{"invalid json is a string", `{"ref":`, "application/json", `body == "{\"ref\":"`},
		{"empty body is an empty map", "", "", `body.size() == 0`},
		{"json null is an empty map", "null", "application/json", `body.size() == 0`},
		{"json array", `[1,2,3]`, "application/json", `body.size() == 3 && body[0] == 1`},
		{"json without content type", `{"a":"b"}`, "", `body.a == "b"`},
		{"json after a byte order mark (.NET senders)", "\xEF\xBB\xBF{\"a\":\"b\"}", "application/json", `body.a == "b"`},
		{"form fields", "a=1&a=2&b=x", "application/x-www-form-urlencoded; charset=utf-8", `body.a == "1" && body.b == "x"`},
		// GitHub's form content type: the JSON is the payload field's value.
		{"GitHub form payload", "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22n%22%3A2%7D", "application/x-www-form-urlencoded", `body.ref == "refs/heads/main" && body.n == 2`},
		{"JSON sent as a form (curl -d)", `{"ref":"refs/heads/main"}`, "application/x-www-form-urlencoded", `body.ref == "refs/heads/main"`},
		{"too deep json is a string", strings.Repeat("[", 65) + strings.Repeat("]", 65), "application/json", `type(body) == string`},
		{"deep json within the limit", strings.Repeat("[", 64) + strings.Repeat("]", 64), "application/json", `type(body) == list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Body: []byte(tt.body), ContentType: tt.contentType}
			got, err := mustCompile(t, tt.expr).Match(context.Background(), in)
			if err != nil || !got {
				t.Errorf("Match = %v, %v; want true, nil", got, err)
			}
		})
	}
}

func TestCompile_RejectsBadExpressions(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want string
	}{
		{"syntax error", `body.ref ==`, "Syntax error"},
		{"unknown variable", `payload.ref == "x"`, "undeclared reference to 'payload'"},
		{"string result", `"push"`, "filter must evaluate to a bool"},
		{"int result", `1 + 2`, "filter must evaluate to a bool"},
		{"header value is a string", `header["X-Event"]`, "filter must evaluate to a bool"},
		{"type mismatch", `method == 1`, "no matching overload"},
		{"empty", ``, "Syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.expr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestMatch_NonBoolDynResultIsAnError(t *testing.T) {
	_, err := mustCompile(t, `body.ref`).Match(context.Background(), pushInput())
	if !errors.Is(err, ErrNotBool) {
		t.Fatalf("Match error = %v, want %v", err, ErrNotBool)
	}
}

func TestMatch_MissingFieldIsAnError(t *testing.T) {
	in := pushInput()
	in.Body = []byte(`{"action":"opened"}`)
	got, err := mustCompile(t, `body.ref == "refs/heads/main"`).Match(context.Background(), in)
	if got || err == nil || !strings.Contains(err.Error(), "no such key: ref") {
		t.Fatalf("Match = %v, %v; want false and a no such key error", got, err)
	}
}

func TestMatch_CostLimitStopsExpensiveExpression(t *testing.T) {
	in := Input{Body: []byte("[" + strings.Repeat("1,", 999) + "1]")}
	p := mustCompile(t, `body.all(x, body.all(y, body.all(z, x + y + z > 0)))`)
	start := time.Now()
	got, err := p.Match(context.Background(), in)
	if got || err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("Match = %v, %v; want false and a cost limit error", got, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Match took %v; the cost limit should stop it sooner", d)
	}
}

// itemsBody is a JSON object whose items list holds n objects {"n":"y"},
// about 10 bytes each.
func itemsBody(n int) []byte {
	return []byte(`{"items":[` + strings.Repeat(`{"n":"y"},`, n-1) + `{"n":"y"}]}`)
}

// numbersBody is the densest JSON body of at most size bytes: a list of
// zeros, 2 bytes an element, so the most elements a pass can go over.
func numbersBody(size int) []byte {
	return []byte("[" + strings.Repeat("0,", (size-2)/2) + "0]")
}

func TestMatch_LinearPassOverLargeBodyFitsCostLimit(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		expr string
		want bool
	}{
		// About 1.5 MB: over the floor of CostLimit on its own.
		{"exists over 150,000 items", itemsBody(150_000), `body.items.exists(i, i.n == "x")`, false},
		{"all over 150,000 items", itemsBody(150_000), `body.items.all(i, i.n == "y")`, true},
		{"map over 150,000 items", itemsBody(150_000), `body.items.map(i, i.n).size() == 150000`, true},
		// 2 million elements; the two passes cost about 23 million.
		{"two passes over the largest body a webhook takes", numbersBody(resource.MaxBodyBytes), `body.all(x, x == 0) && !body.exists(x, x > 0 && x < 10 || x == 20)`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Body: tt.body, ContentType: "application/json"}
			got, err := mustCompile(t, tt.expr).Match(context.Background(), in)
			if err != nil || got != tt.want {
				t.Fatalf("Match over %d bytes = %v, %v; want %v, nil", len(tt.body), got, err, tt.want)
			}
		})
	}
}

func TestMatch_CostLimitStopsNestedComprehensionOverLargeBody(t *testing.T) {
	in := Input{Body: itemsBody(150_000), ContentType: "application/json"}
	// 150,000² iterations: stopped at a limit of 13 million, about a
	// second here (no time bound: the race detector makes it several).
	p := mustCompile(t, `body.items.exists(i, body.items.exists(j, i.n == j.n + "x"))`)
	got, err := p.Match(context.Background(), in)
	if got || err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("Match = %v, %v; want false and a cost limit error", got, err)
	}
	if want := fmt.Sprintf("limit %d for a body of %d bytes", costLimit(len(in.Body)), len(in.Body)); !strings.Contains(err.Error(), want) {
		t.Errorf("Match error = %v; want it to name the %s", err, want)
	}
}

func TestCostLimit_ScalesWithBody(t *testing.T) {
	tests := []struct {
		bytes int
		want  uint64
	}{
		{0, CostLimit},
		{1, CostLimit},
		{CostLimit / CostPerBodyByte, CostLimit},
		{CostLimit/CostPerBodyByte + 1, 2 * CostLimit},
		{1_500_000, 12 * CostLimit},
		{resource.MaxBodyBytes, cachedLimits * CostLimit},
		{2 * resource.MaxBodyBytes, 68 * CostLimit},
	}
	for _, tt := range tests {
		if got := costLimit(tt.bytes); got != tt.want {
			t.Errorf("costLimit(%d) = %d, want %d", tt.bytes, got, tt.want)
		}
	}
	// A limit past those a Program keeps still evaluates.
	body := []byte(strings.Repeat("a", 2*resource.MaxBodyBytes))
	got, err := mustCompile(t, `body.size() > 0`).Match(context.Background(), Input{Body: body, ContentType: "text/plain"})
	if err != nil || !got {
		t.Fatalf("Match over a body past the cached limits = %v, %v; want true, nil", got, err)
	}
}

func TestMatch_StopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := Input{Body: []byte("[" + strings.Repeat("1,", 999) + "1]")}
	got, err := mustCompile(t, `body.all(x, x == 1)`).Match(ctx, in)
	if got || !errors.Is(err, context.Canceled) {
		t.Fatalf("Match = %v, %v; want false and context.Canceled", got, err)
	}
}

func TestMatch_ConcurrentUse(t *testing.T) {
	p := mustCompile(t, `header["X-GitHub-Event"] == "push" && body.ref == "refs/heads/main"`)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			var err error
			for range 50 {
				if ok, e := p.Match(context.Background(), pushInput()); e != nil || !ok {
					err = errors.Join(e, errors.New("no match"))
				}
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

package filter

import (
	"context"
	"net/http"
	"testing"
)

// fuzzExprs are filters of the kinds users write; FuzzFilterMatch runs a
// hostile body and header against each.
var fuzzExprs = []string{
	`header["X-GitHub-Event"] == "push" && body.ref == "refs/heads/main"`,
	`has(body.action) && body.action in ["opened", "synchronize"]`,
	`body.?pull_request.?number.orValue(0) > 10`,
	`body.exists(k, k.startsWith("x"))`,
	`body.size() > 2`,
	`string(body).contains("deploy")`,
	`body.commits.all(c, c.message.lowerAscii().contains("fix"))`,
	`body.map(x, body.map(y, x)).size() > 0`,
	`header.exists(k, header[k].matches("^[a-z]+$"))`,
	`type(body) == string && body.split(",").size() > 1`,
}

func FuzzFilterMatch(f *testing.F) {
	f.Add(uint8(0), []byte(`{"ref":"refs/heads/main"}`), "application/json", "X-GitHub-Event", "push")
	f.Add(uint8(1), []byte(`{"action":"opened"}`), "", "x-github-event", "pull_request")
	f.Add(uint8(2), []byte(`{"pull_request":{"number":42}}`), "application/json", "", "")
	f.Add(uint8(4), []byte(`a=1&b=2&c=3`), "application/x-www-form-urlencoded", "", "")
	f.Add(uint8(7), []byte(`[1,2,3,4,5,6,7,8,9,10]`), "application/json", "", "")
	f.Add(uint8(9), []byte(`a,b,c`), "text/plain", "X-A", "abc")
	f.Add(uint8(3), []byte(`[[[[[[[[[[]]]]]]]]]]`), "", "", "")
	f.Fuzz(func(t *testing.T, i uint8, body []byte, contentType, hname, hvalue string) {
		p, err := Compile(fuzzExprs[int(i)%len(fuzzExprs)])
		if err != nil {
			t.Fatal(err)
		}
		in := Input{Body: body, ContentType: contentType, Header: http.Header{hname: {hvalue}}, Method: "POST"}
		got, err := p.Match(context.Background(), in)
		if err != nil && got {
			t.Fatalf("Match = true with error %v", err)
		}
		again, err2 := p.Match(context.Background(), in)
		if again != got || (err == nil) != (err2 == nil) {
			t.Fatalf("Match not deterministic: %v,%v then %v,%v", got, err, again, err2)
		}
	})
}

func FuzzCompileFilter(f *testing.F) {
	for _, e := range fuzzExprs {
		f.Add(e)
	}
	f.Add(`body.ref ==`)
	f.Add(`"push"`)
	f.Add(`[1,2,3].map(x, [1,2,3].map(y, x * y)).size() == 3`)
	f.Add(`((((((((((true))))))))))`)
	f.Add(`header[?"X"].orValue("") == "\u00e9"`)
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := Compile(expr)
		if err != nil {
			return
		}
		// Whatever compiles must evaluate without panicking, within the
		// cost limit.
		_, _ = p.Match(context.Background(), Input{Body: []byte(`{"a":[1,"b",{"c":null}]}`)})
	})
}

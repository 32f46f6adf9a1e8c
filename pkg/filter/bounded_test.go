package filter

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

// join and replace refuse to make a string many times the body before
// they make it: a sender's long separator or replacement, repeated once per
// part or match, made results growing with the square of the body (375 MB
// for a 28 KB body) before the cost limit, charged once a call returns,
// refused them. Their results are otherwise ext.Strings', and they are
// still charged to the cost limit.
func TestMatch_JoinAndReplaceRefuseAHugeResultBeforeMakingIt(t *testing.T) {
	body := []byte(`{"s":"` + strings.Repeat("a", 8000) + `","list":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 3000), ",") +
		`],"sep":"` + strings.Repeat("x", 20000) + `"}`)
	in := Input{Body: body, ContentType: "application/json"}
	for _, expr := range []string{
		`body.s.replace("a", body.s) == ""`,
		`body.s.replace("a", body.sep, 100000) == ""`,
		`body.list.join(body.sep) == ""`,
		`body.list.map(x, body.sep).join() == ""`,
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatal(expr, err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ok, err := p.Match(context.Background(), in)
		runtime.ReadMemStats(&after)
		if ok || err == nil || !strings.Contains(err.Error(), "would make a string of") {
			t.Errorf("%s: %v, %v; want refused for its size", expr, ok, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s allocated %d bytes before it was refused", expr, alloc)
		}
	}
	for _, expr := range []string{
		`"abc".replace("b", "xx") == "axxc"`,
		`"abc".replace("", "-") == "-a-b-c-"`,
		`"aaa".replace("a", "b", 2) == "bba"`,
		`"aaa".replace("a", "b", -1) == "bbb"`,
		`["a", "b"].join("-") == "a-b" && ["a", "b"].join() == "ab" && [].join(",") == ""`,
		`body.list.join(",").size() == 5999 && body.s.replace("a", "bb").size() == 16000`,
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatal(expr, err)
		}
		if ok, err := p.Match(context.Background(), in); !ok || err != nil {
			t.Errorf("%s: %v, %v; want true", expr, ok, err)
		}
	}
	// Each join made once per element is charged: the cost limit stops it.
	p, err := Compile(`body.list.all(x, body.list.join(",").size() > 0)`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Match(context.Background(), in); ok || err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("a join per element: %v, %v; want the cost limit", ok, err)
	}
}

// format and bytes() are charged by what they make (quote is, by cel-go):
// cel-go charged format by its format string and bytes() by a constant, and a
// comprehension formatting a sender's text once per element of a sender's
// list allocated gigabytes before it ended, unstopped by the cost limit.
func TestMatch_FormatQuoteAndBytesAreChargedByWhatTheyMake(t *testing.T) {
	body := []byte(`{"note":"` + strings.Repeat("n", 256<<10) + `","items":[` + strings.TrimSuffix(strings.Repeat(`1,`, 200), ",") + `]}`)
	in := Input{Body: body, ContentType: "application/json"}
	for _, expr := range []string{
		`body.items.map(i, "%s".format([body.note])).exists(s, s.startsWith("deploy"))`,
		`body.items.map(i, strings.quote(body.note)).exists(s, s.startsWith("deploy"))`,
		`body.items.map(i, bytes(body.note)).exists(s, size(s) == 0)`,
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatal(expr, err)
		}
		if ok, err := p.Match(context.Background(), in); ok || err == nil || !strings.Contains(err.Error(), "cost limit") {
			t.Errorf("%s: %v, %v; want stopped by the cost limit", expr, ok, err)
		}
	}
	// Used on a delivery's own fields, they still work.
	for _, expr := range []string{
		`"%s-%d".format(["a", 5]) == "a-5"`,
		`strings.quote("x") == "\"x\""`,
		`size(bytes(body.note)) == 262144`,
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatal(expr, err)
		}
		if ok, err := p.Match(context.Background(), in); !ok || err != nil {
			t.Errorf("%s: %v, %v; want true", expr, ok, err)
		}
	}
}

package payload

import (
	"net/url"
	"testing"
)

func TestFormJSON(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	gh := url.Values{"payload": {`{"ref":"refs/heads/main"}`}}.Encode()
	for _, tc := range []struct {
		name, body, ct, want string
		ok                   bool
	}{
		{"GitHub's form payload", gh, form, `{"ref":"refs/heads/main"}`, true},
		{"with a charset", gh, form + "; charset=utf-8", `{"ref":"refs/heads/main"}`, true},
		{"curl -d of a JSON object", ` {"a":1}`, form, `{"a":1}`, true},
		{"curl -d of a JSON array", `[1,2]`, form, `[1,2]`, true},
		{"an ordinary form", "a=1&b=2", form, "", false},
		{"payload beside other fields", gh + "&b=2", form, "", false},
		{"payload that is not JSON", "payload=hello", form, "", false},
		{"payload that is a JSON string", `payload="x"`, form, "", false},
		{"broken JSON", `{"a":`, form, "", false},
		{"not a form", `{"a":1}`, "application/json", "", false},
		{"no content type", gh, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FormJSON([]byte(tc.body), tc.ct)
			if ok != tc.ok || string(got) != tc.want {
				t.Fatalf("FormJSON(%q, %q) = %q, %v; want %q, %v", tc.body, tc.ct, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestTrimBOM(t *testing.T) {
	for in, want := range map[string]string{
		"\xEF\xBB\xBF{\"a\":1}": `{"a":1}`,
		`{"a":1}`:               `{"a":1}`,
		"\xEF\xBB":              "\xEF\xBB",
		"":                      "",
	} {
		if got := string(TrimBOM([]byte(in))); got != want {
			t.Errorf("TrimBOM(%q) = %q, want %q", in, got, want)
		}
	}
}

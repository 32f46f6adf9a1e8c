package executor

import (
	"bytes"
	"encoding/json"
	"testing"
)

// stdHeadersJSON is the reference: encoding/json without HTML escaping.
func stdHeadersJSON(t testing.TB, h map[string][]string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestHeadersJSON_AsEncodingJSON(t *testing.T) {
	for _, h := range []map[string][]string{
		nil,
		{},
		{"X-Empty": nil, "X-None": {}},
		{"Content-Type": {"application/json"}, "X-Multi": {"a", "b", ""}, "A": {"<&>"}},
		{"Q": {"quote \" backslash \\ slash /"}, "C": {"\x00\x01\x1f\t\n\r\b\f\x7f"}},
		{"U": {"é ✓ 😀 \u2028 \u2029 \ufffd"}, "Bad": {"\xff\xfe ok \xc3"}, "\xffkey": {"v"}},
	} {
		got, want := headersJSON(h), stdHeadersJSON(t, h)
		if !bytes.Equal(got, want) {
			t.Errorf("headersJSON(%q)\n got %s\nwant %s", h, got, want)
		}
	}
}

func FuzzHeadersJSON(f *testing.F) {
	f.Add("Content-Type", "application/json", "x")
	f.Add("\xff", "\u2028<>&\x00", "\"\\")
	f.Fuzz(func(t *testing.T, k, v1, v2 string) {
		h := map[string][]string{k: {v1, v2}, "Z-" + v1: {k}}
		if got, want := headersJSON(h), stdHeadersJSON(t, h); !bytes.Equal(got, want) {
			t.Errorf("headersJSON(%q)\n got %s\nwant %s", h, got, want)
		}
	})
}

package ingress

import (
	"net/http"
	"strings"
	"testing"
)

// The source address behind a proxy: the nearest untrusted entry of
// X-Forwarded-For, read with or without a port; a proxy on a public
// address counts only when trusted (HOOKRUN_TRUSTED_PROXIES).
func TestForwardedFor_ReadsEntriesWithPortsAndTrustedPublicProxies(t *testing.T) {
	lb, err := parseRanges("35.191.0.0/16, 130.211.0.1")
	if err != nil || len(lb) != 2 {
		t.Fatalf("parseRanges: %v, %v", lb, err)
	}
	tests := []struct {
		remote, xff string
		trusted     bool
		want        string
	}{
		{"127.0.0.1:5000", "6.6.6.6, 203.0.113.9", false, "203.0.113.9"},
		{"127.0.0.1:5000", "203.0.113.9:51234", false, "203.0.113.9"},
		{"127.0.0.1:5000", "[2001:db8::1]:443", false, "2001:db8::1"},
		{"127.0.0.1:5000", "2001:db8::1", false, "2001:db8::1"},
		{"127.0.0.1:5000", "6.6.6.6:1, 203.0.113.9:2", false, "203.0.113.9"},
		{"35.191.1.2:999", "203.0.113.9", false, "35.191.1.2"}, // a public proxy not trusted
		{"35.191.1.2:999", "203.0.113.9", true, "203.0.113.9"},
		{"130.211.0.1:999", "203.0.113.9:7", true, "203.0.113.9"},
	}
	for _, tt := range tests {
		var ranges = lb[:0:0]
		if tt.trusted {
			ranges = lb
		}
		req, _ := http.NewRequest("POST", "http://x/", nil)
		req.RemoteAddr = tt.remote
		req.Header.Set("X-Forwarded-For", tt.xff)
		if got := forwardedFor(ranges)(req); got != tt.want {
			t.Errorf("from %s, X-Forwarded-For %q, trusted %v: %s, want %s", tt.remote, tt.xff, tt.trusted, got, tt.want)
		}
		if req.Header.Get("X-Forwarded-For") != tt.xff {
			t.Errorf("the request's header became %q", req.Header.Get("X-Forwarded-For"))
		}
	}
	for _, bad := range []string{"35.191.0.0/33", "not-an-ip", "1.2.3.4/x", "0.0.0.0/0", "::/0"} {
		if _, err := parseRanges(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("parseRanges(%q): %v, want an error naming it", bad, err)
		}
	}
}

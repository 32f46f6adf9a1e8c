package ingress

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// forwardedFor takes a delivery's source address from X-Forwarded-For
// (HOOKRUN_TRUST_PROXY): the nearest address that is not a trusted proxy's
// (loopback, link-local and private ones, and trusted), read from the
// right, as Echo does. Entries with a port ("203.0.113.9:51234", as Azure's
// Application Gateway writes them, "[2001:db8::1]:443") are read without
// it: Echo cannot parse them, and took the proxy's own address instead.
func forwardedFor(trusted []*net.IPNet) echo.IPExtractor {
	opts := make([]echo.TrustOption, 0, len(trusted))
	for _, r := range trusted {
		opts = append(opts, echo.TrustIPRange(r))
	}
	extract := echo.ExtractIPFromXFFHeader(opts...)
	return func(req *http.Request) string {
		values := req.Header.Values(echo.HeaderXForwardedFor)
		withPorts := false
		for _, v := range values {
			for _, a := range strings.Split(v, ",") {
				if withoutPort(a) != strings.TrimSpace(a) {
					withPorts = true
				}
			}
		}
		if !withPorts {
			return extract(req)
		}
		// A copy with the ports taken off: the request's own headers are
		// stored with the delivery as sent.
		normalized := make([]string, len(values))
		for i, v := range values {
			parts := strings.Split(v, ",")
			for j, a := range parts {
				parts[j] = withoutPort(a)
			}
			normalized[i] = strings.Join(parts, ",")
		}
		r := *req
		r.Header = req.Header.Clone()
		r.Header[echo.HeaderXForwardedFor] = normalized
		return extract(&r)
	}
}

// withoutPort is an X-Forwarded-For entry without its port, if it has one.
func withoutPort(a string) string {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "[") {
		if end := strings.IndexByte(a, ']'); end > 0 {
			return a[1:end]
		}
		return a
	}
	if strings.Count(a, ":") == 1 { // IPv4:port; a bare IPv6 has more
		return a[:strings.IndexByte(a, ':')]
	}
	return a
}

// parseRanges reads a comma-separated list of CIDR ranges or addresses.
func parseRanges(v string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, fmt.Errorf("%q is not an address or CIDR range", s)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, r, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR range", s)
		}
		if ones, _ := r.Mask.Size(); ones == 0 {
			// Every address a proxy: the sender's own leftmost entry
			// would be taken, whatever it wrote.
			return nil, fmt.Errorf("%q trusts every address: name the proxies' ranges", s)
		}
		out = append(out, r)
	}
	return out, nil
}

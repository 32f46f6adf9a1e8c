package executor

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// egressTransport is the transport of HTTP jobs and callbacks: Go's
// default, or, with denyPrivate, one whose every connection is checked
// at connect time, after DNS: a receiver that controls its name cannot
// point it at an internal host between two attempts (DNS rebinding), nor
// does a name that resolves to several addresses slip one past.
func egressTransport(denyPrivate bool) http.RoundTripper {
	if !denyPrivate {
		return http.DefaultTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: denyPrivateAddress}
	t.DialContext = d.DialContext
	return t
}

// denyPrivateAddress refuses a connection to an address that is not a
// public unicast one (publicAddress).
func denyPrivateAddress(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("egress to %s refused: not an IP address", address)
	}
	if !publicAddress(ip) {
		return fmt.Errorf("egress to %s refused: not a public address (HOOKRUN_DENY_PRIVATE_EGRESS)", ip)
	}
	return nil
}

// nonPublic are IANA's special-purpose ranges (RFC 6890 and its
// registries) no public service sits in, and the cloud providers' own
// services at addresses that look public: loopback, private, shared,
// link-local (AWS, GCP and Azure metadata at 169.254.169.254), Oracle's
// 192.0.0.192 (192.0.0.0/24), Azure's WireServer 168.63.129.16,
// documentation, benchmarking, reserved, multicast and broadcast.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "168.63.129.16/32",
		"169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
		"192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
		"240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // the IPv4 address in its last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // the IPv4 address in bits 16–47
	// Two older forms of an IPv4 address in its last 32 bits: the
	// IPv4-compatible ::a.b.c.d (RFC 4291, deprecated) and SIIT's
	// IPv4-translated ::ffff:0:a.b.c.d (RFC 2765), which a translator may
	// still route to the IPv4 address.
	v4Compatible = netip.MustParsePrefix("::/96")
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// publicAddress says whether ip is a public unicast address. An IPv4
// address reached through IPv6 (mapped ::ffff:…, NAT64's 64:ff9b::/96,
// 6to4's 2002::/16) is judged by that IPv4 address.
func publicAddress(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	switch {
	case nat64.Contains(ip), v4Compatible.Contains(ip), v4Translated.Contains(ip):
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(ip):
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[2:6]))
	}
	if !ip.IsValid() || !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

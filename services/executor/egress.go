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
// public unicast one: loopback, private (RFC 1918, fc00::/7), link-local
// (cloud metadata at 169.254.169.254 among them), unspecified, multicast,
// shared (100.64.0.0/10), and IPv4 reached through IPv6 (::ffff:…).
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

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

func publicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedAddressSpace.Contains(ip) &&
		!ip.IsLoopback() && !ip.IsLinkLocalUnicast()
}

// Package redact hides the credentials of Redis and NATS URLs for log lines
// and error messages.
package redact

import "strings"

// redacted stands for a URL's password or token, as in (*url.URL).Redacted.
const redacted = "xxxxx"

// URL returns raw, a Redis or NATS URL, fit for a log line or an
// error message: the password of its userinfo is replaced by "xxxxx", and
// so is a userinfo without one (a NATS token, nats://TOKEN@host), and the
// value of a query option named like a password (?password=).
//
// A Sentinel URL (redis-sentinel:// or rediss-sentinel://) names its
// master between the userinfo and the hosts,
// redis-sentinel://[USER:PASSWORD@]MASTER@HOSTS: the master's name is no
// secret and stays, the userinfo before it is redacted. With one '@' only
// what comes before it is the master's name, kept, unless it holds a ':'
// (MASTER:PASSWORD@HOSTS, a form OpenRedis refuses), whose password is
// redacted all the same.
//
// It reads raw as text, not with url.Parse, so that a URL that does not
// parse is redacted too, and the userinfo ends at the last '@' (for a
// Sentinel URL, the last but one): a password may hold an unescaped '/',
// '?', '#' or '@', which a parser takes for the end of the userinfo, and a
// Redis or NATS URL has no '@' after its host.
func URL(raw string) string {
	return hideQueryPasswords(hideUserinfo(raw))
}

func hideUserinfo(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	if isSentinel(raw) {
		master := strings.LastIndex(rest[:at], "@")
		if master < 0 {
			if name, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
				return prefix + name + ":" + redacted + rest[at:]
			}
			return raw
		}
		at = master
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if hasPassword {
		user += ":" + redacted
	} else {
		user = redacted
	}
	return prefix + user + rest[at:]
}

// hideQueryPasswords redacts the value of each query option of raw whose
// name holds "password" (go-redis' Sentinel URLs take ?password=): after
// the userinfo, raw has no '@', and its query starts at the first '?'.
func hideQueryPasswords(raw string) string {
	start := strings.LastIndex(raw, "@") + 1
	q := strings.Index(raw[start:], "?")
	if q < 0 {
		return raw
	}
	q += start + 1
	query, fragment, hasFragment := strings.Cut(raw[q:], "#")
	opts := strings.Split(query, "&")
	for i, o := range opts {
		if k, _, found := strings.Cut(o, "="); found && strings.Contains(strings.ToLower(k), "password") {
			opts[i] = k + "=" + redacted
		}
	}
	out := raw[:q] + strings.Join(opts, "&")
	if hasFragment {
		out += "#" + fragment
	}
	return out
}

// isSentinel reports whether raw is a Redis Sentinel URL:
// redis-sentinel:// or, with TLS, rediss-sentinel://.
func isSentinel(raw string) bool {
	scheme, _, found := strings.Cut(raw, "://")
	return found && (strings.EqualFold(scheme, "redis-sentinel") || strings.EqualFold(scheme, "rediss-sentinel"))
}

// URLs is URL for each URL of a comma-separated list, as
// HOOKRUN_NATS_URL may be. A password or token may hold unescaped commas,
// and a part of the list with no '@' that has begun its user info is taken
// to run on to a later part's '@', everything up to it redacted as one
// credential rather than left in the clear:
//
//   - a password begun ("[scheme://]user:…") runs on to the next part that
//     holds an '@', whatever lies between (a password may even hold
//     "://");
//   - a bare name ("[scheme://]name", no port) runs on only through parts
//     that start no URL of their own: "nats://tok,en@host" is one token,
//     while "nats://n1,nats://tok@n2" is two URLs.
//
// Where the text cannot tell, the credential is hidden at the cost of a
// host: "nats://n1,tok@n2" (a host without a port, then a token URL
// without a scheme) comes out "nats://xxxxx@n2". "[scheme://]host:4222"
// is a host and its port, not a password begun (so a password of digits
// before its comma is not caught), and so is "[::1]:4222"; nor is a token
// holding both a comma and "://" caught. A part without a scheme that
// holds a space is prose (an error message passed through URLs), not a
// URL.
func URLs(raw string) string {
	parts := strings.Split(raw, ",")
	out := make([]string, 0, len(parts))
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		start, kind := openUserinfo(p)
		j := credentialEnd(parts, i, kind)
		if j < 0 {
			out = append(out, URL(p))
			continue
		}
		// One URL, its credential (commas and all) redacted as one.
		out = append(out, hideQueryPasswords(p[:start]+redacted+parts[j][strings.LastIndex(parts[j], "@"):]))
		i = j
	}
	return strings.Join(out, ",")
}

// opening is how far a part of a URL list without an '@' may have got into
// a user info.
type opening int

const (
	notOpen      opening = iota
	passwordOpen         // "[scheme://]user:…": a password begun
	tokenOpen            // "[scheme://]name": a token begun, or a host without a port
)

// openUserinfo reports whether part p of a URL list, which holds no '@',
// may have begun its user info, and where the credential would start: after
// the ':' of a password, at the name of a token.
func openUserinfo(p string) (int, opening) {
	if strings.Contains(p, "@") {
		return 0, notOpen
	}
	start := len(p) - len(strings.TrimLeft(p, " "))
	i := strings.Index(p, "://")
	if i >= 0 {
		start = i + 3
	}
	auth := p[start:]
	if k := strings.IndexAny(auth, "/?#"); k >= 0 {
		auth = auth[:k]
	}
	if auth == "" || strings.HasPrefix(auth, "[") || i < 0 && strings.ContainsAny(auth, " \t") {
		return 0, notOpen // nothing, an IPv6 host, or prose
	}
	c := strings.Index(auth, ":")
	switch {
	case c < 0:
		return start, tokenOpen
	case allDigits(auth[c+1:]):
		return 0, notOpen // a host and its port
	}
	return start + c + 1, passwordOpen
}

// credentialEnd returns the index of the part of the list whose last '@'
// ends the credential that parts[i] began as kind, or -1 for none.
func credentialEnd(parts []string, i int, kind opening) int {
	if kind == notOpen {
		return -1
	}
	for j := i + 1; j < len(parts); j++ {
		before := parts[j]
		at := strings.LastIndex(before, "@")
		if at >= 0 {
			before = before[:at]
		}
		if kind == tokenOpen && strings.Contains(before, "://") {
			return -1 // a URL of its own: parts[i] was a host
		}
		if at >= 0 {
			return j
		}
	}
	return -1
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

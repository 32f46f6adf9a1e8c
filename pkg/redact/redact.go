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
// HOOKRUN_NATS_URL may be. A password may hold unescaped commas (and even
// "://"): a URL whose user info has begun ("scheme://user:…") with no '@'
// to end it, where a later part holds an '@', is taken to run on to that
// '@', and everything up to it is redacted as its password, the parts
// between included, rather than left in the clear. "scheme://host:4222" is
// a host and its port, not a password begun (so a password of digits
// before its comma is not caught).
func URLs(raw string) string {
	parts := strings.Split(raw, ",")
	out := make([]string, 0, len(parts))
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		colon, open := openUserinfo(p)
		j := i + 1
		for j < len(parts) && !strings.Contains(parts[j], "@") {
			j++
		}
		if !open || j == len(parts) {
			out = append(out, URL(p))
			continue
		}
		// One URL, its password (commas and all) redacted as one.
		out = append(out, p[:colon+1]+redacted+parts[j][strings.LastIndex(parts[j], "@"):])
		i = j
	}
	return strings.Join(out, ",")
}

// openUserinfo reports whether URL p has begun its user info and password
// ("scheme://user:" with no '@' after), and where that ':' is.
func openUserinfo(p string) (int, bool) {
	i := strings.Index(p, "://")
	if i < 0 || strings.Contains(p[i+3:], "@") {
		return 0, false
	}
	auth := p[i+3:]
	if k := strings.IndexAny(auth, "/?#"); k >= 0 {
		auth = auth[:k]
	}
	c := strings.Index(auth, ":")
	if c < 0 || allDigits(auth[c+1:]) {
		return 0, false // no password, or a host and its port
	}
	return i + 3 + c, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

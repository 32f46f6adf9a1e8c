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
// HOOKRUN_NATS_URL may be. A part with an '@' but no scheme is taken to
// continue the one before, whose password held an unescaped comma: it is
// redacted with it rather than left half in the clear.
func URLs(raw string) string {
	var urls []string
	for _, p := range strings.Split(raw, ",") {
		if len(urls) > 0 && !strings.Contains(p, "://") && strings.Contains(p, "@") {
			urls[len(urls)-1] += "," + p
			continue
		}
		urls = append(urls, p)
	}
	for i, u := range urls {
		urls[i] = URL(u)
	}
	return strings.Join(urls, ",")
}

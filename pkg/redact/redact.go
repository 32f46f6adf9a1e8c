// Package redact hides the credentials of Redis and NATS URLs for log lines
// and error messages.
package redact

import "strings"

// redacted stands for a URL's password or token, as in (*url.URL).Redacted.
const redacted = "xxxxx"

// URL returns raw, a Redis or NATS URL, fit for a log line or an
// error message: the password of its userinfo is replaced by "xxxxx", and
// so is a userinfo without one (a NATS token, nats://TOKEN@host), except a
// redis-sentinel:// URL's, which is the master's name.
//
// It reads raw as text, not with url.Parse, so that a URL that does not
// parse is redacted too, and the userinfo ends at the last '@': a password
// may hold an unescaped '/', '?' or '#', which a parser takes for the start
// of the path, and a Redis or NATS URL has no '@' after its host.
func URL(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	switch {
	case hasPassword:
		user += ":" + redacted
	case strings.EqualFold(prefix, "redis-sentinel://"):
		return raw
	default:
		user = redacted
	}
	return prefix + user + rest[at:]
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

package service

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// redacted stands for a URL's password or token, as in (*url.URL).Redacted.
const redacted = "xxxxx"

// RedactURL returns raw, a Redis or NATS URL, fit for a log line or an
// error message: the password of its userinfo is replaced by "xxxxx", and
// so is a userinfo without one (a NATS token, nats://TOKEN@host), except a
// redis-sentinel:// URL's, which is the master's name.
//
// It reads raw as text, not with url.Parse, so that a URL that does not
// parse is redacted too, and the userinfo ends at the last '@': a password
// may hold an unescaped '/', '?' or '#', which a parser takes for the start
// of the path, and a Redis or NATS URL has no '@' after its host.
func RedactURL(raw string) string {
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

// RedactURLs is RedactURL for each URL of a comma-separated list, as
// HOOKRUN_NATS_URL may be. A part with an '@' but no scheme is taken to
// continue the one before, whose password held an unescaped comma: it is
// redacted with it rather than left half in the clear.
func RedactURLs(raw string) string {
	var urls []string
	for _, p := range strings.Split(raw, ",") {
		if len(urls) > 0 && !strings.Contains(p, "://") && strings.Contains(p, "@") {
			urls[len(urls)-1] += "," + p
			continue
		}
		urls = append(urls, p)
	}
	for i, u := range urls {
		urls[i] = RedactURL(u)
	}
	return strings.Join(urls, ",")
}

// malformedUserinfo is the problem of a URL that does not parse while the
// same URL redacted does.
const malformedUserinfo = "malformed user or password (percent-encode any of : / ? # @ , in it)"

// urlProblem says what parse finds wrong with red, a redacted URL, or ""
// when nothing. Go's parse errors quote the whole URL, password included,
// and cannot be wrapped as they are; nor can their reason for the URL as
// given be kept, since a password with an unescaped '/' is read as a port,
// which the reason quotes. The reason for the redacted URL holds no secret.
func urlProblem(red string, parse func(string) error) string {
	err := parse(red)
	var ue *url.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ue):
		return ue.Err.Error()
	default:
		return err.Error()
	}
}

// urlError is the error of raw, the URL in environment variable name, that
// parse refused: it names the variable, the URL redacted and the problem.
func urlError(name, raw string, parse func(string) error) error {
	red := RedactURL(raw)
	problem := urlProblem(red, parse)
	if problem == "" {
		problem = malformedUserinfo
	}
	return fmt.Errorf("%s=%q: %s", name, red, problem)
}

// checkNATSURLs parses each URL of a HOOKRUN_NATS_URL list as nats.go does
// (split at commas; a URL without a scheme is a nats:// one), so that a
// malformed one is reported here, redacted, rather than in nats.go's error,
// which quotes it. The error names the whole list: a part alone may be half
// of a password that held a comma.
func checkNATSURLs(raw string) error {
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u == "" || parseNATSURL(u) == nil {
			continue
		}
		red := RedactURLs(raw)
		problem := malformedUserinfo
		for _, r := range strings.Split(red, ",") {
			if r = strings.TrimSpace(r); r != "" {
				if p := urlProblem(r, parseNATSURL); p != "" {
					problem = p
					break
				}
			}
		}
		return fmt.Errorf("HOOKRUN_NATS_URL=%q: %s", red, problem)
	}
	return nil
}

// parseNATSURL parses one NATS URL as nats.go does.
func parseNATSURL(u string) error {
	if !strings.Contains(u, "://") {
		u = "nats://" + u
	}
	_, err := url.Parse(u)
	return err
}

// natsConnectError is err, bus.Connect's to raw, without raw's credentials:
// bus.Connect's message names the URLs as given. Its cause, nats.go's,
// quotes none once checkNATSURLs has passed them.
func natsConnectError(raw string, err error) error {
	red := RedactURLs(raw)
	if cause := errors.Unwrap(err); cause != nil {
		return fmt.Errorf("connect to NATS at %s: %w", red, cause)
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, red))
}

package service

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hookrun/hookrun/pkg/redact"
)

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
	red := redact.URL(raw)
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
	// Each URL trimmed, as nats.go trims them ("nats://n1:4222 ,…" is a
	// host and its port, not a password begun).
	parts := strings.Split(raw, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	if red := redact.URLs(strings.Join(parts, ",")); strings.Count(red, ",") < len(parts)-1 {
		// The redaction hid a credential across a comma: nats.go would
		// split it, connect to half of it as a host, and name that half
		// in its errors (a token's start in a DNS error).
		// One list it cannot tell from that, a host without a port before
		// a URL without a scheme ("nats://n1,tok@n2"), is refused too: the
		// message says how to write it.
		return fmt.Errorf("HOOKRUN_NATS_URL=%q: a password or token holds a comma, which nats.go takes for the end of a URL: percent-encode it (%%2C); if it does not, write each URL of the list with its scheme and port", red)
	}
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u == "" || parseNATSURL(u) == nil {
			continue
		}
		red := redact.URLs(raw)
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

package ingress

import (
	"bytes"
	"net/url"
	"strings"

	"github.com/hookrun/hookrun/pkg/payload"
)

// stripSlackToken takes Slack's verification token out of a body Slack
// signed: the top-level "token" members of a JSON body (Events API), the
// token fields of a form (slash commands), and the "token" members of the
// JSON in a form's payload fields (interactions). Slack deprecated the
// token for the signature, but still sends it, and it is a credential:
// whoever holds it can pass for Slack to any app that still checks it. So
// it is stored nowhere, like every other credential a delivery brings.
// Everything else is kept as sent; tokens are the values taken out (to be
// scrubbed from headers and the query too), changed whether any was.
// A JSON body is read as JSON whatever its content type, as filters and
// templates read it (payload.FormJSON).
func stripSlackToken(body []byte, contentType string) (rest []byte, tokens []string, changed bool) {
	if t := bytes.TrimSpace(payload.TrimBOM(body)); !payload.IsForm(contentType) || len(t) > 0 && t[0] == '{' {
		rest, tokens = removeMembers(body, "token")
		return rest, tokens, len(rest) != len(body) || tokens != nil
	}
	return stripFormToken(body)
}

// stripFormToken drops the form's token fields and the token members of
// the JSON held by its payload fields, keeping every other field byte for
// byte.
func stripFormToken(body []byte) ([]byte, []string, bool) {
	fields := strings.Split(string(body), "&")
	kept := fields[:0]
	var tokens []string
	changed := false
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			kept = append(kept, f)
			continue
		}
		switch name {
		case "token":
			if t, err := url.QueryUnescape(v); err == nil && t != "" {
				tokens = append(tokens, t)
			}
			changed = true
			continue
		case "payload":
			if js, err := url.QueryUnescape(v); err == nil {
				if out, ts := removeMembers([]byte(js), "token"); len(out) != len(js) {
					f, changed = k+"="+url.QueryEscape(string(out)), true
					tokens = append(tokens, ts...)
				}
			}
		}
		kept = append(kept, f)
	}
	if !changed {
		return body, nil, false
	}
	return []byte(strings.Join(kept, "&")), tokens, true
}

package ingress

import (
	"mime"
	"net/url"
	"strings"
)

// stripSlackToken takes Slack's verification token out of a body Slack
// signed: the top-level "token" of an Events API JSON body, the token
// field of a slash command's form, and the "token" of the JSON in an
// interaction's payload field. Slack deprecated the token for the
// signature, but still sends it, and it is a credential: whoever holds it
// can pass for Slack to any app that still checks it. So it is stored
// nowhere, like every other credential a delivery brings. Everything else
// is kept as sent; changed says whether anything was taken out.
func stripSlackToken(body []byte, contentType string) (rest []byte, changed bool) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		return stripFormToken(body)
	}
	if key, out, err := extractBodyKey(body, "token"); err == nil && key != "" {
		return out, true
	}
	return body, false
}

// stripFormToken drops the form's token fields and the token of the JSON
// held by its payload fields, keeping every other field byte for byte.
func stripFormToken(body []byte) ([]byte, bool) {
	fields := strings.Split(string(body), "&")
	kept := fields[:0]
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
			changed = true
			continue
		case "payload":
			if js, err := url.QueryUnescape(v); err == nil {
				if key, out, err := extractBodyKey([]byte(js), "token"); err == nil && key != "" {
					f, changed = k+"="+url.QueryEscape(string(out)), true
				}
			}
		}
		kept = append(kept, f)
	}
	if !changed {
		return body, false
	}
	return []byte(strings.Join(kept, "&")), true
}

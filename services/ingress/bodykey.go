package ingress

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/hookrun/hookrun/pkg/payload"
)

// extractBodyKey takes the top-level member name out of the JSON object
// body sent (Jac Cloud's "body" key placement) and returns its string value
// and the body without that member. Everything else is kept byte for byte —
// member order, spacing, escapes, numbers, a leading UTF-8 byte order mark —
// so the job sees what the sender sent minus the key. The removal happens in
// place: rest shares sent's memory. The byte order mark is skipped when the
// JSON is read, as filters and templates skip it (payload.TrimBOM).
//
// A body that is not a JSON object is errInvalidBody. A member that is not
// a string, or that appears more than once (JSON parsers disagree on which
// copy wins, so the key checked might not be the one removed), is
// errInvalidCredentials. A body without the member is returned unchanged
// with an empty key.
func extractBodyKey(sent []byte, name string) (key string, rest []byte, err error) {
	body := payload.TrimBOM(sent) // sent[bom:]
	bom := len(sent) - len(body)
	if !json.Valid(body) {
		return "", nil, errInvalidBody
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return "", nil, errInvalidBody
	}
	i++
	found := false
	var cutFrom, cutTo int
	prevEnd := i // end of the previous member, or just after '{'
	for first := true; ; first = false {
		i = skipSpace(body, i)
		if body[i] == '}' {
			break
		}
		if !first {
			i = skipSpace(body, i+1) // past ','
		}
		keyStart := i
		keyEnd := skipString(body, i)
		i = skipSpace(body, keyEnd)
		valStart := skipSpace(body, i+1) // past ':'
		valEnd := skipValue(body, valStart)
		if memberIs(body[keyStart:keyEnd], name) {
			if found || body[valStart] != '"' {
				return "", nil, errInvalidCredentials
			}
			found = true
			if key, err = jsonString(body[valStart:valEnd]); err != nil {
				return "", nil, errInvalidCredentials
			}
			if first {
				// Remove `"name": "value",` up to the next member, if any.
				cutFrom, cutTo = keyStart, skipSpace(body, valEnd)
				if body[cutTo] == ',' {
					cutTo = skipSpace(body, cutTo+1)
				}
			} else {
				// Remove `, "name": "value"` after the previous member.
				cutFrom, cutTo = prevEnd, valEnd
			}
		}
		prevEnd, i = valEnd, valEnd
	}
	if !found {
		return "", sent, nil
	}
	n := copy(body[cutFrom:], body[cutTo:])
	return key, sent[:bom+cutFrom+n], nil
}

// The scanners below run only on input json.Valid accepted, so they need
// not report errors; they still stop at the end of the input.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(b)
	}
}

// memberIs reports whether the quoted member name raw equals name once
// unescaped; names without escapes (nearly all) compare without allocating.
func memberIs(raw []byte, name string) bool {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner) == name
	}
	s, err := jsonString(raw)
	return err == nil && s == name
}

// jsonString decodes a quoted JSON string as encoding/json does.
func jsonString(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// removeMembers returns body (a JSON object, maybe after a byte order
// mark) without any of its top-level members called name, whatever their
// values, and the string values it removed. The members kept are copied
// byte for byte, joined by commas (the spacing between members is not
// kept); a body without such a member, or that is not a JSON object, is
// returned as it is, body itself. body is never written to.
func removeMembers(sent []byte, name string) (rest []byte, removed []string) {
	body := payload.TrimBOM(sent)
	if !json.Valid(body) {
		return sent, nil
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return sent, nil
	}
	open := i + 1
	var kept [][]byte
	found := false
	for i = open; ; {
		i = skipSpace(body, i)
		if body[i] == '}' {
			break
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		keyStart := i
		keyEnd := skipString(body, i)
		valStart := skipSpace(body, skipSpace(body, keyEnd)+1) // past ':'
		valEnd := skipValue(body, valStart)
		if memberIs(body[keyStart:keyEnd], name) {
			found = true
			if body[valStart] == '"' {
				if v, err := jsonString(body[valStart:valEnd]); err == nil && v != "" {
					removed = append(removed, v)
				}
			}
		} else {
			kept = append(kept, body[keyStart:valEnd])
		}
		i = valEnd
	}
	if !found {
		return sent, nil
	}
	out := make([]byte, 0, len(sent))
	out = append(out, sent[:len(sent)-len(body)+open]...) // BOM, spacing, '{'
	out = append(out, bytes.Join(kept, []byte(","))...)
	out = append(out, body[i:]...) // '}' and what follows
	return out, removed
}

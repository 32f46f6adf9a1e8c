package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
)

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// decodeB64Fields decodes the base64 fields (body, payload) of a message.
func decodeB64Fields(data []byte) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	var b strings.Builder
	for _, k := range []string{"body", "payload"} {
		if s, ok := m[k].(string); ok {
			if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
				b.Write(raw)
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

package keys

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/labstack/echo/v4"
)

// plainJSON is Echo's JSON serializer without HTML escaping: the API's
// answers are JSON read by programs and people with curl, never HTML, and
// escaped they showed a filter's "&&" as "\u0026\u0026" and the 401's
// "Bearer <token>" as "\u003ctoken\u003e". Decoding is Echo's.
type plainJSON struct{ echo.DefaultJSONSerializer }

func (plainJSON) Serialize(c echo.Context, i any, indent string) error {
	return encodePlain(c.Response(), i, indent)
}

// marshalPlain is v's JSON as plainJSON writes it, for the run event
// stream's data lines (nil for what encoding/json cannot encode).
func marshalPlain(v any) []byte {
	var buf bytes.Buffer
	if encodePlain(&buf, v, "") != nil {
		return nil
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// encodePlain writes v's JSON, a line, without HTML escaping.
func encodePlain(w io.Writer, v any, indent string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(v)
}

package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/resource"
)

// Result header values of a PUT: what `hookrun apply` prints.
const (
	HeaderResult     = "Hookrun-Result"
	ResultCreated    = "created"
	ResultConfigured = "configured"
	ResultUnchanged  = "unchanged"
)

// decode reads a JSON body strictly: unknown fields are errors that name
// the field by its path ("spec.auth.none.x"), so a typo in a resource is
// caught instead of ignored, and so are a key given twice in one object
// and a field name in the wrong case (encoding/json would keep the last
// duplicate and match names whatever their case: see checkKeys).
func decode(c echo.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeBytes(body, v)
}

// readBody reads a request's body, answering as decode does when it cannot.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		// A body over the limit without a Content-Length (chunked) is
		// only caught while read: the same 413 as one announced too long.
		var he *echo.HTTPError
		var me *http.MaxBytesError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge || errors.As(err, &me) {
			return nil, echo.ErrStatusRequestEntityTooLarge
		}
		return nil, badRequest("the body could not be read")
	}
	return body, nil
}

// decodeBytes is decode of a body already read.
func decodeBytes(body []byte, v any) error {
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return badRequest(fmt.Sprintf("the body is not valid JSON (at byte %d)", se.Offset))
		case errors.As(err, &te):
			field := te.Field
			if p := pathAt(body, te.Offset); p != "" {
				field = p // with the list item's index, the map entry's key
			}
			if field == "" {
				field = "body"
			}
			return &resource.FieldError{Field: field, Msg: "must be " + typeWord(te.Type)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// checkKeys refuses these first, with their path; this is
			// only a guard should the two ever disagree.
			return badRequest(strings.TrimPrefix(err.Error(), "json: ") + " (check the spelling against API.md)")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("the body is not valid JSON (it ends early)")
		case errors.Is(err, io.EOF):
			return badRequest("the body is empty")
		default:
			return badRequest(err.Error())
		}
	}
	if dec.More() {
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// placeMeta reconciles the path name and ?namespace= with the metadata,
// and drops the fields the service owns (uid, generation, times), so a
// document read back with `hookrun get -o yaml` applies like the original.
func placeMeta(c echo.Context, m *resource.Meta) error {
	m.UID, m.Generation, m.CreatedAt, m.UpdatedAt = "", 0, time.Time{}, time.Time{}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	if m.Name == "" {
		m.Name = name
	}
	if m.Name != name {
		return &resource.FieldError{Field: "metadata.name", Msg: fmt.Sprintf("%q does not match the name in the path %q", m.Name, name)}
	}
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	switch {
	case m.Namespace == "":
		m.Namespace = ns
	case c.QueryParam("namespace") != "" && m.Namespace != ns:
		return &resource.FieldError{Field: "metadata.namespace", Msg: fmt.Sprintf("%q does not match ?namespace=%s", m.Namespace, ns)}
	}
	return nil
}

// typeWord says in words what a JSON value of type t looks like.
func typeWord(t reflect.Type) string {
	if t == reflect.TypeFor[resource.Duration]() {
		return `a duration such as "90s", "5m" or "72h", or a number of seconds`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeWord(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return typeWord(t.Elem())
	}
	return "an object"
}

// respond writes a PUT answer: 201 when created, else 200, with the result header.
func respond(c echo.Context, result string, body any) error {
	c.Response().Header().Set(HeaderResult, result)
	if result == ResultCreated {
		return c.JSON(http.StatusCreated, body)
	}
	return c.JSON(http.StatusOK, body)
}

// sameJSON reports whether a and b encode the same.
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

type listResponse[T any] struct {
	Items []T `json:"items"`
}

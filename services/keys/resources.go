package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

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
// the field, so a typo in a resource is caught instead of ignored.
func decode(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return badRequest("the body could not be read")
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
			return badRequest(fmt.Sprintf("%s: must be %s", te.Field, te.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return badRequest(strings.TrimPrefix(err.Error(), "json: ") + " (check the spelling against API.md)")
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

// placeMeta reconciles the path name and ?namespace= with the metadata.
func placeMeta(c echo.Context, m *resource.Meta) error {
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
	if m.Namespace == "" {
		ns, err := namespace(c)
		if err != nil {
			return err
		}
		m.Namespace = ns
	}
	return nil
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

package keys

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/service"
)

// The control plane's error codes, in one table (API.md's error body,
// {"error": {"code", "message"}}, plus "field" for validation errors):
//
//	400 invalid_request     malformed JSON, or a field that fails validation (named in message and field)
//	401 unauthorized        no or wrong admin bearer token
//	404 not_found           no such resource, key, run or delivery
//	405 method_not_allowed  the route exists, the method does not
//	409 conflict            the resource changed while the request ran (retry)
//	409 run_finished        cancel of a run that has already ended
//	409 name_taken          an API key of that name exists in the namespace
//	409 webhook_disabled    replay of a delivery whose webhook is disabled (spec.disabled)
//	409 job_not_runnable    replay of a delivery whose webhook's job does not exist
//	413 payload_too_large   body over 4 MiB, or a resource too large for a NATS message once stored
//	503 unavailable         NATS (KV or JetStream) did not answer; Retry-After set
//	500 internal            anything else (logged, never with a secret)

// apiError is an error answer of the control plane.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; 0 = no header
}

func (e *apiError) Error() string { return e.Message }

// unreadable is the error of a stored record (a run's status, a delivery)
// this release cannot decode: written by a newer one, during a rolling
// upgrade. Asking again gets the same answer until keys is upgraded: not
// a 503 to retry.
func unreadable(what string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: "unreadable_record",
		Message: "the stored record of " + what + " cannot be read by this keys service (written by a newer release?): upgrade keys"}
}

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg}
}

// notFound names what was not found, ids from the request and all: an id
// that has an API key's shape (a key pasted where a run, delivery or key
// id goes) is shown by its prefix only, as messages never echo a
// credential (API.md).
func notFound(what string) *apiError {
	words := strings.Split(what, " ")
	for i, w := range words {
		words[i] = apikey.Hide(w)
	}
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: strings.Join(words, " ") + " not found"}
}

var (
	errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a valid admin token is required: Authorization: Bearer <token>"}
	errUnavailable  = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the configuration store is unavailable; retry later", RetryAfter: 5}
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// httpError is the one place where errors become answers.
func (s *Service) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var b errorBody
	status := http.StatusInternalServerError
	var ae *apiError
	var fe *resource.FieldError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		status, b.Error.Code, b.Error.Message = ae.Status, ae.Code, ae.Message
		if status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="hookrun"`)
		}
		if ae.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
	case errors.As(err, &fe):
		status, b.Error.Code, b.Error.Message, b.Error.Field = http.StatusBadRequest, "invalid_request", fe.Error(), fe.Field
	case errors.As(err, &he):
		status = he.Code
		b.Error.Code = map[int]string{404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 401: "unauthorized"}[he.Code]
		if b.Error.Code == "" {
			b.Error.Code = "invalid_request"
		}
		b.Error.Message = service.HTTPErrorMessage(he, c.Request())
	default:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		b.Error.Code, b.Error.Message = "internal", "internal error"
	}
	_ = c.JSON(status, b)
}

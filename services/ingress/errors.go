package ingress

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/signature"
)

// apiError is one row of the ingress error table in API.md. Handlers return
// these; writeError is the only place that turns them into responses.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; 0 = no header
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// The ingress error table (API.md). Messages never echo a credential nor say
// whether a key exists for another webhook.
var (
	errMalformedEventID   = &apiError{Status: http.StatusBadRequest, Code: "missing_event_id", Message: "unusable event id: it must be 1 to 256 printable UTF-8 characters"}
	errCredentialEventID  = &apiError{Status: http.StatusBadRequest, Code: "missing_event_id", Message: "unusable event id: it holds this webhook's credential (the event id is stored and shown with every run); send another"}
	errInvalidBody        = &apiError{Status: http.StatusBadRequest, Code: "invalid_body", Message: "the body must be a JSON object carrying the API key field"}
	errUnreadableBody     = &apiError{Status: http.StatusBadRequest, Code: "invalid_body", Message: "the body could not be read"}
	errMissingCredentials = &apiError{Status: http.StatusUnauthorized, Code: "missing_credentials", Message: "missing API key"}
	errInvalidCredentials = &apiError{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "invalid API key"}
	errExpiredKey         = &apiError{Status: http.StatusUnauthorized, Code: "expired_key", Message: "the API key has expired"}
	errSignatureInvalid   = &apiError{Status: http.StatusUnauthorized, Code: "signature_invalid", Message: "signature verification failed"}
	errTimestampTolerance = &apiError{Status: http.StatusUnauthorized, Code: "timestamp_out_of_tolerance", Message: "the signed timestamp is outside the allowed tolerance"}
	errKeyNotAllowed      = &apiError{Status: http.StatusForbidden, Code: "key_not_allowed", Message: "this API key is not allowed to trigger this webhook"}
	errEndpointNotFound   = &apiError{Status: http.StatusNotFound, Code: "endpoint_not_found", Message: "webhook endpoint not found"}
	errMalformedHookURL   = &apiError{Status: http.StatusNotFound, Code: "endpoint_not_found", Message: "webhook endpoint not found: a delivery URL is /v1/hooks/{endpointId}, or /v1/hooks/{endpointId}/{key}, with no empty or extra path segment"}
	errMethodNotAllowed   = &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed for this webhook"}
	errPayloadTooLarge    = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "the body exceeds this webhook's size limit"}
	errUnsupportedMedia   = &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "multipart bodies and file uploads are not accepted"}
	errEncodedBody        = &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "compressed bodies (Content-Encoding) are not accepted: send the body uncompressed"}
	errRateLimited        = &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many deliveries for this webhook; retry later", RetryAfter: 1}
	errJobNotRunnable     = &apiError{Status: http.StatusInternalServerError, Code: "job_not_runnable", Message: "webhook task creation failed: the webhook cannot run: its job, or a secret it names, is missing or unusable (see the webhook's status.lastError)"}
	errUnavailable        = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the delivery could not be stored in time; retry later (with the same event id, a retry of a write that landed after all is answered as its duplicate)", RetryAfter: 5}
	errOverloaded         = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the ingress holds too many deliveries waiting to be stored; nothing was accepted; retry later", RetryAfter: 5}
	errNotReady           = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the ingress is starting and has not loaded its configuration; nothing was accepted; retry later", RetryAfter: 1}
	errInternal           = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
)

// missingEventID is the 400 missing_event_id of a signed delivery without
// the event id its profile requires. It names where this webhook's own
// profile reads the id (the X-Event-Id header for generic, X-GitHub-Delivery
// for github, the body's "id" for stripe...), not every profile's.
func missingEventID(profile string, p signature.Profile) *apiError {
	msg := "missing event id: this webhook's " + profile + " profile requires "
	if src := signature.EventIDSource(p); src != "" {
		msg += src
	} else {
		msg += "one"
	}
	return &apiError{Status: http.StatusBadRequest, Code: "missing_event_id", Message: msg}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// withMessage returns a copy of e with another message (same code).
func (e *apiError) withMessage(msg string) *apiError {
	cp := *e
	cp.Message = msg
	return &cp
}

// retryAfter returns a copy of e that asks the sender to wait secs seconds.
func (e *apiError) retryAfter(secs int) *apiError {
	cp := *e
	cp.RetryAfter = max(secs, 1)
	return &cp
}

// writeError is the only place an apiError becomes a response.
func writeError(c echo.Context, e *apiError) error {
	if e.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	// Without HTML escapes: messages show URL shapes such as
	// /v1/hooks/<endpoint>/<key>, which Echo's c.JSON sends as \u003c…
	buf := getBuffer()
	defer putBuffer(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&b); err != nil {
		return c.JSON(e.Status, b)
	}
	return c.JSONBlob(e.Status, buf.Bytes())
}

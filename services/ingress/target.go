package ingress

import (
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// hookRoute is the one route every delivery takes. The endpoint id and the
// key are read from its tail by parseTarget rather than by Echo's path
// parameters: a last parameter swallows any slashes after it, and a
// trailing slash would fall through to the not-found route.
const hookRoute = "/v1/hooks/*"

// target is what a delivery URL names: /v1/hooks/{endpoint}[/{key}].
type target struct {
	endpoint string // the endpoint id, percent-decoded
	key      string // the path key, percent-decoded; "" when the URL has none
	// The segments as sent, when they were percent-encoded: a header that
	// repeats the URL (Referer, X-Original-Url) holds them in that form,
	// and the credential scrubber must find them there too.
	rawEndpoint, rawKey string
}

// requestTarget reads the target of a request routed by hookRoute.
//
// Echo routes on the request's RawPath when there is one (the path was sent
// with escapes Go would not have made: %5F, %2F...), and then its
// parameters are still percent-encoded; otherwise on Path, which Go has
// already decoded. So the segments are decoded only in the first case: a
// second decoding would turn a sent %2541 into "A" rather than "%41".
func requestTarget(c echo.Context) (target, bool) {
	return parseTarget(c.Param("*"), c.Request().URL.RawPath != "")
}

// parseTarget splits rest, the path after /v1/hooks/, into the endpoint id
// and the key. One trailing slash counts as absent (senders that append a
// "/" to the URL they were given are common); an empty segment, or a third
// one, is no delivery URL (ok false). Slashes are read before decoding: an
// encoded one (%2F) is part of its segment, never a separator.
func parseTarget(rest string, escaped bool) (t target, ok bool) {
	rest = strings.TrimSuffix(rest, "/")
	endpoint, key, hasKey := strings.Cut(rest, "/")
	if endpoint == "" || hasKey && (key == "" || strings.IndexByte(key, '/') >= 0) {
		return target{}, false
	}
	if !escaped {
		return target{endpoint: endpoint, key: key}, true
	}
	var err error
	if t.endpoint, err = url.PathUnescape(endpoint); err != nil {
		return target{}, false
	}
	if t.key, err = url.PathUnescape(key); err != nil {
		return target{}, false
	}
	if t.endpoint != endpoint {
		t.rawEndpoint = endpoint
	}
	if t.key != key {
		t.rawKey = key
	}
	return t, true
}

// Package filter evaluates a webhook's filter: a CEL expression that decides
// whether a delivery becomes a run. It follows the convention of Tekton
// Triggers' CEL interceptor, so an expression such as
//
//	header["X-GitHub-Event"] == "push" && body.ref == "refs/heads/main"
//
// reads the same here as there.
//
// # Variables
//
//   - body: the request body. A JSON body is decoded (objects become maps,
//     arrays lists, numbers doubles as in CEL's JSON mapping, so write
//     body.count > 3 or int(body.count) + 1). A body of content type
//     application/x-www-form-urlencoded is a map(string, string) of the
//     first value of each field, unless it carries JSON (payload.FormJSON):
//     a JSON object or array sent as a form (curl -d), or a form whose only
//     field, payload, is JSON (GitHub's form content type), is decoded as
//     that JSON. An empty body, or a JSON null, is an empty map. Any other
//     body, including JSON nested deeper than 64 levels, is the raw body as
//     a string, so body.contains("ping") works on text payloads.
//   - header: map(string, string), header name to its first value.
//     Lookups ignore case: header["X-GitHub-Event"], header["x-github-event"]
//     and "X-Github-Event" in header all find the header a sender sent as
//     "x-github-event". Iteration (header.exists(k, ...)) yields the
//     canonical form of each name (http.CanonicalHeaderKey, "X-Github-Event").
//   - query: map(string, string), query parameter to its first value. Query
//     names are case-sensitive.
//   - method: the HTTP method, e.g. "POST".
//
// # Functions
//
// The CEL standard library, optional values (body.?ref.orValue(""),
// header[?"X-Event"]) and the strings extension (lowerAscii, split,
// replace, trim, substring, ...). Numbers of different types compare
// with each other (body.count > 3 where count is a double).
//
// # Result and errors
//
// The expression must have type bool (or dyn, checked when it runs):
// Compile refuses anything else with "filter must evaluate to a bool".
// Evaluation is bounded by a cost limit and by the caller's context, so an
// expensive expression fails instead of holding up the dispatcher. The
// limit grows with the body (CostLimit, CostPerBodyByte): a pass or two
// over the largest body a webhook takes fits, a comprehension nested in
// another over a large body does not.
//
// When evaluation fails, for example body.ref on a body without "ref",
// Match returns false and the error. The delivery is then recorded as
// filtered, with the error, rather than run: a filter that cannot decide
// never lets a delivery through. Write body.?ref.orValue("") == "x" or
// has(body.ref) && body.ref == "x" to treat a missing field as a plain
// non-match.
package filter

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
//   - body: the request body. A JSON body is decoded: objects become maps,
//     arrays lists, and numbers exact CEL numbers (see Numbers). A body of content type
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
// # Numbers
//
// A JSON number written without a fraction or an exponent is an int, or a
// uint when it is past int64's range (an id of 20 digits); any other
// (2.5, 3.0, 1e3) is a double. So an id compares exactly
// (body.account_id == 1234567890123456789 is false for
// 1234567890123456700) and string(body.id) is "708153290", which can be
// compared with a header. Numbers of different types compare with each
// other (body.count > 2.5, body.count == 3.0, body.count in [1.0, 3.0]),
// but CEL has no arithmetic between them: body.count + 1 works on an
// integer, body.count * 1.5 needs double(body.count) * 1.5.
//
// Until this version numbers were doubles, as in CEL's JSON mapping: ids
// past 2^53 compared equal to their neighbours and string() printed
// 7.0815329e+08. A filter that did arithmetic with doubles on a field
// sent as an integer (body.count + 0.5) now fails with "no such
// overload"; write double(body.count) + 0.5. int(body.count) still works.
//
// # Functions
//
// The CEL standard library, optional values (body.?ref.orValue(""),
// header[?"X-Event"]) and the strings extension (lowerAscii, split,
// replace, trim, substring, ...).
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
// never lets a delivery through. When the expression reads body and the
// body is not a JSON object, the error says what it is, as "no such key:
// ref" would otherwise blame the key: "(the body is text, not a JSON
// object (Content-Type text/plain, 5 bytes))", "(a GET request has no
// body)". Write body.?ref.orValue("") == "x" or
// has(body.ref) && body.ref == "x" to treat a missing field as a plain
// non-match.
package filter

// Package argtemplate resolves a job's arguments from a delivery.
//
// A job argument has a name, an optional default and an optional value
// template:
//
//	args:
//	  - {name: topic, default: "AI startups", value: "{{ .body.topic }}"}
//	  - {name: event, value: '{{ header "X-GitHub-Event" }}'}
//	  - {name: mode, default: "full"}
//
// The value is a Go text/template (https://pkg.go.dev/text/template). The
// run gets the rendered text, or the default when the template cannot be
// resolved. Every argument needs a default or a value (CheckDefaults).
//
// # Data
//
//   - .body: the request body. A JSON body is decoded: objects and arrays
//     can be walked (.body.repository.name, index .body.commits 0), numbers
//     keep their exact text (a 20-digit id survives). A body of content type
//     application/x-www-form-urlencoded is a map of the first value of each
//     field, unless it carries JSON, which is then decoded as a JSON body is
//     (payload.FormJSON: a JSON object or array sent as a form by curl -d, or
//     GitHub's form content type, whose only field payload holds the JSON).
//     An empty body, or a JSON null, is an empty object. Any other
//     body, including JSON nested deeper than 64 levels, is the raw text.
//   - .header: header name to first value, keyed by canonical name
//     ("X-Github-Event"). A name with a dash cannot be written as a field
//     (.header.X-Foo is not template syntax); use the header function,
//     which ignores case: {{ header "X-GitHub-Event" }}.
//   - .query: query parameter to first value ({{ .query.env }}); case-sensitive.
//   - .method, .webhook, .eventId: the HTTP method, the webhook's name and
//     the delivery's event id.
//
// A field that holds an object or a list renders as JSON ({"a":1}, not Go's
// map[a:1]). A body key named String must be read with index
// (index .body "String"): .body.String names the method that renders JSON
// (refused within a range, see Limits).
//
// # Functions
//
// Beside text/template's built-ins (index, len, eq, printf, ...):
//
//   - header NAME: the header's first value, any case; no value if absent.
//   - json V: V as compact JSON: {{ json .body.labels }}.
//   - default D V: V, unless V is missing, null, "" or an empty list or
//     object, then D: {{ .body.branch | default "main" }}. It covers a
//     missing last key; a missing parent (.body.a.b with no "a") still fails.
//   - lower V, upper V, trim V: V as text, lower-cased, upper-cased, or with
//     surrounding white space removed.
//   - join LIST SEP: the list's items as text, separated by SEP; the piped
//     form .body.tags | join "," works too.
//   - toString V: V as text, JSON for objects and lists.
//
// Where an argument value prints the result of lower, upper, trim,
// toString, print, printf or println ({{ .body.branch | lower }},
// {{ printf "%s" .body.x }}, {{ .body.x | trim | upper }},
// {{ (lower .body.x) }}), a missing key or null given to it is handed on as
// no value, not as "" or "<nil>": the argument takes its default, as when
// the key is printed directly. Anywhere else (an argument to another
// function, a condition, a variable: {{ $v := lower .body.x }}{{ $v }}
// prints "") they give "" for it as they always have, so
// {{ .body.branch | lower | default "main" }} and
// {{ if eq (trim .body.x) "" }} read as expected. An HTTP job's body
// template, which has no default, prints "" there.
//
// eq, ne, lt, le, gt and ge compare a JSON number from the delivery as a
// number, exactly (ids past 2^53 included; a number of over 64 characters
// as the nearest float64, and one beyond float64's range is no number),
// with a number in the template
// ({{ if gt .body.count 3 }}, {{ eq .body.n 5 }}) or with another JSON
// number (9 is less than 10), and as text with a string
// ({{ eq .body.n "5" }}). text/template's own refused the first (an error:
// the argument took its default) and compared the second as text. Values
// that cannot be compared (a Go number with a string, a boolean in gt) are
// an error naming both types, so the argument takes its default.
//
// printf formats a JSON number as a number: {{ printf "%d items" .body.count }},
// {{ printf "%.2f" .body.price }} (as a float64 rounds it), {{ printf "%x" .body.id }}
// (exactly, past 2^64 too); %s, %v and %q print it as sent. A format that
// does not suit its arguments (%d of 2.5, a missing or extra argument) is
// an error, so the argument takes its default, rather than printing fmt's
// %!d(...) text.
//
// A JSON number is text to if, with, and, or and not: 0 is true there, as
// any non-empty text is. Compare it instead: {{ if ne .body.count 0 }}.
//
// # Limits
//
// A value may loop only over delivery data ({{ range .body.commits }}), so
// how often it loops is bounded by the body's size: define, template and
// block are refused, and a number may appear only as an argument to a
// function that does not return it ({{ index .body.list 0 }},
// {{ printf "%03d" 7 }}, not {{ range 1000 }}). A range inside a range
// may loop only over part of the outer range's element
// ({{ range .body.commits }}{{ range .files }}), not over $, a variable set
// outside it, header, an index or a number: {{ range $.body.commits }}
// within {{ range .body.commits }} would walk the list once per commit.
// Within a range, the String and Float64 methods of the data
// (.body.String) are refused: use toString or json. A rendered value over
// 64 KiB is an error, default or not.
//
// What each pass of a loop costs is bounded too: rendering a value may do
// 8 MiB of work plus 16 bytes per byte of the delivery (body, headers and
// query), counting the bytes it prints, serialises (json, toString,
// join, print, printf, println, html, js, urlquery), walks (lower, upper,
// trim), compares (eq, ne, lt, le, gt, ge) or hashes (index), and a little
// for each function call and loop iteration. That is many passes over the
// delivery: {{ json .body }} is one. A value that would do more, such as
// {{ range .body.items }}{{ if eq (json $.body) "" }}{{ end }}{{ end }}
// (the whole body serialised once per item), is an error, default or not
// (ErrTooMuchWork), which the dispatcher records as the delivery's
// failure. An HTTP job's body template has the same budget
// (RenderBody).
//
// # Resolution
//
// A value is rendered with missingkey=error. When that fails, it is
// rendered again with missing keys as no value, so default and if can
// handle them. If the result still is not complete (an error, or a part
// with no value, such as a missing key or a JSON null printed directly),
// the argument takes its default, as it does for a rendered value that is
// not valid UTF-8 (a form body in Latin-1: the run's records carry values
// as JSON text, which would replace its bytes); without a default,
// resolution fails with
// an error that names the argument and the template, which the dispatcher
// records as the run's failure; when the template reads .body and the
// body is not a JSON object (text, empty, a list), the error says so:
// "(the body is text, not a JSON object (Content-Type text/plain, 5
// bytes))". A missing query parameter or header
// (.query.env, .header.Foo) is a missing key too. An empty rendered value
// is a value: it does not fall back, nor does delivery text that reads
// "<no value>", which text/template prints for a part with no value.
package argtemplate

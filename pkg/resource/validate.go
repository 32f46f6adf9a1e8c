package resource

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/http/httpguts"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/signature"
)

// FieldError is a validation error that names the offending field, as the
// API answers it: "spec.auth.apiKey.in: must be one of header, query, path, body".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidName reports whether s is a valid resource name or namespace: DNS
// label rules, which also make it a safe NATS subject token.
func ValidName(s string) bool { return len(s) <= 63 && nameRE.MatchString(s) }

// CheckName validates a name for field.
func CheckName(field, s string) error {
	if s == "" {
		return fieldErr(field, "is required")
	}
	if !ValidName(s) {
		return fieldErr(field, "must match [a-z0-9]([a-z0-9-]*[a-z0-9])? and be at most 63 characters")
	}
	return nil
}

func checkType(t TypeMeta, kind string) error {
	if t.APIVersion != APIVersion {
		return fieldErr("apiVersion", "must be %s", APIVersion)
	}
	if t.Kind != kind {
		return fieldErr("kind", "must be %s", kind)
	}
	return nil
}

func checkMeta(m *Meta) error {
	if m.Namespace == "" {
		m.Namespace = DefaultNamespace
	}
	if err := CheckName("metadata.name", m.Name); err != nil {
		return err
	}
	return CheckName("metadata.namespace", m.Namespace)
}

var envPrefixRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
var argNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Validate checks a job and fills its defaults.
func (j *Job) Validate() error {
	if err := checkType(j.TypeMeta, KindJob); err != nil {
		return err
	}
	if err := checkMeta(&j.Metadata); err != nil {
		return err
	}
	s := &j.Spec
	switch {
	case len(s.Command) == 0 && s.HTTP == nil:
		return fieldErr("spec.command", "a job needs a command or spec.http")
	case len(s.Command) > 0 && s.HTTP != nil:
		return fieldErr("spec.http", "a job has either a command or spec.http, not both")
	case len(s.Command) > 0 && s.Command[0] == "":
		return fieldErr("spec.command[0]", "must name a program")
	}
	for i, a := range s.Command {
		// exec refuses to start it: no argument can carry a NUL.
		if strings.IndexByte(a, 0) >= 0 {
			return fieldErr(fmt.Sprintf("spec.command[%d]", i), "must not contain a NUL byte")
		}
	}
	if s.HTTP != nil {
		if err := s.HTTP.checkURL(); err != nil {
			return err
		}
		if s.HTTP.Method == "" {
			s.HTTP.Method = http.MethodPost
		}
		s.HTTP.Method = strings.ToUpper(s.HTTP.Method)
		if !validMethod(s.HTTP.Method) {
			return fieldErr("spec.http.method", "must be an HTTP method such as POST, PUT or GET (letters, digits and !#$%%&'*+-.^_`|~, no spaces)")
		}
		// net/http refuses to send what is not a header field (RFC 9110):
		// every run would fail.
		for _, k := range slices.Sorted(maps.Keys(s.HTTP.Headers)) {
			f := fmt.Sprintf("spec.http.headers[%q]", k)
			if !httpguts.ValidHeaderFieldName(k) {
				return fieldErr(f, "must be a header name: letters, digits and !#$%%&'*+-.^_`|~, no spaces or colons")
			}
			if !httpguts.ValidHeaderFieldValue(s.HTTP.Headers[k]) {
				return fieldErr(f, "the value must not contain control characters (CR, LF, NUL, ...)")
			}
		}
		if s.HTTP.SecretRef != "" {
			if err := CheckName("spec.http.secretRef", s.HTTP.SecretRef); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(s.HTTP.SecretHeaders)) {
			f := fmt.Sprintf("spec.http.secretHeaders[%q]", k)
			h := s.HTTP.SecretHeaders[k]
			switch {
			case !httpguts.ValidHeaderFieldName(k):
				return fieldErr(f, "must be a header name: letters, digits and !#$%%&'*+-.^_`|~, no spaces or colons")
			case !httpguts.ValidHeaderFieldValue(h.Prefix):
				return fieldErr(f+".prefix", "must not contain control characters (CR, LF, NUL, ...)")
			case hasHeader(s.HTTP.Headers, k):
				return fieldErr(f, "is also in spec.http.headers: name it once")
			}
			for other := range s.HTTP.SecretHeaders {
				if other != k && strings.EqualFold(other, k) {
					return fieldErr(f, "is named twice (header names ignore case): name it once")
				}
			}
			if err := CheckName(f+".secretRef", h.SecretRef); err != nil {
				return err
			}
		}
		if len(s.HTTP.Body) > argtemplate.MaxBodyBytes {
			// A body pasted in, not a template: what it renders would
			// pass the bound every run is held to.
			return fieldErr("spec.http.body", "is %d bytes: a rendered body is at most %d", len(s.HTTP.Body), argtemplate.MaxBodyBytes)
		}
		if s.HTTP.Body != "" {
			if _, err := argtemplate.BodyTemplate(s.HTTP.Body); err != nil {
				return fieldErr("spec.http.body", "%v", err)
			}
		}
	}
	seen := map[string]bool{}
	for i, a := range s.Args {
		f := fmt.Sprintf("spec.args[%d].name", i)
		if !argNameRE.MatchString(a.Name) {
			return fieldErr(f, "must be a letter or _ followed by letters, digits, _ or -")
		}
		up := EnvName(a.Name)
		if seen[up] {
			return fieldErr(f, "duplicate argument %q", a.Name)
		}
		if up == "WEBHOOK_PAYLOAD" {
			return fieldErr(f, "%q is reserved: the POST body is passed as <envPrefix>_ARG_WEBHOOK_PAYLOAD", a.Name)
		}
		seen[up] = true
	}
	if err := s.checkExecSizes(); err != nil {
		return err
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(5 * 60e9)
	}
	if s.Timeout.D() < minJobTimeout || s.Timeout.D() > maxJobDuration {
		return fieldErr("spec.timeout", "must be between 100ms and 24h")
	}
	if s.Concurrency == 0 {
		s.Concurrency = 4
	}
	if s.Concurrency < 0 || s.Concurrency > 10000 {
		return fieldErr("spec.concurrency", "must be between 1 and 10000")
	}
	if s.Retries < 0 || s.Retries > 100 {
		return fieldErr("spec.retries", "must be between 0 and 100")
	}
	if s.RetryBackoff < 0 || s.RetryBackoff.D() > maxJobDuration {
		// The executor would wait out the default for a negative one.
		return fieldErr("spec.retryBackoff", "must be between 0s (0 or absent: the default, 5s) and 24h")
	}
	if s.RetryBackoff == 0 {
		s.RetryBackoff = Duration(5e9)
	}
	if s.EnvPrefix == "" {
		s.EnvPrefix = "HOOKRUN"
	}
	if !envPrefixRE.MatchString(s.EnvPrefix) {
		return fieldErr("spec.envPrefix", "must be upper case letters, digits and _")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		// The executor passes each as "k=v": exec refuses to start a
		// command whose environment holds a NUL, and a name with = (or
		// none) would set another variable than k.
		f := fmt.Sprintf("spec.env[%q]", k)
		switch {
		case k == "":
			return fieldErr(f, "a variable needs a name")
		case strings.ContainsAny(k, "=\x00"):
			return fieldErr(f, "the name must not contain = or a NUL byte")
		case strings.IndexByte(s.Env[k], 0) >= 0:
			return fieldErr(f, "the value must not contain a NUL byte")
		}
		if strings.HasPrefix(k, s.EnvPrefix+"_") {
			// The job's input contract (the payload, the run id the
			// executor's sweep finds leftover processes by, ...).
			return fieldErr("spec.env", "%s: names starting with %s_ are the job's input, set by the executor", k, s.EnvPrefix)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.SecretEnv)) {
		f := fmt.Sprintf("spec.secretEnv[%q]", k)
		switch {
		case s.HTTP != nil:
			return fieldErr("spec.secretEnv", "an HTTP job has no environment: use spec.http.secretHeaders")
		case k == "":
			return fieldErr(f, "a variable needs a name")
		case strings.ContainsAny(k, "=\x00"):
			return fieldErr(f, "the name must not contain = or a NUL byte")
		case strings.HasPrefix(k, s.EnvPrefix+"_"):
			return fieldErr("spec.secretEnv", "%s: names starting with %s_ are the job's input, set by the executor", k, s.EnvPrefix)
		}
		if _, ok := s.Env[k]; ok {
			return fieldErr(f, "is also in spec.env: name it once")
		}
		if err := CheckName(f, s.SecretEnv[k]); err != nil {
			return err
		}
	}
	return nil
}

// HTTPURL parses raw as what a job or callback is sent to: an absolute
// http or https URL.
func HTTPURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false
	}
	return u, true
}

// Linux starts no program given an argument or environment string over
// 128 KiB (MAX_ARG_STRLEN, with its NUL), or all of them over a quarter of
// the stack limit (2 MiB with the usual 8 MiB). A job's own part is held
// to half of that, leaving room for the run's: its payload and headers
// (up to 128 KiB each in variables) and its arguments' values.
const (
	maxExecString = 128<<10 - 1
	maxExecStatic = 1 << 20
	execPointer   = 8 // what Linux counts for each string besides its bytes: its pointer
)

// checkExecSizes refuses a job whose command, variables or argument
// defaults no run could start with.
func (s *JobSpec) checkExecSizes() error {
	total := 0
	for i, a := range s.Command {
		if len(a) > maxExecString {
			return fieldErr(fmt.Sprintf("spec.command[%d]", i), "is %d bytes: Linux starts no program with an argument over 128 KiB (pass large data in a file)", len(a))
		}
		total += len(a) + 1 + execPointer
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		n := len(k) + 1 + len(s.Env[k])
		if n > maxExecString {
			return fieldErr(fmt.Sprintf("spec.env[%q]", k), "is %d bytes: Linux starts no program with a variable over 128 KiB (pass large data in a file)", n)
		}
		total += n + 1 + execPointer
	}
	if len(s.Command) == 0 {
		return nil // an HTTP job: nothing of it goes to exec
	}
	for i, a := range s.Args {
		if a.Default == nil {
			continue
		}
		// Passed as <envPrefix>_ARG_<NAME>=<default>.
		n := len(cmp.Or(s.EnvPrefix, "HOOKRUN")) + len("_ARG_") + len(EnvName(a.Name)) + 1 + len(*a.Default)
		if n > maxExecString {
			return fieldErr(fmt.Sprintf("spec.args[%d].default", i), "is %d bytes: Linux starts no program with a variable over 128 KiB, and the default is passed in one", len(*a.Default))
		}
		total += n + 1 + execPointer
	}
	if total > maxExecStatic {
		return fieldErr("spec", "the command, env and argument defaults come to %d bytes: at most 1 MiB (Linux starts no program whose arguments and environment pass 2 MiB, and the run's payload and arguments need room)", total)
	}
	return nil
}

// checkURL checks where an HTTP job sends: exactly one of a URL, which
// holds no password (stored in clear and shown by every GET of the job),
// and the name of a secret holding one.
func (h *HTTPAction) checkURL() error {
	if h.URLSecretRef != "" {
		if h.URL != "" {
			return fieldErr("spec.http", "give url or urlSecretRef, not both")
		}
		return CheckName("spec.http.urlSecretRef", h.URLSecretRef)
	}
	u, ok := HTTPURL(h.URL)
	if !ok {
		return fieldErr("spec.http.url", "must be an absolute http or https URL (or name a secret holding it: urlSecretRef)")
	}
	if holdsPassword(u) {
		return fieldErr("spec.http.url", "must not hold a password: send credentials with spec.http.secretHeaders (Authorization: Basic …) from a secret, or name a secret holding the whole URL (urlSecretRef)")
	}
	return nil
}

// holdsPassword reports whether u's userinfo has a password.
func holdsPassword(u *url.URL) bool {
	_, ok := u.User.Password() // a nil User has none
	return ok
}

// hasHeader reports whether h names header k, in any case.
func hasHeader(h map[string]string, k string) bool {
	for name := range h {
		if strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}

// Bounds of a job's durations (the messages refusing a value outside them
// say "100ms" and "24h"). Outside them a value is a typo ("1ns",
// "1000000h") rather than a choice: a timeout under a tenth of a second
// ends a run before most commands have started (an HTTP job to a nearby
// service may well want half a second), and a run or a wait before a retry of over a day
// outlasts what STATUS is sure to keep of the run (HOOKRUN_RETENTION is at
// least 24h).
const (
	minJobTimeout  = 100 * time.Millisecond
	maxJobDuration = 24 * time.Hour
)

// maxTolerance bounds a signature's timestamp tolerance, as
// signature.MaxTolerance does (the providers use minutes): past it a
// signed delivery a day old would still pass, and the replay check's
// twice the tolerance could overflow.
const maxTolerance = 24 * time.Hour

// validMethod reports whether m is an HTTP method net/http sends: a
// token (RFC 9110), which has no spaces or controls.
func validMethod(m string) bool {
	return m != "" && strings.IndexFunc(m, func(r rune) bool { return !httpguts.IsTokenRune(r) }) < 0
}

// EnvName is the environment variable suffix of an argument name.
func EnvName(arg string) string {
	return strings.ToUpper(strings.ReplaceAll(arg, "-", "_"))
}

// APIKeyIn values.
var apiKeyIn = []string{"header", "query", "path", "body"}

// Validate checks a webhook and fills its defaults. Checks that need other
// resources (the job, the secret, the filter) are the keys service's.
func (w *Webhook) Validate() error {
	if err := checkType(w.TypeMeta, KindWebhook); err != nil {
		return err
	}
	if err := checkMeta(&w.Metadata); err != nil {
		return err
	}
	s := &w.Spec
	if err := CheckName("spec.job", s.Job); err != nil {
		return err
	}
	if len(s.Methods) == 0 {
		s.Methods = []string{http.MethodPost}
	}
	for i, m := range s.Methods {
		m = strings.ToUpper(m)
		s.Methods[i] = m
		if m != http.MethodGet && m != http.MethodPost && m != http.MethodPut && m != http.MethodPatch {
			return fieldErr(fmt.Sprintf("spec.methods[%d]", i), "must be one of GET, POST, PUT, PATCH")
		}
		// Methods are matched case-insensitively: "post" after "POST" is
		// the same method twice, a typo rather than a second one.
		if slices.Contains(s.Methods[:i], m) {
			return fieldErr(fmt.Sprintf("spec.methods[%d]", i), "%s is listed twice (methods are case-insensitive)", m)
		}
	}
	modes := 0
	a := &s.Auth
	if a.None != nil {
		modes++
	}
	if a.APIKey != nil {
		modes++
		if a.APIKey.In == "" {
			a.APIKey.In = "header"
		}
		if !contains(apiKeyIn, a.APIKey.In) {
			return fieldErr("spec.auth.apiKey.in", "must be one of header, query, path, body")
		}
		if a.APIKey.Name == "" {
			// Jac Cloud's default, wherever the key sits (a header, a
			// query parameter or a body field named X-API-KEY).
			a.APIKey.Name = "X-API-KEY"
		}
		// The sender has to be able to send it: a header name is a token
		// (RFC 9110; net/http and most clients refuse anything else), and
		// no query parameter or JSON field name a client writes holds a
		// control character.
		if a.APIKey.In == "body" && slices.Contains(s.Methods, http.MethodGet) {
			// A GET's body is not read: no GET could authenticate.
			return fieldErr("spec.methods", "GET cannot carry the API key in its body (spec.auth.apiKey.in: body): put the key in the header, query or path, or leave GET out")
		}
		switch n := a.APIKey.Name; {
		case a.APIKey.In == "header" && !httpguts.ValidHeaderFieldName(n):
			return fieldErr("spec.auth.apiKey.name", "must be a header name: letters, digits and !#$%%&'*+-.^_`|~, no spaces or colons")
		case a.APIKey.In == "header" && slices.ContainsFunc(notAKeyHeader, func(h string) bool { return strings.EqualFold(h, n) }):
			return fieldErr("spec.auth.apiKey.name", "must not be %s: HTTP servers and proxies read that header themselves (no delivery could carry the key in it); name another, such as X-API-KEY", n)
		case strings.ContainsAny(n, " \t\r\n/"):
			return fieldErr("spec.auth.apiKey.name", "must not contain spaces or slashes")
		case strings.IndexFunc(n, unicode.IsControl) >= 0:
			return fieldErr("spec.auth.apiKey.name", "must not contain control characters")
		}
	}
	if a.Signature != nil {
		modes++
		if a.Signature.Profile == "" {
			return fieldErr("spec.auth.signature.profile", "is required")
		}
		if err := CheckName("spec.auth.signature.secretRef", a.Signature.SecretRef); err != nil {
			return err
		}
		if a.Signature.Tolerance < 0 {
			return fieldErr("spec.auth.signature.tolerance", "must be positive")
		}
		if a.Signature.Tolerance > 0 && a.Signature.Tolerance.D() < time.Second {
			// Signed timestamps are whole seconds: every delivery but one
			// sent on the second would be refused.
			return fieldErr("spec.auth.signature.tolerance", "must be at least 1s (signed timestamps are whole seconds; 0 or absent: the profile's default, 5m)")
		}
		if a.Signature.Tolerance.D() > maxTolerance {
			return fieldErr("spec.auth.signature.tolerance", "must be at most 24h")
		}
	}
	if modes == 0 {
		a.None = &struct{}{}
	}
	if modes > 1 {
		return fieldErr("spec.auth", "choose one of none, apiKey, signature")
	}
	if s.DedupWindow < 0 {
		return fieldErr("spec.dedupWindow", "must be positive")
	}
	if h := s.IdempotencyHeader; h != "" {
		// A name no request can carry ("X-Event-Id:") would give every
		// delivery its own event id: dedup silently off.
		if !httpguts.ValidHeaderFieldName(h) {
			return fieldErr("spec.idempotencyHeader", "must be a header name: letters, digits and !#$%%&'*+-.^_`|~, no spaces or colons")
		}
		// Headers that never name one delivery: Go's server keeps Host
		// and Transfer-Encoding out of a request's headers (every
		// delivery would be refused, or get its own id), and the others
		// are the same for every delivery of a kind or a sender, a
		// timestamp the same for every delivery of a second (every event
		// after the first would be dropped as its duplicate).
		for _, bad := range notAnEventID {
			if strings.EqualFold(h, bad) {
				return fieldErr("spec.idempotencyHeader", "must not be %s: it does not name one delivery (it is missing from requests, or the same for many deliveries, whose events would be dropped as duplicates); name the header that carries the sender's delivery or event id", bad)
			}
		}
		// The event id is stored, answered and given to the job: never a
		// credential.
		for _, cred := range CredentialHeaders {
			if strings.EqualFold(h, cred) {
				return fieldErr("spec.idempotencyHeader", "must not be %s: the event id is stored and shown with every run", h)
			}
		}
		if k := a.APIKey; k != nil && (k.In == "header" || k.In == "") && strings.EqualFold(h, cmp.Or(k.Name, "X-API-KEY")) {
			return fieldErr("spec.idempotencyHeader", "must not be the API key's header: the event id is stored and shown with every run")
		}
		if err := checkProfileEventIDHeader(a.Signature, h); err != nil {
			return err
		}
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.MaxBodyBytes < 0 || s.MaxBodyBytes > MaxBodyBytes {
		return fieldErr("spec.maxBodyBytes", "must be between 1 and %d (4 MiB: a delivery travels base64-encoded in one NATS message, at most 8 MB)", MaxBodyBytes)
	}
	if r := s.RateLimit; r != nil {
		if r.PerSecond <= 0 {
			return fieldErr("spec.rateLimit.perSecond", "must be positive")
		}
		if r.Burst < 0 {
			return fieldErr("spec.rateLimit.burst", "must be positive (0 or absent: perSecond)")
		}
		if r.Burst == 0 {
			r.Burst = int(r.PerSecond)
			if r.Burst < 1 {
				r.Burst = 1
			}
		}
	}
	if r := s.Response; r != nil && r.Status != 0 && r.Status != http.StatusOK && r.Status != http.StatusAccepted {
		return fieldErr("spec.response.status", "must be 200 or 202")
	}
	if c := s.Callback; c != nil && c.URLSecretRef != "" {
		if c.URL != "" {
			return fieldErr("spec.callback", "give url or urlSecretRef, not both")
		}
		if err := CheckName("spec.callback.urlSecretRef", c.URLSecretRef); err != nil {
			return err
		}
	} else if c != nil {
		u, ok := HTTPURL(c.URL)
		if !ok {
			return fieldErr("spec.callback.url", "must be an absolute http or https URL (or name a secret holding it: urlSecretRef)")
		}
		if holdsPassword(u) {
			// Stored in clear, shown by every GET of the webhook and
			// copied into each run's record.
			return fieldErr("spec.callback.url", "must not hold a password: let the receiver verify the callback's signature (spec.callback.secretRef) instead")
		}
	}
	if c := s.Callback; c != nil && c.SecretRef != "" {
		if err := CheckName("spec.callback.secretRef", c.SecretRef); err != nil {
			return err
		}
	}
	return nil
}

// SuccessStatus is the status code of an accepted delivery.
func (w *Webhook) SuccessStatus() int {
	if w.Spec.Response != nil && w.Spec.Response.Status != 0 {
		return w.Spec.Response.Status
	}
	return http.StatusAccepted
}

// Validate checks a secret and fills its defaults.
func (s *Secret) Validate() error {
	if err := checkType(s.TypeMeta, KindSecret); err != nil {
		return err
	}
	if err := checkMeta(&s.Metadata); err != nil {
		return err
	}
	switch g := s.Spec.PreviousValidFor; {
	case g == nil:
		// Only an absent field means the default: an explicit "0s" is no
		// grace (a leaked value must stop working at once). Either is
		// stored as a value, so GET shows it and re-applying what GET
		// shows changes nothing.
		d := Duration(DefaultPreviousValidFor)
		s.Spec.PreviousValidFor = &d
	case *g < 0:
		return fieldErr("spec.previousValidFor", "must not be negative (0s: the replaced value stops working at once)")
	}
	if len(s.Spec.Value) > 4096 {
		return fieldErr("spec.value", "must be at most 4096 bytes")
	}
	return nil
}

// ErrNotFound is returned when a resource does not exist.
var ErrNotFound = errors.New("not found")

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// MaxBodyBytes is the largest body limit a webhook may set: stored as
// base64 (4/3 of it) with its headers in one NATS message, a delivery must
// stay under NATS' max_payload (8 MB in deploy/nats), with room left for
// the run request's arguments.
const MaxBodyBytes = 4 << 20

// DefaultMaxBodyBytes is the body limit of a webhook that sets none:
// Validate stores it; the ingress applies it to a webhook stored without
// one (hand-written configuration).
const DefaultMaxBodyBytes = 1 << 20

// MaxEnvEntry is the longest environment entry ("name=value") a job's
// payload or headers are passed in: Linux refuses one of 128 KiB with its
// NUL (MAX_ARG_STRLEN). Larger ones are only in the files named by
// <PREFIX>_WEBHOOK_PAYLOAD_FILE and <PREFIX>_WEBHOOK_HEADERS_FILE. The
// executor leaves such a variable out; keys warns of a webhook whose body
// limit lets through bodies its job's payload variable cannot hold.
const MaxEnvEntry = 128<<10 - 1

// checkProfileEventIDHeader checks spec.idempotencyHeader h against the
// webhook's signature profile, if it has one: the header then replaces the
// profile's own event id header (Orloj: the event id header is configured,
// the profile gives the default). An unknown profile is left to the keys
// service, which names spec.auth.signature.profile.
func checkProfileEventIDHeader(sa *SignatureAuth, h string) error {
	if sa == nil {
		return nil
	}
	p, ok := signature.Lookup(sa.Profile)
	if !ok {
		return nil
	}
	if _, ok := signature.WithEventIDHeader(p, h); !ok {
		return fieldErr("spec.idempotencyHeader", "the %s profile signs the event id, and one read from an unsigned header would let a captured delivery be replayed under a new id (profiles that take an idempotency header: %s)", sa.Profile, strings.Join(headerEventIDProfiles(), ", "))
	}
	for _, cred := range p.CredentialHeaders() {
		if strings.EqualFold(h, cred) {
			return fieldErr("spec.idempotencyHeader", "must not be %s: it carries the %s profile's signature or token, and the event id is stored and shown with every run", h, sa.Profile)
		}
	}
	return nil
}

// notAKeyHeader are headers no delivery can carry an API key in: the
// request's framing and hop-by-hop headers, which Go's server (and any
// proxy before it) reads, moves or refuses (Host is taken out of the
// header map; a Transfer-Encoding holding a key is answered 501).
var notAKeyHeader = []string{
	"Host", "Transfer-Encoding", "Connection", "Content-Length", "Keep-Alive", "Proxy-Connection",
	"Te", "Trailer", "Upgrade", "Expect",
}

// notAnEventID are headers that can be mistaken for an event id header
// but name no single delivery: hop-by-hop and framing headers, what every
// request of a client or content type carries, the signed timestamps of
// the profiles, and the providers' event type headers (X-GitHub-Event is
// easily taken for X-GitHub-Delivery).
var notAnEventID = []string{
	"Host", "Transfer-Encoding", "Connection", "Content-Length", "Content-Type", "Content-Encoding",
	"Accept", "Accept-Encoding", "User-Agent", "Date", "Expect", "Upgrade", "Te", "Trailer",
	"X-Timestamp", "X-Slack-Request-Timestamp", "Webhook-Timestamp", "Svix-Timestamp",
	"X-GitHub-Event", "X-GitHub-Hook-ID", "X-GitHub-Hook-Installation-Target-ID", "X-GitHub-Hook-Installation-Target-Type",
	"X-Gitlab-Event", "X-Gitlab-Instance", "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-API-Version",
}

// headerEventIDProfiles names the profiles whose event id header a webhook
// may choose, for the message that refuses the others.
func headerEventIDProfiles() []string {
	var names []string
	for _, name := range signature.Names() {
		if p, _ := signature.Lookup(name); p != nil {
			if _, ok := signature.WithEventIDHeader(p, "X-Event-Id"); ok {
				names = append(names, name)
			}
		}
	}
	return names
}

// CredentialHeaders are the request headers that carry a credential
// whatever a webhook's auth mode: the ingress strips them from every
// delivery, and none may be a webhook's spec.idempotencyHeader (the event
// id is stored, answered and given to the job). X-API-KEY is where Janus'
// senders put their key, and where most senders put one. X-Gitlab-Token is
// GitLab's secret token, which GitLab sends beside its signed deliveries
// (webhook-signature, verified by the standard-webhooks profile) when both
// are set, and which a webhook of any profile must not store.
var CredentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Gitlab-Token"}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hookrun/hookrun/pkg/service"
)

// Exit codes, as `hookrun --help` documents them.
const (
	codeOK          = 0
	codeError       = 1
	codeUsage       = 2
	codeNotFound    = 3
	codeRefused     = 4
	codeUnavailable = 5
	codeRunFailed   = 6
	// codeNotFollowed: send or replay --wait had the delivery accepted but
	// could not follow its run to its end: not "retry later" (5), which
	// would have a script send the delivery again.
	codeNotFollowed = 7
	// codeInterrupted: stopped by Ctrl-C or SIGTERM while waiting, as a
	// shell reports a process a SIGINT ended (128 + 2).
	codeInterrupted = 130
)

// Defaults of the client flags (each has an environment variable).
const (
	defaultAPIURL     = "http://127.0.0.1:8081"
	defaultIngressURL = "http://127.0.0.1:8080"
	defaultNamespace  = "default"
)

func usageErr(format string, a ...any) error {
	return &exitError{code: codeUsage, msg: oneLine(fmt.Sprintf(format, a...))}
}

func failErr(code int, format string, a ...any) error {
	return &exitError{code: code, msg: oneLine(fmt.Sprintf(format, a...))}
}

// oneLine keeps an error message on one line, as scripts read it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// exitCode returns the exit code err stands for.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err == nil {
		return codeOK
	}
	return codeError
}

// usageArgs makes an argument check's error a usage error (exit 2), and
// refuses an empty argument as one too. An empty argument is nearly always
// a shell variable that is not set (`hookrun get run "$RUN"`); passed on,
// it would read as no name at all (get would list every run and exit 0) or
// ask the API for a path it does not serve, and a script would take either
// answer for one about the name it meant.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageErr("%v (see %s --help)", err, cmd.CommandPath())
		}
		for i, a := range args {
			if a == "" {
				return usageErr("argument %d is empty (see %s --help)", i+1, cmd.CommandPath())
			}
		}
		return nil
	}
}

// noArgs refuses positional arguments with a word on what to do instead
// (hint), where cobra would say `unknown command "x"` of a command that
// has no subcommand of that name.
func noArgs(hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return fmt.Errorf("%s takes no arguments (%q given): %s", cmd.CommandPath(), args[0], hint)
	}
}

// clientOptions are the flags every API client command shares.
type clientOptions struct {
	apiURL     string
	token      string
	namespace  string
	ingressURL string
}

// addClientFlags registers the shared flags on a top-level client command
// (persistent, so its subcommands have them too) and makes flag errors
// usage errors.
func addClientFlags(cmd *cobra.Command, o *clientOptions) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.apiURL, "api-url", envDefault("HOOKRUN_API_URL", defaultAPIURL), "keys API URL (HOOKRUN_API_URL)")
	// --help shows the defaults the environment gives, which may hold a
	// password or a token: redacted, as in error messages.
	defer redactDefault(f, "api-url", "ingress")
	// The token's default is read at run time so that --help never prints it.
	f.StringVar(&o.token, "token", "", "admin token (default $HOOKRUN_ADMIN_TOKEN)")
	f.StringVarP(&o.namespace, "namespace", "n", envDefault("HOOKRUN_NAMESPACE", defaultNamespace), "namespace (HOOKRUN_NAMESPACE)")
	f.StringVar(&o.ingressURL, "ingress", envDefault("HOOKRUN_INGRESS_URL", defaultIngressURL), "ingress URL, for endpoint URLs and send (HOOKRUN_INGRESS_URL)")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see %s --help)", err, c.CommandPath())
	})
}

// redactDefault redacts the URLs --help prints as the named flags'
// defaults.
func redactDefault(f *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if fl := f.Lookup(n); fl != nil {
			fl.DefValue = redactedURL(fl.DefValue)
		}
	}
}

func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client returns an API client for the options, or a usage error that
// says what to set.
func (o *clientOptions) client() (*apiClient, error) {
	tok := o.token
	if tok == "" {
		tok = os.Getenv("HOOKRUN_ADMIN_TOKEN")
	}
	if tok == "" {
		return nil, usageErr("no admin token: set HOOKRUN_ADMIN_TOKEN or pass --token (hookrun dev prints one)")
	}
	if !validHeaderValue(tok) {
		setting := "HOOKRUN_ADMIN_TOKEN"
		if o.token != "" {
			setting = "--token"
		}
		return nil, usageErr("the admin token (%s) holds a control character, such as a newline, that no header can carry: set it again without it", setting)
	}
	u, err := url.Parse(o.apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErr("--api-url %q: want an http(s) URL such as %s", redactedURL(o.apiURL), defaultAPIURL)
	}
	if !validNamespace(o.namespace) {
		return nil, usageErr("--namespace %q: must match [a-z0-9]([a-z0-9-]*[a-z0-9])?", o.namespace)
	}
	return &apiClient{base: strings.TrimRight(o.apiURL, "/"), token: tok, ns: o.namespace, http: noRedirects(&http.Client{Timeout: 30 * time.Second})}, nil
}

// noRedirects makes c answer a redirect rather than follow it: Go's client
// follows a 301 or 302 to a PUT, DELETE or POST with a GET and no body,
// so `apply`, `delete` and `send` behind an http → https redirect would
// succeed having changed nothing. A redirect is an error (redirected).
func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// redirected is the error of a redirect answer from what (the setting that
// named the URL, "--api-url" or "--ingress"): 5, with where it points.
func redirected(what string, resp *http.Response) error {
	loc := resp.Header.Get("Location")
	if u, err := resp.Request.URL.Parse(loc); err == nil && loc != "" {
		loc = u.String()
	}
	return failErr(codeUnavailable, "%s answered %s, a redirect to %s: set %s to the address it points to (the CLI does not follow redirects: a PUT, DELETE or POST would be sent again as a GET, without its body)", redactedURL(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host), resp.Status, redactedURL(loc), what)
}

// ingress returns the ingress base URL.
func (o *clientOptions) ingress() (string, error) {
	u, err := url.Parse(o.ingressURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErr("--ingress %q: want an http(s) URL such as %s", redactedURL(o.ingressURL), defaultIngressURL)
	}
	return strings.TrimRight(o.ingressURL, "/"), nil
}

// redactedURL is a URL as the CLI prints it. HOOKRUN_API_URL, --api-url and
// --ingress may carry credentials, a password in the user info or a token in
// the query, and error messages and endpoint URLs end up in CI logs: the
// password is shown as "xxxxx" (as url.URL.Redacted does) and so is the
// whole query.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		// Not a URL to take apart ("admin:pw@host" is scheme "admin"):
		// drop all that may be a credential, the query and what comes
		// before an "@".
		s := raw
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i] + "?xxxxx"
		}
		if i := strings.LastIndex(s, "@"); i >= 0 {
			scheme := ""
			if j := strings.Index(s[:i], "://"); j >= 0 {
				scheme = s[:j+3]
			}
			s = scheme + "xxxxx@" + s[i+1:]
		}
		return s
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "xxxxx", false
	}
	return u.Redacted()
}

// validHeaderValue reports whether s can be sent in a header: no control
// character but a tab (net/http's own check, which refuses the request
// only when it is sent, with an error that reads like a network failure).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

func validNamespace(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// apiClient calls the keys service.
type apiClient struct {
	base  string
	token string
	ns    string
	http  *http.Client
}

// apiResponse is an API answer that was not an error.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// apiErrorBody is the API's error body.
type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do calls method path (query added) with body as JSON, and turns an error
// answer into an exitError (see answerError); no answer is 5.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body any) (*apiResponse, error) {
	var r io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			r = bytes.NewReader(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				return nil, err
			}
			r = bytes.NewReader(j)
		}
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, failErr(codeUsage, "%v", unwrapURLError(err)) // its URL may hold a password
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, failErr(codeUnavailable, "cannot reach the API at %s: %v", redactedURL(c.base), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, redirected("--api-url", resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, failErr(codeUnavailable, "reading the API's answer: %v", err)
	}
	if resp.StatusCode >= 300 {
		return nil, c.answerError(path, resp.StatusCode, resp.Status, b)
	}
	// Every answer of the API is JSON. Anything else (a proxy's page, an
	// empty body) means the request may not have reached it: not a success.
	if !json.Valid(b) {
		return nil, failErr(codeUnavailable, "the API answered %s with something that is not JSON: is --api-url the keys API?", resp.Status)
	}
	return &apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// getJSON GETs path and decodes the answer into out.
func (c *apiClient) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	return decodeAnswer(resp.Body, out)
}

func decodeAnswer(b []byte, out any) error {
	if err := json.Unmarshal(b, out); err != nil {
		return failErr(codeUnavailable, "the API answered something that is not the expected JSON: %v", err)
	}
	return nil
}

// nsQuery is ?namespace= for the client's namespace.
func (c *apiClient) nsQuery() url.Values { return url.Values{"namespace": {c.ns}} }

// inNamespace adds to a run's or delivery's "not found" the namespace it
// was looked for in: ids are unique across namespaces, and one of another
// namespace is the likeliest miss.
func (c *apiClient) inNamespace(err error) error {
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != codeNotFound {
		return err
	}
	return failErr(codeNotFound, "%s (looked for in namespace %s: one of another namespace needs -n)", ee.msg, c.ns)
}

// answerError maps an error answer (of the API or the ingress) to an exit code
// and its message: 404 → 3, other 4xx → 4, and 5 only for a 5xx that means
// "retry later": 502, 503, 504, or one without the service's own error
// body (a proxy's page: the service may not have answered at all). A 5xx
// with the service's error code (500 job_not_runnable, a webhook whose job
// or secret is missing; 500 internal) is 1: the service answered, and
// sending again fails the same way until someone fixes the configuration,
// so scripts that retry on 5 must not retry it.
func answerError(status int, statusText string, body []byte) error {
	var eb apiErrorBody
	msg := statusText
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		msg = eb.Error.Message
		if eb.Error.Code != "" {
			msg += " (" + eb.Error.Code + ")"
		}
	}
	switch {
	case status == http.StatusNotFound:
		return failErr(codeNotFound, "%s", msg)
	case status == http.StatusTooManyRequests:
		// "Retry later", as a 503: not a refusal of what was sent.
		return failErr(codeUnavailable, "%s", msg)
	case status >= 400 && status < 500:
		return failErr(codeRefused, "%s", msg)
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return failErr(codeUnavailable, "%s", msg)
	case status >= 500 && eb.Error.Code != "":
		return failErr(codeError, "%s", msg)
	default:
		return failErr(codeUnavailable, "%s", msg)
	}
}

// answerError is answerError for the keys API's answer to path. A 404 is
// "not found" (3) only when it is the keys API's own for a resource: code
// not_found and a message naming what is missing. Any other 404 — the
// ingress' endpoint_not_found, a page of a proxy, the "nothing is served
// at …" (or, from an older keys, "Not Found") of a route the keys API does
// not have (--api-url with a path), any 404 for a
// collection (/v1/jobs), which the keys API always has — means --api-url
// points somewhere else, and read as "not found" it would tell a script
// that the resource does not exist. It is 5, as an answer that is not JSON.
func (c *apiClient) answerError(path string, status int, statusText string, body []byte) error {
	err := answerError(status, statusText, body)
	if status == http.StatusUnauthorized {
		// The keys API's one 401: the admin token.
		return withSuffix(err, ": check --token or HOOKRUN_ADMIN_TOKEN (hookrun dev prints its token and keeps it in its data directory's admin.token; docker compose in .env)")
	}
	if status != http.StatusNotFound {
		return err
	}
	var eb apiErrorBody
	_ = json.Unmarshal(body, &eb)
	collection := strings.Count(strings.Trim(path, "/"), "/") < 2 // /v1/jobs, not /v1/jobs/x
	// "Not Found" is how keys before 2026-11-29 said it.
	routeMiss := eb.Error.Message == http.StatusText(http.StatusNotFound) || strings.HasPrefix(eb.Error.Message, service.NothingServedAt)
	if eb.Error.Code == "not_found" && !routeMiss && !collection {
		return err
	}
	return failErr(codeUnavailable, "the API at %s answered %s to %s: %s: is --api-url the keys API?", redactedURL(c.base), statusText, path, errMessage(err))
}

// unwrapURLError drops url.Error's "Get "http://…": " prefix, which repeats
// what the message already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// withPrefix prefixes an error's message, keeping its exit code.
// withSuffix is err with suffix after its message, its exit code kept.
func withSuffix(err error, suffix string) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.code, msg: ee.msg + suffix}
	}
	return fmt.Errorf("%w%s", err, suffix)
}

func withPrefix(prefix string, err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.code, msg: prefix + ": " + ee.msg}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

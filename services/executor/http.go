package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// runHTTP runs an HTTP job: it sends the payload (or the job's body
// template rendered with the resolved args) to the job's URL, signed when
// the job names a secret. A non-2xx answer fails the run.
func (x *Executor) runHTTP(ctx context.Context, job *resource.Job, rr *message.RunRequest, attempt int) outcome {
	h := job.Spec.HTTP
	body := rr.Payload
	if h.Body != "" {
		// The data the dispatcher built the run's arguments from. A request
		// of an older dispatcher has no method or query: they are empty.
		d := argtemplate.NewData(rr.Payload, rr.ContentType, rr.Header, rr.Query, rr.Method, rr.Webhook, rr.EventID)
		b, err := argtemplate.RenderBody(h.Body, d, map[string]any{"args": argsOf(job, rr), "payload": string(rr.Payload), "run": rr.ID, "event": rr.EventID})
		if err != nil {
			return notStarted("body template: " + err.Error())
		}
		body = b
	}
	var secrets []string // masked in the answer kept as output
	target := h.URL
	if h.URLSecretRef != "" {
		v, err := x.secretValue(rr.Namespace, h.URLSecretRef)
		if err != nil {
			return notStarted("spec.http.urlSecretRef: " + err.Error())
		}
		target = strings.TrimSpace(v)
		if _, ok := resource.HTTPURL(target); !ok {
			return notStarted("spec.http.urlSecretRef: secret " + h.URLSecretRef + " does not hold an absolute http or https URL")
		}
		secrets = append(secrets, urlSecretParts(target)...)
	}
	runCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, jobTimeout(job))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.Method, target, bytes.NewReader(body))
	if err != nil {
		return notStarted(maskedRequestError(err, "the job's URL", append(urlSecretParts(target), secrets...)))
	}
	ct := rr.ContentType
	if ct == "" || h.Body != "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	for _, k := range slices.Sorted(maps.Keys(h.SecretHeaders)) {
		sh := h.SecretHeaders[k]
		v, err := x.secretValue(rr.Namespace, sh.SecretRef)
		if err != nil {
			return notStarted("spec.http.secretHeaders[" + k + "]: " + err.Error())
		}
		if !httpguts.ValidHeaderFieldValue(sh.Prefix + v) {
			// Not quoted: it is a credential.
			return notStarted("spec.http.secretHeaders[" + k + "]: secret " + sh.SecretRef + " holds a character no header value can (CR, LF, NUL, ...)")
		}
		req.Header.Set(k, sh.Prefix+v)
		secrets = append(secrets, v)
	}
	req.Header.Set("X-Hookrun-Run", rr.ID)
	req.Header.Set("X-Hookrun-Attempt", strconv.Itoa(attempt))
	var signing []string // the current value first, then those in their grace
	if h.SecretRef != "" {
		vals, err := x.cat.SecretValues(rr.Namespace, h.SecretRef, time.Now())
		if err != nil {
			return notStarted(fmt.Sprintf("secret %s: %v", h.SecretRef, err))
		}
		signing = vals
	}
	// The id a receiver dedups by: the same for every attempt of this
	// delivery's run, another for a later delivery of the event (which runs
	// again under the same run id).
	id := rr.ID
	if rr.DeliveryID != "" {
		id += "." + rr.DeliveryID
	}
	SignAll(req.Header, body, signing, id, time.Now())
	resp, err := x.jobClient.Do(req)
	if err == nil {
		defer resp.Body.Close()
	}
	var respBody []byte
	if err == nil {
		// Its first MaxOutput bytes are the run's output, marked when the
		// answer was longer (as a command's output is).
		respBody, err = io.ReadAll(io.LimitReader(resp.Body, int64(x.cfg.MaxOutput)+1))
	}
	switch {
	case err == nil:
	case runCtx.Err() != nil:
		return outcome{status: message.StatusFailed, err: "stopped", interrupted: true}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return outcome{status: message.StatusTimedOut, err: "timed out after " + jobTimeout(job).String()}
	default:
		// The URL's parts whether it is a secret's or the job's own
		// (requestError leaves its path and query out for a reason), and
		// the secret headers' values, which an answer may quote as well.
		return outcome{status: message.StatusFailed, err: maskedRequestError(err, "the job's URL", append(urlSecretParts(target), secrets...))}
	}
	code := resp.StatusCode
	var output []byte
	if len(respBody) > x.cfg.MaxOutput {
		output = append(maskCut(respBody[:x.cfg.MaxOutput], nil, respBody[x.cfg.MaxOutput:], maskable(secrets...), false, true), "\n[…response truncated…]\n"...)
	} else {
		output = mask(respBody, maskable(secrets...))
	}
	o := outcome{exitCode: &code, output: string(output)}
	if code < 200 || code > 299 {
		o.status, o.err = message.StatusFailed, fmt.Sprintf("HTTP %d", code)
	} else {
		o.status = message.StatusSucceeded
	}
	return o
}

// urlSecretParts is what of a URL that is a secret is masked in output: a
// receiver's answer may quote its path or a token in it rather than the
// whole URL. The URL, its path and query, and each path segment or query
// value of at least 8 bytes that is not a plain lower-case word (a token,
// not "services" or "webhooks").
func urlSecretParts(raw string) []string {
	parts := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return parts
	}
	parts = append(parts, u.RequestURI(), u.EscapedPath(), u.RawQuery)
	token := func(p string) {
		if len(p) >= 8 && strings.ContainsFunc(p, func(r rune) bool { return r < 'a' || r > 'z' }) {
			parts = append(parts, p)
		}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		token(seg)
		if v, err := url.PathUnescape(seg); err == nil && v != seg {
			token(v)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			token(v)
		}
	}
	return parts
}

// secretValue is the current value of secret name in namespace ns; its
// error names the secret, never a value.
func (x *Executor) secretValue(ns, name string) (string, error) {
	vals, err := x.cat.SecretValues(ns, name, time.Now())
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return vals[0], nil
}

// requestError describes a failed request, an HTTP job's or a callback's,
// naming only its URL's scheme, host and port: the userinfo, path and query
// may hold credentials (a password, an API key in the query, a token in the
// path as Slack's incoming webhooks have). An HTTP job's error goes into the
// run's status, which run queries and callback receivers see; a callback's
// into the executor's log, at every attempt. Go's own message quotes the
// whole URL, hiding only a userinfo password, and a parse error not even
// that. what names a URL that does not parse ("the job's URL"); the reason
// is left out too, as it may quote a piece of the URL (a password with an
// unescaped '/' is read as a port).
func requestError(err error, what string) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err.Error()
	}
	if ue.Op == "parse" {
		return "parse " + what + ": malformed URL"
	}
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		what = u.Scheme + "://" + u.Host
	}
	return ue.Op + " " + what + ": " + ue.Err.Error()
}

// maskedRequestError is requestError with secrets masked as in output
// (mask): Go's reason may quote what the receiver sent back (an answer it
// cannot parse: `malformed HTTP status code "/hooks/<token>"`, a receiver
// echoing the request line), and with it the URL's path and query or a
// header's value.
func maskedRequestError(err error, what string, secrets []string) string {
	return string(mask([]byte(requestError(err, what)), maskable(secrets...)))
}

// noRedirect answers a callback's redirect as the result, a failed attempt:
// a receiver must not be able to point the executor's signed POST at
// another host (an internal one: the executor's network is not the
// receiver's).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// sameOriginRedirect follows an HTTP job's redirects on the job's own host
// only (http may go to https), at most five: a redirect elsewhere is the
// job's answer, so the job's headers (credentials among them) and its
// response (the run's output) never come from another host.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) >= 5 || req.URL.Host != first.Host || (req.URL.Scheme != first.Scheme && req.URL.Scheme != "https") {
		return http.ErrUseLastResponse
	}
	return nil
}

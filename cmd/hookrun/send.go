package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

func init() { clientCommands = append(clientCommands, newSendCmd) }

type sendOptions struct {
	data        string
	eventID     string
	secret      string
	key         string
	method      string
	contentType string
	headers     []string
	wait        bool
	timeout     time.Duration
	output      string
}

func newSendCmd() *cobra.Command {
	o := &clientOptions{}
	so := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send WEBHOOK",
		Short: "Send a test delivery to a webhook, signed or keyed as it requires",
		Long: `Send a delivery to a webhook's endpoint at the ingress, the way its real
sender would: the webhook is read from the API (endpoint, methods, auth), and
the request is signed for its signature profile (github, generic, stripe,
slack, standard-webhooks, shopify, gitlab) or carries the API key where the
webhook expects it (header, query, path or body).

The API never returns secret values, so pass the signing secret with
--secret (or HOOKRUN_WEBHOOK_SECRET) and an API key with --key (or
HOOKRUN_API_KEY). The body is -d JSON, --data @file, or --data @- (stdin).

Exit codes: 0 accepted, 1 the webhook cannot run (500 job_not_runnable: see its
status.lastError), 2 usage (a flag, or a --data file that cannot be read),
3 endpoint not found (the ingress' endpoint_not_found), 4 refused (401, 403 and other 4xx but 404 and 429), 5 ingress unavailable: retry
later (no answer, 429 rate_limited, 502/503/504, or a 404 that is not the ingress'
own: is --ingress the ingress?); with --wait, 6 when the run did not succeed,
7 when it was accepted but could not be followed to its end (do not send it
again: hookrun runs watch RUN), 130 stopped by Ctrl-C while waiting.`,
		Example: `  hookrun send report-github-push --secret "$GH_SECRET" -H 'X-GitHub-Event: push' -d '{"ref":"refs/heads/main"}' --event-id gh-1 --wait
  hookrun send janus-deploy --key "$KEY" --data @payload.json
  hookrun send workjet-tickets -d '{"event":"ticket.created"}' -o json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(so.output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ingress, err := o.ingress()
			if err != nil {
				return err
			}
			return runSend(cmd.Context(), c, ingress, args[0], so, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addClientFlags(cmd, o)
	f := cmd.Flags()
	f.StringVarP(&so.data, "data", "d", "", "body: JSON text, @file, or @- for stdin (default: empty)")
	f.StringVar(&so.eventID, "event-id", "", `event id (signature profiles: default a random one, or the value of a --header naming the id's header: spec.idempotencyHeader, else the profile's own, such as X-GitHub-Delivery or webhook-id; --event-id wins over such a --header, which is then not sent; stripe: the body's "id", added when it has none; slack: the body's "event_id", added only with --event-id, else the ingress names the delivery by its signature; sent in spec.idempotencyHeader when the webhook names one; an unsigned webhook takes one only with spec.idempotencyHeader)`)
	f.StringVar(&so.secret, "secret", "", "signing secret of a signed webhook (default $HOOKRUN_WEBHOOK_SECRET)")
	f.StringVar(&so.key, "key", "", "API key of an api-key webhook (default $HOOKRUN_API_KEY)")
	f.StringVarP(&so.method, "method", "X", "", "HTTP method (default POST when the webhook allows it)")
	f.StringVar(&so.contentType, "content-type", "application/json", "Content-Type of a body")
	f.StringArrayVarP(&so.headers, "header", "H", nil, `extra header "Name: value" (repeatable)`)
	f.BoolVar(&so.wait, "wait", false, "follow the run until it ends (its progress goes to stderr with -o json|yaml); exit 6 unless it succeeded")
	f.DurationVar(&so.timeout, "timeout", 2*time.Minute, "with --wait, give up after this long (0: never)")
	addOutputFlag(cmd, &so.output, "format of the ingress' answer")
	return cmd
}

// ingressAnswer is the ingress' answer to an accepted delivery.
type ingressAnswer struct {
	Accepted    bool   `json:"accepted"`
	Duplicate   bool   `json:"duplicate"`
	WebhookID   string `json:"webhookId"`
	DeliveryID  string `json:"deliveryId"`
	EventID     string `json:"eventId"`
	ExecutionID string `json:"executionId"`
	Status      string `json:"status"`
}

// runSend sends the delivery and prints the ingress' answer to out; with
// --wait it follows the run, printing its progress to out, or to errOut
// when out is JSON or YAML (which must stay one document).
func runSend(ctx context.Context, c *apiClient, ingress, name string, so *sendOptions, stdin io.Reader, out, errOut io.Writer) error {
	var w resource.Webhook
	if err := c.getJSON(ctx, "/v1/webhooks/"+url.PathEscape(name), c.nsQuery(), &w); err != nil {
		return err
	}
	if w.Status.EndpointPath == "" {
		return failErr(codeUnavailable, "webhook %s has no endpoint yet", name)
	}
	body, err := readData(so.data, stdin)
	if err != nil {
		return err
	}
	req, err := buildDelivery(ctx, ingress, &w, body, so, time.Now())
	if err != nil {
		return err
	}
	status, respBody, retryAfter, err := deliver(ctx, req, !w.Spec.Disabled)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		if w.Spec.Disabled && status == http.StatusNotFound && endpointNotFound(respBody) {
			return failErr(codeNotFound, "webhook %s is disabled (spec.disabled): its endpoint answers 404 endpoint_not_found; apply it without disabled to take deliveries again", name)
		}
		return ingressError(status, respBody, retryAfter)
	}
	var a ingressAnswer
	if err := json.Unmarshal(respBody, &a); err != nil {
		return failErr(codeUnavailable, "the ingress answered %d with something that is not JSON", status)
	}
	if so.output != outTable {
		if err := printRaw(out, so.output, respBody); err != nil {
			return err
		}
	} else {
		line := fmt.Sprintf("accepted: delivery %s, event %s, run %s (%s)", a.DeliveryID, a.EventID, a.ExecutionID, a.Status)
		if a.Duplicate {
			line += " — a duplicate of an earlier delivery of this event"
		}
		fmt.Fprintln(out, line)
	}
	if !so.wait || a.ExecutionID == "" {
		return nil
	}
	// The run of the delivery sent; for a duplicate, the run the event
	// already has (its answer may name a delivery that never runs: one the
	// dedup claim, not JetStream, told apart).
	delivery := a.DeliveryID
	if a.Duplicate {
		delivery = ""
	}
	return followAccepted(ctx, c, a.DeliveryID, a.ExecutionID, delivery, so.timeout, progressOut(so.output, out, errOut))
}

// followAccepted follows run id of delivery accepted (the one sent or
// replayed; follow is the delivery whose statuses to follow, "" for the
// run's) until it ends, for at most timeout (none when <= 0, as runs
// watch), and gives its exit (runResult). Ctrl-C stops it (130). An API it
// cannot follow the run through is 7, not "retry later": the delivery is
// in, and sending it again would run it twice.
func followAccepted(ctx context.Context, c *apiClient, accepted, id, follow string, timeout time.Duration, out io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	r, err := watchRun(ctx, c, id, follow, out, 10*time.Second)
	if code := exitCode(err); code == codeUnavailable || code == codeNotFound {
		return failErr(codeNotFollowed, "delivery %s was accepted as run %s, but its run could not be followed: %v. Do not send it again; follow it with `hookrun runs watch %s`", accepted, id, err, id)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// --timeout passed: the run goes on. Not 1, which says that
		// sending again fails the same way: it would run the job twice.
		return failErr(codeNotFollowed, "delivery %s was accepted as run %s, which has not ended within --timeout %s. Do not send it again; follow it with `hookrun runs watch %s`", accepted, id, timeout, id)
	}
	if err != nil {
		return err
	}
	return runResult(r)
}

// progressOut is where a command that prints format to out writes the
// progress of a run it waits for: out for a table, else errOut, so that
// JSON or YAML output stays one document a script can parse.
func progressOut(format string, out, errOut io.Writer) io.Writer {
	if format == outTable {
		return out
	}
	return errOut
}

// readData reads --data: text, @file or @- (stdin).
func readData(data string, stdin io.Reader) ([]byte, error) {
	switch {
	case data == "@-":
		return io.ReadAll(stdin)
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			// A usage error: exit 1 means the webhook cannot run.
			return nil, usageErr("--data %s: %v", data, err)
		}
		return b, nil
	}
	return []byte(data), nil
}

// buildDelivery makes the request the webhook's sender would make.
func buildDelivery(ctx context.Context, ingress string, w *resource.Webhook, body []byte, so *sendOptions, now time.Time) (*http.Request, error) {
	method := strings.ToUpper(so.method)
	if method == "" {
		method = http.MethodPost
		if !slices.Contains(w.Spec.Methods, http.MethodPost) && len(w.Spec.Methods) > 0 {
			method = w.Spec.Methods[0]
		}
	}
	if method == http.MethodGet && len(body) > 0 {
		return nil, usageErr("a GET delivery has no body: drop --data or use --method POST")
	}
	path := w.Status.EndpointPath
	query := url.Values{}
	hdr := http.Header{}
	a := w.Spec.Auth
	var idHeaders []string // the headers a signed webhook's event id goes in, which Sign fills
	switch {
	case a.APIKey != nil:
		key := so.key
		if key == "" {
			key = os.Getenv("HOOKRUN_API_KEY")
		}
		if key == "" {
			return nil, usageErr("webhook %s needs an API key: pass --key or set HOOKRUN_API_KEY", w.Metadata.Name)
		}
		// Checked wherever the key goes: no key holds a control character,
		// and in a header one fails only when sent, reading as an ingress
		// that cannot be reached (5, retry later) instead of a setting to fix.
		if !validHeaderValue(key) {
			setting := "HOOKRUN_API_KEY"
			if so.key != "" {
				setting = "--key"
			}
			return nil, usageErr("the API key (%s) holds a control character, such as a newline, that no header can carry: set it again without it", setting)
		}
		switch a.APIKey.In {
		case "header":
			hdr.Set(a.APIKey.Name, key)
		case "query":
			query.Set(a.APIKey.Name, key)
		case "path":
			path = strings.TrimSuffix(path, "/{"+a.APIKey.Name+"}") + "/" + url.PathEscape(key)
		case "body":
			var err error
			if body, err = withBodyKey(body, a.APIKey.Name, key); err != nil {
				return nil, err
			}
		}
	case a.Signature != nil:
		secret := so.secret
		if secret == "" {
			secret = os.Getenv("HOOKRUN_WEBHOOK_SECRET")
		}
		if secret == "" {
			return nil, usageErr("webhook %s is signed (%s): pass its secret with --secret or HOOKRUN_WEBHOOK_SECRET", w.Metadata.Name, a.Signature.Profile)
		}
		p, ok := signature.Lookup(a.Signature.Profile)
		if !ok {
			return nil, failErr(codeError, "webhook %s uses signature profile %q, which this hookrun does not know", w.Metadata.Name, a.Signature.Profile)
		}
		if h := w.Spec.IdempotencyHeader; h != "" {
			// The webhook names the header its event id is read from (as
			// the ingress does: only profiles whose id header is unsigned).
			if q, ok := signature.WithEventIDHeader(p, h); ok {
				p = q
			}
		}
		idHeaders = eventIDHeaders(p, secret, now)
		eventID := so.eventID
		for _, h := range idHeaders {
			if v, ok := headerValue(so.headers, h); ok && eventID == "" {
				// --header gave it (the webhook's spec.idempotencyHeader,
				// or the profile's own: X-GitHub-Delivery, webhook-id…),
				// as a sender repeating its delivery id does: the same id,
				// not a random one beside it.
				eventID = v
			}
		}
		if eventID == "" {
			eventID = randomEventID()
		}
		// Every Stripe event has an id; a Slack body gets one only when
		// asked: slash commands and interactivity payloads (form-encoded)
		// have none, and the ingress names such a delivery by its
		// signature (v0sig:…): the same body sent twice in one second is
		// then a duplicate, as a replayed Slack request is.
		if p.Name() == stripeProfile || p.Name() == "slack" && so.eventID != "" {
			var err error
			if body, err = withBodyEventID(body, p.Name(), eventID); err != nil {
				return nil, err
			}
		}
		for k, vs := range p.Sign(body, secret, eventID, now) {
			hdr[k] = vs
		}
	}
	if !validHeaderValue(so.eventID) {
		return nil, usageErr("--event-id holds a control character, such as a newline, that no header can carry")
	}
	if so.eventID != "" && a.Signature == nil {
		if w.Spec.IdempotencyHeader == "" {
			return nil, usageErr("webhook %s takes no event id: it has no spec.idempotencyHeader (nor a signature profile)", w.Metadata.Name)
		}
		hdr.Set(w.Spec.IdempotencyHeader, so.eventID)
	}
	for _, h := range so.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			// Only up to the first space: the rest may be a credential
			// ("Authorization Bearer sk_…", its colon left out).
			name, _, _ := strings.Cut(strings.TrimSpace(h), " ")
			return nil, usageErr("--header %q…: want \"Name: value\" (the rest is not printed: it may be a credential)", name)
		}
		if !validHeaderValue(h) {
			// Not printed: the value may be a credential.
			return nil, usageErr("--header %s: holds a control character, such as a newline, that no header can carry", strconv.Quote(strings.TrimSpace(k)))
		}
		if slices.ContainsFunc(idHeaders, func(h string) bool { return strings.EqualFold(strings.TrimSpace(k), h) }) {
			continue // signed in already: the event id
		}
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	u := ingress + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if method != http.MethodGet {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, usageErr("%v", unwrapURLError(err)) // its URL may hold a password
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if len(body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", so.contentType)
	}
	// The body is re-sent on a retry, so remember it.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return req, nil
}

// bodyEventIDs are the signature profiles whose event id is a field of the
// body (the provider sends no header for it), and that field: Stripe's
// event object's "id", Slack's Events API "event_id".
var bodyEventIDs = map[string]struct{ field, what string }{
	stripeProfile: {"id", "a Stripe event"},
	"slack":       {"event_id", "a Slack Events API event"},
}

// stripeProfile is the signature profile whose every delivery has its
// event id in the body.
const stripeProfile = "stripe"

// withBodyEventID gives a body the event id of a profile that reads it from
// the body (bodyEventIDs[profile]). A body that has one keeps it;
// otherwise eventID (--event-id or a random one) is added, at the front,
// leaving the rest of the body as it was.
func withBodyEventID(body []byte, profile, eventID string) ([]byte, error) {
	f := bodyEventIDs[profile]
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		trimmed = []byte("{}")
	}
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(trimmed, &obj); err != nil || obj == nil {
		return nil, usageErr("a %s webhook's event id is the body's top-level %q, so the body must be a JSON object (%s)", profile, f.field, f.what)
	}
	if raw, ok := obj[f.field]; ok {
		var id string
		if json.Unmarshal(raw, &id) != nil || id == "" {
			return nil, usageErr("the body's %q is a %s webhook's event id: it must be a non-empty string", f.field, profile)
		}
		return body, nil
	}
	id, _ := json.Marshal(eventID)
	field := append([]byte(`"`+f.field+`":`), id...)
	if len(obj) > 0 {
		field = append(field, ',')
	}
	out := make([]byte, 0, len(trimmed)+len(field))
	out = append(out, '{')
	out = append(out, field...)
	return append(out, trimmed[1:]...), nil
}

// withBodyKey adds the API key as a top-level field of a JSON object body
// (Jac Cloud's "body" placement).
func withBodyKey(body []byte, name, key string) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
			return nil, usageErr("the webhook takes its API key in the body, so the body must be a JSON object")
		}
	}
	k, _ := json.Marshal(key)
	obj[name] = k
	return json.Marshal(obj)
}

func randomEventID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "evt_" + hex.EncodeToString(b)
}

// ingressError is the error of the ingress' answer status (not 2xx). A
// 404 is "not found" (3) only when it is the ingress' endpoint_not_found:
// any other 404 (a proxy's, the keys API's) means --ingress points
// somewhere else, 5 as an answer that is not the ingress'. A 429 says when
// to retry.
func ingressError(status int, body []byte, retryAfter string) error {
	if status == http.StatusNotFound && !endpointNotFound(body) {
		return failErr(codeUnavailable, "the ingress answered 404 without its endpoint_not_found: is --ingress the ingress?")
	}
	err := withPrefix("the ingress refused the delivery", answerError(status, http.StatusText(status), body))
	if n, aerr := strconv.Atoi(retryAfter); aerr == nil && n > 0 {
		err = withSuffix(err, fmt.Sprintf("; retry after %ds", n))
	}
	return err
}

// endpointNotFound reports whether body is the ingress' 404 error body.
func endpointNotFound(body []byte) bool {
	var eb apiErrorBody
	return json.Unmarshal(body, &eb) == nil && eb.Error.Code == "endpoint_not_found"
}

// deliver sends the delivery. A 404 right after the webhook was created or
// changed usually means the ingress has not seen the change yet (it follows
// configuration through a watch), so it is retried for a few seconds.
// The answer's Retry-After comes with it.
func deliver(ctx context.Context, req *http.Request, retryNotFound bool) (int, []byte, string, error) {
	hc := noRedirects(&http.Client{Timeout: 30 * time.Second})
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := req.Clone(ctx)
		if req.Body != nil {
			r.Body, _ = req.GetBody()
		}
		resp, err := hc.Do(r)
		if err != nil {
			return 0, nil, "", failErr(codeUnavailable, "cannot reach the ingress: %v", unwrapURLError(err))
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			resp.Body.Close()
			return 0, nil, "", redirected("--ingress", resp)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !endpointNotFound(b) {
			// Only the ingress' own 404 may be a webhook it has not seen
			// yet; any other is not the ingress answering.
			retryNotFound = false
		}
		if resp.StatusCode != http.StatusNotFound || !retryNotFound || time.Now().After(deadline) {
			return resp.StatusCode, b, resp.Header.Get("Retry-After"), nil
		}
		select {
		case <-ctx.Done():
			return resp.StatusCode, b, "", nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// headerValue is the value --header lines give header name (the first),
// and whether one does; none for an empty name.
// eventIDHeaders are the headers p's Sign puts the event id in (none for a
// profile that carries it in the body), found by signing with a marker id.
func eventIDHeaders(p signature.Profile, secret string, now time.Time) []string {
	const marker = "hookrun-send-event-id-marker"
	var names []string
	for k, vs := range p.Sign(nil, secret, marker, now) {
		if slices.Contains(vs, marker) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

func headerValue(lines []string, name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for _, h := range lines {
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

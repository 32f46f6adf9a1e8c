package ingress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// accepted is the body of a 2xx answer (API.md, Workjet's and Orloj's fields).
type accepted struct {
	Accepted    bool   `json:"accepted"`
	Received    bool   `json:"received"`
	Duplicate   bool   `json:"duplicate"`
	WebhookID   string `json:"webhookId"`
	DeliveryID  string `json:"deliveryId"`
	EventID     string `json:"eventId"`
	ExecutionID string `json:"executionId"`
	Status      string `json:"status"`
}

// githubPong answers GitHub's ping: verified, not run.
type githubPong struct {
	Received  bool   `json:"received"`
	Ping      bool   `json:"ping"`
	WebhookID string `json:"webhookId"`
}

// defaultMaxBodyBytes applies when a stored webhook carries no limit (the
// keys service always fills one in; this guards hand-written config).
const defaultMaxBodyBytes = resource.DefaultMaxBodyBytes

// maxEventIDLen bounds event ids: they travel in a NATS header and name
// dedup keys, and no provider sends longer ones.
const maxEventIDLen = 256

// deliver handles any method on /v1/hooks/{endpoint}[/{key}]. It answers
// every request, counts it under a bounded webhook label, and leaves the
// work to handle.
func (in *Ingress) deliver(c echo.Context) error {
	start := time.Now()
	mInflight.Inc()
	defer mInflight.Dec()

	label := unknownWebhook
	status, acc, err := in.handle(c, start, &label)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			in.log.Error("delivery failed", "webhook", label, "err", err)
			ae = errInternal
		}
		status = ae.Status
		if status >= 400 && status < 500 {
			in.refusals.refused(label, ae, c.Request().Method, c.RealIP())
		}
		_ = writeError(c, ae)
	} else {
		_ = writeJSON(c, status, acc)
	}
	mRequests.WithLabelValues(label, strconv.Itoa(status)).Inc()
	mRequestSeconds.WithLabelValues(label).Observe(time.Since(start).Seconds())
	return nil
}

// writeJSON answers v as JSON. The 202's body is encoded by pkg/message's
// encoder (the bytes encoding/json gives, at a fraction of its reflection:
// Echo's c.JSON was ~4.5% of the ingress' CPU at its maximum) into a pooled
// buffer; any other answer goes through Echo.
func writeJSON(c echo.Context, status int, v any) error {
	acc, ok := v.(*accepted)
	if !ok {
		return c.JSON(status, v)
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := message.Encode(buf, acc); err != nil {
		return c.JSON(status, v)
	}
	return c.JSONBlob(status, buf.Bytes())
}

// handle runs the checks in the order a sender can fix things in — which
// endpoint, which method, what body, who they are — with the cheap refusals
// (method, media type, declared size, rate) before the body is read, and
// the job check after authentication so that only an authenticated sender
// learns that the webhook is misconfigured.
func (in *Ingress) handle(c echo.Context, now time.Time, label *string) (int, any, error) {
	req := c.Request()
	t, ok := requestTarget(c)
	if !ok {
		return 0, nil, errMalformedHookURL
	}
	if !in.configLoaded() {
		return 0, nil, errNotReady
	}
	w, ok := in.cat.WebhookByEndpoint(t.endpoint)
	if !ok || w.Spec.Disabled {
		return 0, nil, errEndpointNotFound
	}
	*label = w.Metadata.Namespace + "/" + w.Metadata.Name
	// The URL is checked whole before the method: a key segment exists only
	// on path-key webhooks, and elsewhere the URL is another, unknown one.
	pathKey := w.Spec.Auth.APIKey != nil && w.Spec.Auth.APIKey.In == "path"
	if t.key != "" && !pathKey {
		return 0, nil, errEndpointNotFound
	}
	if !allowed(w.Spec.Methods, req.Method) {
		c.Response().Header().Set("Allow", strings.Join(w.Spec.Methods, ", "))
		return 0, nil, errMethodNotAllowed
	}
	// GET triggers the job with its defaults only (Janus): no body is read,
	// whatever the sender attached.
	hasBody := req.Method != http.MethodGet
	limit := w.Spec.MaxBodyBytes
	if limit <= 0 {
		limit = defaultMaxBodyBytes
	}
	var ct string
	if hasBody {
		ct = req.Header.Get("Content-Type")
		if isMultipart(ct) {
			return 0, nil, errUnsupportedMedia
		}
		if encoded(req.Header) {
			// A compressed body would be stored, signed-checked and handed
			// to the job as compressed bytes (and shown as mangled text in
			// the run's webhook_payload): refused, as no provider we
			// take compresses its deliveries.
			return 0, nil, errEncodedBody
		}
		if req.ContentLength > limit {
			return 0, nil, errPayloadTooLarge
		}
	}
	// The rate limit is checked here and spent only once the sender is
	// authenticated: anyone who knows the URL of a signed or API-key webhook
	// could otherwise drain its bucket with junk and have the real sender's
	// deliveries refused. For a secret-URL webhook the URL is the credential,
	// so a request that reached it is authenticated and spends the same way.
	if ok, wait := in.hasToken(w); !ok {
		return 0, nil, errRateLimited.retryAfter(wait)
	}
	d := &message.Delivery{
		Schema:      message.SchemaDelivery,
		ID:          ident.NewDeliveryID(),
		Namespace:   w.Metadata.Namespace,
		Webhook:     w.Metadata.Name,
		Job:         w.Spec.Job,
		Method:      req.Method,
		ContentType: ct,
		ReceivedAt:  now.UTC(),
		SourceIP:    c.RealIP(),
	}
	authenticate := func() (credential, error) {
		cred, err := in.authenticate(c, t, w, d, now)
		var ae *apiError
		if err != nil && errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
			mAuthFailures.WithLabelValues(*label, ae.Code).Inc()
		}
		return cred, err
	}
	// An API key outside the body is checked before the body is read: a
	// wrong one uploads nothing (Expect: 100-continue is answered 401) and
	// holds no body. A key in the body, and a signature, need the body.
	var cred credential
	early := w.Spec.Auth.APIKey != nil && w.Spec.Auth.APIKey.In != "body"
	if early {
		var err error
		if cred, err = authenticate(); err != nil {
			return 0, nil, err
		}
	}
	var body []byte
	if hasBody {
		var err error
		if body, err = readBody(req, limit); err != nil {
			return 0, nil, err
		}
	}
	d.Body = body
	if !early {
		var err error
		if cred, err = authenticate(); err != nil {
			return 0, nil, err
		}
	}
	// Past authentication the body waits for the publish: bounded in
	// bytes, so that a JetStream stall does not pile up bodies until the
	// ingress runs out of memory (pending.go).
	held := int64(len(body))
	if !in.pending.take(held) {
		mOverloaded.Inc()
		return 0, nil, errOverloaded
	}
	defer in.pending.give(held)
	if ok, wait := in.spendToken(w); !ok {
		return 0, nil, errRateLimited.retryAfter(wait)
	}
	if sa := w.Spec.Auth.Signature; sa != nil && sa.Profile == "slack" {
		if ch, ok := signature.SlackChallenge(d.Body); ok {
			// Slack's URL verification, signed like any event: the URL is
			// confirmed by echoing the challenge. It is not an event to run.
			return http.StatusOK, map[string]string{"challenge": ch}, nil
		}
	}
	if err := in.runnable(w); err != nil {
		return 0, nil, err
	}
	if sa := w.Spec.Auth.Signature; sa != nil && sa.Profile == "github" && req.Header.Get("X-GitHub-Event") == "ping" {
		// GitHub's ping, signed like any event, sent when a hook is made
		// (and again from its "Recent Deliveries"): it checks the URL and
		// the secret, and GitHub shows the answer. It is not an event to
		// run: it has none of an event's fields, so a job's templates
		// would fail on it (and HookrunDeliveriesNotBecomingRuns fire).
		// After the job check: a webhook whose job is missing answers its
		// ping 500, which GitHub shows red.
		return http.StatusOK, githubPong{Received: true, Ping: true, WebhookID: w.Metadata.Name}, nil
	}
	if cred.eventIDErr != nil {
		return 0, nil, cred.eventIDErr
	}
	if d.Profile == "slack" {
		if rest, tokens, changed := stripSlackToken(d.Body, req.Header.Get("Content-Type")); changed {
			d.Body, cred.bodyChanged = rest, true
			cred.sent = append(cred.sent, tokens...)
			cred.values = append(cred.values, tokens...)
		}
	}
	if d.EventID == "" && w.Spec.IdempotencyHeader != "" {
		if isCredentialHeader(w.Spec.IdempotencyHeader, cred.headers) {
			// Stored before the keys service refused such a header.
			return 0, nil, errCredentialEventID
		}
		d.EventID = req.Header.Get(w.Spec.IdempotencyHeader)
	}
	switch {
	case d.EventID == "":
		d.EventID = d.ID
	case !validEventID(d.EventID):
		return 0, nil, errMalformedEventID
	case holdsCredential([]string{d.EventID}, cred):
		// The event id is stored with the delivery and its runs, answered
		// and given to the job: a sender that puts its key or token there
		// (GitLab's Idempotency-Key, say) would have it everywhere.
		return 0, nil, errCredentialEventID
	}
	d.RunID = ident.RunID(w.Metadata.UID, d.EventID, "")
	d.Header, d.Query = stripCredentials(req.Header, req.URL.RawQuery, c, cred)

	ctx := req.Context()
	// The dedup look-up (a Redis round trip) runs beside the publish (a
	// JetStream round trip) rather than after it; both end before we answer.
	var lookup *pendingLookup
	if in.dedup != nil && d.EventID != d.ID {
		lookup = in.lookups.start(dedup.Key(w.Metadata.UID, d.EventID), dedup.Window(w, in.cfg.DefaultWindow))
	}
	res, err := in.publish(d, "")
	if err != nil {
		return 0, nil, err // the look-up's answer, if any comes, is dropped
	}
	deliveryID := d.ID
	// What follows the publish is not cut short by a sender that hangs up
	// either: the delivery is stored, and its answer is worked out as for
	// any other (a cancelled read would take a duplicate for unconfirmed
	// and store it again).
	ctx = context.WithoutCancel(ctx)
	if res.duplicate {
		// Not stored again: point the sender at the delivery that was —
		// once it is confirmed to be there. A clustered JetStream can
		// answer "duplicate" for the message id of a write that never
		// committed (its leader lost mid-write): then nothing holds this
		// event, and a 202 would lose it. Store this delivery under a
		// message id of its own instead; the dispatcher's dedup still runs
		// the event once if the first write does turn up.
		if orig, ok, read := in.originalDeliveryID(ctx, res.seq, res.msgID, res.size); ok {
			// The original is this delivery when its first publish's ack
			// was lost and publish sent it again: accepted, not a
			// duplicate.
			deliveryID, res.duplicate = orig, orig != d.ID
		} else {
			if read {
				in.log.Warn("duplicate not confirmed (the stream does not hold its original): storing the delivery again under its own message id", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "seq", res.seq)
				mUnconfirmedDuplicates.Inc()
			} else {
				in.log.Info("duplicate not confirmed (its original could not be read in time): storing the delivery again under its own message id", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "seq", res.seq)
			}
			if res, err = in.publish(d, "#"+d.ID); err != nil {
				return 0, nil, err
			}
			if res.duplicate {
				// An id of this delivery's own, published once: no write
				// of it can be held. A 202 would tell the sender an event
				// nothing holds was accepted.
				in.log.Warn("a delivery stored under its own message id was answered as a duplicate: answering 503", "delivery", d.ID, "webhook", d.Namespace+"/"+d.Webhook, "seq", res.seq)
				return 0, nil, errUnavailable
			}
		}
	}
	var claim lookupRes
	if lookup != nil {
		claim = lookup.wait(ctx)
	}
	claimed := claimedElsewhere(claim, d.ID)
	dup := res.duplicate || claimed
	if dup {
		mDuplicates.WithLabelValues(*label).Inc()
	}
	mBodyBytes.Observe(float64(len(body)))
	status := message.StatusQueued
	if dup {
		// The run id is the event's: its status may still be an earlier
		// run's (the event sent again after its dedup window, its new
		// delivery not queued yet). That status is not this duplicate's.
		// The run is the stored original's, or the claim owner's (of
		// which the original may itself be a duplicate), or one queued
		// within the webhook's dedup window: the dispatcher drops this
		// event's deliveries as that run's duplicates, also when no claim
		// is found for it (claims kept in another store before, as when
		// HOOKRUN_REDIS_URL was added).
		window := dedup.Window(w, in.cfg.DefaultWindow)
		status = in.runs.current(ctx, d.RunID, func(run *message.Run) bool {
			return run.DeliveryID == deliveryID || claim.found && dedup.IsOwner(claim.owner, run.DeliveryID) ||
				dedup.QueuedWithinWindow(run, now, window)
		})
	}
	return w.SuccessStatus(), &accepted{
		Accepted: true, Received: true, Duplicate: dup,
		WebhookID: w.Metadata.Name, DeliveryID: deliveryID, EventID: d.EventID,
		ExecutionID: d.RunID, Status: status,
	}, nil
}

// runnable checks what the webhook needs beyond authentication: its job,
// and names that are safe as subject tokens (the keys service validates
// them; this guards against hand-written or corrupted configuration, which
// could otherwise publish under another webhook's subject).
func (in *Ingress) runnable(w *resource.Webhook) error {
	if !bus.SafeToken(w.Metadata.Namespace) || !bus.SafeToken(w.Metadata.Name) {
		in.recordError(w, "webhook name or namespace is not a valid name")
		return errJobNotRunnable
	}
	if _, ok := in.cat.Job(w.Metadata.Namespace, w.Spec.Job); !ok {
		in.recordError(w, "job "+w.Spec.Job+" not found in namespace "+w.Metadata.Namespace)
		return errJobNotRunnable
	}
	return nil
}

// isMultipart reports whether a Content-Type is multipart/* (file uploads
// are refused), case-insensitively and without parsing its parameters.
func isMultipart(ct string) bool {
	const prefix = "multipart"
	ct = strings.TrimLeft(ct, " \t")
	return len(ct) >= len(prefix) && strings.EqualFold(ct[:len(prefix)], prefix)
}

// encoded reports whether the request says its body is encoded: any
// Content-Encoding (on any of its lines, in any of a list's entries) but
// identity.
func encoded(h http.Header) bool {
	for _, line := range h.Values("Content-Encoding") {
		for _, ce := range strings.Split(line, ",") {
			if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
				return true
			}
		}
	}
	return false
}

// initialBodyBuffer bounds the buffer a declared Content-Length gets
// before any of the body has arrived.
const initialBodyBuffer = 64 << 10

// readBody reads at most limit bytes; one more means 413. A declared
// Content-Length (already checked against limit) is read into a buffer of
// that size when it is small, else into one that grows as the bytes arrive:
// the body is read before the sender is authenticated, and a sender that
// declares megabytes and trickles a few bytes must not pin megabytes per
// connection. A chunked body grows up to limit+1.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if n := req.ContentLength; n >= 0 {
		if n == 0 {
			return nil, nil
		}
		if n <= initialBodyBuffer {
			b := make([]byte, n)
			if _, err := io.ReadFull(req.Body, b); err != nil {
				return nil, errUnreadableBody
			}
			return b, nil
		}
		buf := bytes.NewBuffer(make([]byte, 0, initialBodyBuffer))
		if _, err := io.CopyN(buf, req.Body, n); err != nil {
			return nil, errUnreadableBody
		}
		return buf.Bytes(), nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errPayloadTooLarge
		}
		return nil, errUnreadableBody
	}
	if int64(len(b)) > limit {
		return nil, errPayloadTooLarge
	}
	return b, nil
}

// validEventID reports whether an event id can be stored as sent: JSON
// would silently rewrite invalid UTF-8, so the id that names the dedup key
// and the run would differ from the stored one.
func validEventID(s string) bool {
	if len(s) > maxEventIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

func allowed(methods []string, m string) bool {
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

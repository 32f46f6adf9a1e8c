package ingress

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
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

// deliver handles POST/GET /v1/hooks/:endpoint[/:key]. The order of checks
// is the order a sender can fix things in: which endpoint, which method,
// what body, then who they are.
func (in *Ingress) deliver(c echo.Context) error {
	start := time.Now()
	mInflight.Inc()
	defer mInflight.Dec()

	label := unknownWebhook
	status, err := in.handle(c, start, &label)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			in.log.Error("delivery failed", "webhook", label, "err", err)
			ae = errInternal
		}
		status = ae.Status
		_ = writeError(c, ae)
	}
	mRequests.WithLabelValues(label, statusText(status)).Inc()
	mRequestSeconds.WithLabelValues(label).Observe(time.Since(start).Seconds())
	return nil
}

func (in *Ingress) handle(c echo.Context, now time.Time, label *string) (int, error) {
	req := c.Request()
	w, ok := in.cat.WebhookByEndpoint(c.Param("endpoint"))
	if !ok || w.Spec.Disabled {
		return 0, errEndpointNotFound
	}
	*label = w.Metadata.Namespace + "/" + w.Metadata.Name
	if !allowed(w.Spec.Methods, req.Method) {
		c.Response().Header().Set("Allow", strings.Join(w.Spec.Methods, ", "))
		return 0, errMethodNotAllowed
	}
	if c.Param("key") != "" && (w.Spec.Auth.APIKey == nil || w.Spec.Auth.APIKey.In != "path") {
		return 0, errEndpointNotFound
	}
	ct := req.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); strings.HasPrefix(mt, "multipart/") {
		return 0, errUnsupportedMedia
	}
	body, err := readBody(req, w.Spec.MaxBodyBytes)
	if err != nil {
		return 0, err
	}
	if !in.allow(w) {
		return 0, errRateLimited
	}

	d := &message.Delivery{
		Schema:      message.SchemaDelivery,
		ID:          ident.NewDeliveryID(),
		Namespace:   w.Metadata.Namespace,
		Webhook:     w.Metadata.Name,
		Job:         w.Spec.Job,
		Method:      req.Method,
		ContentType: ct,
		Body:        body,
		ReceivedAt:  now.UTC(),
		SourceIP:    c.RealIP(),
	}
	cred, err := in.authenticate(c, w, d, now)
	if err != nil {
		if ae, ok := err.(*apiError); ok && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
			mAuthFailures.WithLabelValues(*label, ae.Code).Inc()
		}
		return 0, err
	}
	if _, ok := in.cat.Job(w.Metadata.Namespace, w.Spec.Job); !ok {
		in.recordError(w, "job "+w.Spec.Job+" not found in namespace "+w.Metadata.Namespace)
		return 0, errJobNotRunnable
	}
	if d.EventID == "" && w.Spec.IdempotencyHeader != "" {
		d.EventID = req.Header.Get(w.Spec.IdempotencyHeader)
		if len(d.EventID) > 256 {
			return 0, errMissingEventID
		}
	}
	if d.EventID == "" {
		d.EventID = d.ID
	}
	d.RunID = ident.RunID(w.Metadata.UID, d.EventID, "")
	d.Header, d.Query = stripCredentials(req.Header, req.URL.Query(), cred)

	dup, err := in.publish(req.Context(), d)
	if err != nil {
		return 0, err
	}
	if !dup && d.EventID != d.ID {
		dup = in.seen(req.Context(), w.Metadata.UID, d)
	}
	if dup {
		mDuplicates.WithLabelValues(*label).Inc()
	}
	mBodyBytes.Observe(float64(len(body)))
	status := w.SuccessStatus()
	return status, c.JSON(status, accepted{
		Accepted: true, Received: true, Duplicate: dup,
		WebhookID: w.Metadata.Name, DeliveryID: d.ID, EventID: d.EventID,
		ExecutionID: d.RunID, Status: message.StatusQueued,
	})
}

// readBody reads at most limit bytes; one more means 413. GET has no body.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.Method == http.MethodGet || req.Body == nil {
		return nil, nil
	}
	if req.ContentLength > limit {
		return nil, errPayloadTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errPayloadTooLarge
		}
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_body", Message: "the body could not be read"}
	}
	if int64(len(b)) > limit {
		return nil, errPayloadTooLarge
	}
	return b, nil
}

func allowed(methods []string, m string) bool {
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

// allow applies the webhook's token bucket (per ingress instance).
func (in *Ingress) allow(w *resource.Webhook) bool {
	rl := w.Spec.RateLimit
	if rl == nil {
		return true
	}
	key := bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name)
	v, ok := in.limiters.Load(key)
	l, _ := v.(*limiter)
	if !ok || l.perSecond != rl.PerSecond || l.burst != rl.Burst {
		l = &limiter{perSecond: rl.PerSecond, burst: rl.Burst, l: rate.NewLimiter(rate.Limit(rl.PerSecond), rl.Burst)}
		in.limiters.Store(key, l)
	}
	return l.l.Allow()
}

// seen is the read-only look-up of the dispatcher's dedup claim: the
// dispatcher stays the authority; this only makes the answer's duplicate
// flag right for retries that come after JetStream's duplicate window.
func (in *Ingress) seen(ctx context.Context, webhookUID string, d *message.Delivery) bool {
	if in.dedup == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	owner, found, err := in.dedup.Lookup(ctx, dedup.Key(webhookUID, d.EventID))
	return err == nil && found && owner != d.ID
}

func (in *Ingress) recordError(w *resource.Webhook, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := in.status.Error(ctx, w.Metadata.Namespace, w.Metadata.Name, msg); err != nil {
		in.log.Warn("cannot record webhook lastError", "webhook", w.Metadata.Name, "err", err)
	}
}

func statusText(s int) string { return strconv.Itoa(s) }

package keys

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// runStatuses are the statuses a run can have (API.md).
var runStatuses = []string{
	message.StatusQueued, message.StatusRunning, message.StatusSucceeded, message.StatusFailed,
	message.StatusTimedOut, message.StatusCancelled, message.StatusFiltered, message.StatusRejected,
}

func (s *Service) getRun(c echo.Context) error {
	r, err := s.loadRun(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOfRun(r))
}

// loadRun reads run id's current record. Run ids are unique across
// namespaces: ?namespace=, when given, only narrows (a run of another
// namespace is not found), as it does for lists.
// A run whose delivery a dispatcher has not decided yet is found queued
// (pendingRun), as the ingress' answer said.
func (s *Service) loadRun(c echo.Context, id string) (*message.Run, error) {
	r, _, err := s.loadRunSeq(c, id)
	if err != nil {
		r, _, _, err = s.orPending(c, id, err)
	}
	return r, err
}

// orPending follows a failed loadRunSeq of run id: a run not found may be
// one whose delivery no dispatcher has decided yet (pendingRun), returned
// with pending true; any other error is err. A run a dispatcher stored
// meanwhile is returned with its sequence, as loadRunSeq's.
func (s *Service) orPending(c echo.Context, id string, err error) (*message.Run, uint64, bool, error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !bus.SafeToken(id) {
		return nil, 0, false, err
	}
	ns, _ := namespaceFilter(c) // read by loadRunSeq already
	p, perr := s.pendingRun(c.Request().Context(), id, ns)
	if errors.Is(perr, runstatus.ErrNotFound) {
		return nil, 0, false, err
	}
	if perr != nil {
		s.log.Warn("reading the deliveries not dispatched yet for a run", "run", id, "err", perr)
		return nil, 0, false, err
	}
	if s.afterPendingScan != nil {
		s.afterPendingScan()
	}
	// A dispatcher may have stored its first status meanwhile: what is
	// stored over it (a cancel) must be stored over that read only.
	if r, seq, err := s.loadRunSeq(c, id); err == nil {
		return r, seq, false, nil
	}
	return p, 0, true, nil
}

// loadRunSeq is loadRun with the status' sequence in STATUS.
func (s *Service) loadRunSeq(c echo.Context, id string) (*message.Run, uint64, error) {
	ns, err := namespaceFilter(c)
	if err != nil {
		return nil, 0, err
	}
	r, seq, err := runstatus.GetSeq(c.Request().Context(), s.js, id)
	if errors.Is(err, runstatus.ErrNotFound) || (err == nil && (r.Kind != message.KindRun || ns != "" && orDefault(r.Namespace) != ns)) {
		return nil, 0, runNotFound(id)
	}
	if errors.Is(err, runstatus.ErrUndecodable) {
		return nil, 0, unreadable("run " + id)
	}
	if err != nil {
		return nil, 0, errUnavailable
	}
	return r, seq, nil
}

func (s *Service) listRuns(c echo.Context) error {
	f := runstatus.Filter{Webhook: c.QueryParam("webhook"), Job: c.QueryParam("job"), Status: c.QueryParam("status")}
	for _, q := range []struct{ field, v string }{{"webhook", f.Webhook}, {"job", f.Job}} {
		if q.v != "" {
			if err := resource.CheckName(q.field, q.v); err != nil {
				return err
			}
		}
	}
	if f.Status != "" && !slices.Contains(runStatuses, f.Status) {
		return &resource.FieldError{Field: "status", Msg: "must be one of " + strings.Join(runStatuses, ", ")}
	}
	// A webhook or job is named within a namespace, ?namespace= or
	// "default", as GET /v1/webhooks/{name} reads it: the same name in two
	// namespaces is two webhooks. Without one the list spans namespaces.
	if c.QueryParam("namespace") != "" || f.Webhook != "" || f.Job != "" {
		ns, err := namespace(c)
		if err != nil {
			return err
		}
		f.Namespace = ns
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return &resource.FieldError{Field: "limit", Msg: "must be a number from 1 to 1000"}
		}
		f.Limit = n
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		after, err := runstatus.ParseCursor(cur)
		if err != nil {
			return &resource.FieldError{Field: "cursor", Msg: "must be the \"next\" of an earlier page"}
		}
		f.After = &after
	}
	f.WholeScan = s.wholeScan
	page, err := runstatus.ListPage(c.Request().Context(), s.js, f)
	if errors.Is(err, errListsBusy) {
		return errListsBusy
	}
	if err != nil {
		return errUnavailable
	}
	views := make([]runView, len(page.Runs)) // an empty list, not null
	for i := range page.Runs {
		views[i] = viewOfRun(&page.Runs[i])
	}
	out := map[string]any{"runs": views}
	if page.Next != nil {
		// Where the next page starts (?cursor=), with the same filters;
		// absent on the last page.
		out["next"] = page.Next.String()
	}
	return c.JSON(http.StatusOK, out)
}

// runFinished is the 409 of a cancel of run r, which has ended.
func runFinished(r *message.Run) *apiError {
	return &apiError{Status: http.StatusConflict, Code: "run_finished", Message: "the run has already ended (" + r.Status + ")"}
}

// wholeScanWait is how long a list that must read the whole STATUS stream
// waits for one of the reads already running to end. A variable for tests.
var wholeScanWait = 10 * time.Second

// errListsBusy: every slot for a list reading the whole STATUS stream
// stayed taken for wholeScanWait.
var errListsBusy = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", RetryAfter: 5,
	Message: "other run lists are reading the whole run history; retry in a few seconds (a first page of recent runs is read from the newest runs, and ?namespace= narrows what a list reads)"}

// wholeScan bounds the lists reading the whole STATUS stream at once
// (runstatus.Filter.WholeScan): each reads every run retained, and holds a
// little of each (about 100 bytes), so a few clients paging deep could
// take keys' CPU and memory from everything else.
func (s *Service) wholeScan(ctx context.Context) (func(), error) {
	t := time.NewTimer(wholeScanWait)
	defer t.Stop()
	select {
	case s.wholeScans <- struct{}{}:
		return func() { <-s.wholeScans }, nil
	case <-t.C:
		return nil, errListsBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cancelRun stops a queued or running run, or one not dispatched yet: a
// mark in the cancels bucket stops a queued run when an executor takes it, a core NATS message stops a
// running one wherever it runs. A queued run is stored "cancelled" here,
// only over the "queued" read (an expected sequence): an executor that
// started it in between has it tracked by then, gets the message and
// stores how it ended, output and exit code included. A run not dispatched
// yet is stored "cancelled" as its first status (cancelPending).
func (s *Service) cancelRun(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	r, seq, err := s.loadRunSeq(c, id)
	pending := false
	if err != nil {
		// Not dispatched yet: found by its delivery, which a dispatcher
		// has not decided.
		if r, seq, pending, err = s.orPending(c, id, err); err != nil {
			return err
		}
	}
	if message.Final(r.Status) {
		return runFinished(r)
	}
	kv, err := s.js.KeyValue(ctx, bus.BucketCancels)
	if err != nil {
		return errUnavailable
	}
	if _, err := kv.Put(ctx, id, bus.CancelMark(r.DeliveryID, s.now())); err != nil {
		return errUnavailable
	}
	if err := s.nc.Publish(bus.CancelSubject(id), []byte(id)); err != nil {
		return errUnavailable
	}
	if pending {
		if s.beforeCancelStatus != nil {
			s.beforeCancelStatus()
		}
		q, err := s.cancelPending(ctx, r)
		switch {
		case errors.Is(err, runstatus.ErrNotLatest):
			// A dispatcher stored the run's first status meanwhile:
			// cancel that, as any queued run.
			if r, seq, err = s.loadRunSeq(c, id); err != nil {
				return err
			}
			if message.Final(r.Status) {
				// Decided meanwhile as a run that will not run
				// (filtered, rejected), or cancelled by another.
				return runFinished(r)
			}
		case err != nil:
			return errUnavailable
		default:
			return c.JSON(http.StatusAccepted, viewOfRun(q))
		}
	}
	if s.afterCancelMark != nil {
		s.afterCancelMark()
	}
	if r.Status == message.StatusRunning {
		// An attempt that failed may have ended meanwhile, its run now
		// waiting for a retry: the cancel message found the command gone
		// and the mark is only read when the retry is due, perhaps hours
		// away. That queued status is cancelled here. (The executor reads
		// the mark once it has stored it, too: whichever comes second.)
		// Only this delivery's run, at this attempt or later: a later
		// delivery of the event (sent again after its dedup window) may
		// hold the run id by now, and the mark does not apply to it.
		if cur, cseq, err := s.loadRunSeq(c, id); err == nil && cur.Status == message.StatusQueued &&
			cur.DeliveryID == r.DeliveryID && cur.Attempt >= r.Attempt {
			r, seq = cur, cseq
		}
	}
	if r.Status == message.StatusQueued {
		if s.beforeCancelStatus != nil {
			s.beforeCancelStatus()
		}
		now := s.now().UTC()
		q := *r
		q.Status, q.FinishedAt, q.Error = message.StatusCancelled, &now, message.CancelledWhileQueued
		// A run waiting for a retry holds its failed attempt's start and
		// exit code: the run, cancelled, neither runs nor exited (nor
		// waits for a retry). The attempt's number and output tail stay,
		// as the record that ended that attempt had them.
		q.StartedAt, q.ExitCode, q.RetryAt = nil, nil, nil
		_, err := runstatus.PublishAfter(ctx, s.js, &q, seq)
		switch {
		case errors.Is(err, runstatus.ErrNotLatest):
			// Started (or ended) meanwhile: its executor has the cancel.
			if cur, gerr := runstatus.Get(ctx, s.js, id); gerr == nil {
				r = cur
			}
		case err != nil:
			return errUnavailable
		default:
			r = &q
		}
	}
	return c.JSON(http.StatusAccepted, viewOfRun(r))
}

// cancelPending stores "cancelled" as the first status of run p, whose
// delivery no dispatcher has decided yet (pendingRun): the run reads
// cancelled at once rather than queued until a dispatcher and an executor
// reach it, which may be long behind a backlog. The dispatcher that comes
// to the delivery finds the run's status taken (its "queued" expects none)
// and, handed the delivery back, resumes it: the run has ended, so it only
// acks; no run request is stored. The record carries the webhook's
// callback, as a dispatcher's would, so the callback is sent (not when the
// webhook is disabled or was made again since). ErrNotLatest:
// a dispatcher stored the run's first status meanwhile.
func (s *Service) cancelPending(ctx context.Context, p *message.Run) (*message.Run, error) {
	q := *p
	now := s.now().UTC()
	q.Status, q.FinishedAt, q.Error = message.StatusCancelled, &now, message.CancelledWhileQueued
	w, _, found, err := s.webhooks.get(ctx, bus.ConfigKey(q.Namespace, q.Webhook))
	if err != nil {
		return nil, err
	}
	// The webhook the delivery came to, not one made again under its name
	// since (another uid: the dispatcher would reject the delivery), and
	// enabled (the dispatcher would reject it too): no callback otherwise.
	if found && w.Spec.Callback != nil && !w.Spec.Disabled && ident.RunID(w.Metadata.UID, q.WebhookEventID, "") == q.ID {
		cb := w.Spec.Callback
		q.Callback = &message.Callback{URL: cb.URL, URLSecretRef: cb.URLSecretRef, SecretRef: cb.SecretRef}
	}
	if _, err := runstatus.PublishFirst(ctx, s.js, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// deliveryView is a stored delivery with its outcome.
type deliveryView struct {
	message.Delivery
	BodyText string       `json:"bodyText,omitempty"`
	Outcome  *message.Run `json:"outcome,omitempty"`
}

// runNotFound is the 404 of a run id: the run of a delivery not dispatched
// yet is found queued (pendingRun) unless it is a replay's or far back in a
// dispatcher backlog; those are found once a dispatcher queues them, so the
// message says so (clients poll it right after the 202).
func runNotFound(id string) *apiError {
	e := notFound("run " + id)
	e.Message += " (a run accepted a moment ago may not be queued yet: retry shortly, or read its delivery, GET /v1/deliveries/{deliveryId})"
	return e
}

func orDefault(ns string) string {
	if ns == "" {
		return resource.DefaultNamespace
	}
	return ns
}

// loadDelivery reads delivery :id; ?namespace= narrows as for runs.
func (s *Service) loadDelivery(c echo.Context) (*message.Delivery, error) {
	id := c.Param("id")
	ns, err := namespaceFilter(c)
	if err != nil {
		return nil, err
	}
	d, err := s.deliveryByID(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	if ns != "" && orDefault(d.Namespace) != ns {
		return nil, notFound("delivery " + id)
	}
	return d, nil
}

// deliveryByID reads delivery id from DELIVERIES, whatever its namespace
// (delivery ids are unique across namespaces).
func (s *Service) deliveryByID(ctx context.Context, id string) (*message.Delivery, error) {
	if !bus.SafeToken(id) {
		return nil, notFound("delivery " + id)
	}
	st, err := s.js.Stream(ctx, bus.StreamDeliveries)
	if err != nil {
		return nil, errUnavailable
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.DeliveryByIDFilter(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, notFound("delivery " + id)
	}
	if err != nil {
		return nil, errUnavailable
	}
	var d message.Delivery
	if err := message.Decode(m.Data, message.SchemaDelivery, &d); err != nil {
		return nil, unreadable("delivery " + id)
	}
	return &d, nil
}

func (s *Service) getDelivery(c echo.Context) error {
	d, err := s.loadDelivery(c)
	if err != nil {
		return err
	}
	v := deliveryView{Delivery: *d}
	if json.Valid(d.Body) || isText(d.Body) {
		v.BodyText = string(d.Body)
	}
	switch r, err := runstatus.DeliveryOutcome(c.Request().Context(), s.js, d); {
	case err == nil:
		v.Outcome = r
	case errors.Is(err, runstatus.ErrUndecodable):
		return unreadable("the outcome of delivery " + d.ID)
	case !errors.Is(err, runstatus.ErrNotFound): // not decided yet: no outcome
		return errUnavailable
	}
	return c.JSON(http.StatusOK, v)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x09 {
			return false
		}
	}
	return len(b) > 0
}

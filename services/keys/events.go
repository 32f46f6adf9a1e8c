package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// runEvents streams a run as server-sent events until it ends: every
// status event from the first of the delivery whose run it is ("event:
// status", the whole record; the run id is the event's, and an event
// delivered again after its dedup window runs again under it: the earlier
// runs' statuses are not sent, a later run that starts before this one's
// end is followed to its own), and the
// job's output lines ("event: output", a JSON string per line), each
// attempt's after that attempt's "running" status and before the status
// that ends it (the retry's "queued", or the final one).
//
// Output lines travel on core NATS, apart from the stored statuses, so a
// client may join after some were published, the last ones may still be in
// flight when the status ending their attempt arrives, and a line may come
// before the replayed statuses reach the attempt that printed it: such a
// line waits for its attempt's "running". With ?delivery=<id> the stream
// is that delivery's run only, from its first status to its end, whether
// it has started yet or not (`hookrun send --wait` follows the delivery it
// sent, not an earlier run under the same id); a delivery that is not one
// of the run's (unknown, or another run's) is not found. A client that joins a running
// run first gets what it has printed so far, from the executor running it
// (bus.OutputSnapshotSubject; lines are numbered, so the live lines that
// snapshot holds are not sent twice). The record that ends an attempt
// carries the output's tail, so before that status the stream sends what
// of it was not sent live: the attempts that ended before the client came
// show their whole output, one followed from its start loses no trailing
// line.
func (s *Service) runEvents(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if !bus.SafeToken(id) {
		// Not a run id (nor a subject token to subscribe on): answered as
		// GET /v1/runs/{id} answers it.
		return notFound("run " + id)
	}
	// Subscribe before reading the run, so no line falls between the two.
	lines := make(chan outputLine, 1024)
	sub, err := s.nc.Subscribe(bus.OutputSubject(id), func(m *nats.Msg) {
		n, _ := strconv.Atoi(m.Header.Get(bus.HeaderLine))
		attempt, _ := strconv.Atoi(m.Header.Get(bus.HeaderAttempt))
		select {
		case lines <- outputLine{text: m.Data, n: n, attempt: attempt, delivery: m.Header.Get(bus.HeaderDelivery)}:
		default: // a slow reader loses live lines, never the statuses
		}
	})
	if err != nil {
		return errUnavailable
	}
	defer func() { _ = sub.Unsubscribe() }()
	r, err := s.loadRun(c, id)
	if err != nil {
		return err
	}
	only := c.QueryParam("delivery")
	if only != "" && !bus.SafeToken(only) {
		return &resource.FieldError{Field: "delivery", Msg: "must be a delivery id"}
	}
	var own <-chan message.Run // the record of its own of delivery only, while it may still come
	stopOwn := func() {}       // ends own's watch (its STATUS consumer) early
	var ownRec *message.Run    // that record, stored already: a final one, all the stream sends
	var dupRec *message.Run    // that record, a duplicate's: sent first, then the run it repeats
	if only != "" && only != r.DeliveryID {
		// Not the delivery of the run's last status: the stream would wait
		// for its statuses, so it must be one of this run's (a later one
		// not started yet, or an earlier one). Any other never comes.
		d, err := s.deliveryByID(ctx, only)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound || err == nil && d.RunID != id {
			return notFound("delivery " + only + " of run " + id)
		}
		if err != nil {
			return err
		}
		// A delivery the dispatcher did not make a run of its own has a
		// record of its own instead: a duplicate its dedup claim caught
		// (the ingress answered it as a new delivery), which the stream
		// sends and then follows the run it repeats, as without delivery
		// (a client that asked for the delivery's statuses learns from it
		// to take the run's); or one rejected apart from the run (its
		// webhook deleted), which is all the stream sends. Not stored yet,
		// it is watched for beside the run's statuses, which the
		// delivery's would be. Any other record of its own (a dispatcher
		// before the seventh session stored "dispatched" for every
		// delivery, kept for the retention) says the delivery did become
		// a run: its statuses are the run's.
		switch rec, err := runstatus.Get(ctx, s.js, only); {
		case err == nil && rec.Kind == message.KindDelivery && rec.Status == message.DeliveryDuplicate:
			only, dupRec = "", rec
		case err == nil && rec.Kind == message.KindDelivery && message.Final(rec.Status):
			ownRec = rec
		case err == nil:
		case errors.Is(err, runstatus.ErrNotFound):
			ownCtx, cancelOwn := context.WithCancel(ctx)
			defer cancelOwn()
			stopOwn = cancelOwn
			if own, err = runstatus.Watch(ownCtx, s.js, d.Namespace, only, ""); err != nil {
				return errUnavailable
			}
		case errors.Is(err, runstatus.ErrUndecodable):
			return unreadable("delivery " + only)
		case err != nil:
			return errUnavailable
		}
	}
	var events <-chan message.Run
	var st *runStream
	var stopEvents context.CancelFunc = func() {}
	defer func() { stopEvents() }()
	resume := lastEventID(c)
	if resume.ended {
		// An EventSource reconnects when a stream ends, and would replay
		// a finished run every few seconds: one that had this run's end
		// gets 204 No Content, which an EventSource takes as "stop". A
		// run moved on since (a later delivery of the event, a retry)
		// is sent whole.
		if hadTheEnd(r, ownRec, only, resume) {
			return c.NoContent(http.StatusNoContent)
		}
		resume = resumePoint{}
	}
	if ownRec == nil {
		if events, st, stopEvents, err = s.followRun(ctx, c.Response(), r, only, resume); err != nil {
			return err
		}
	}
	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	// A client that stops reading with its connection still open would
	// hold the stream (its subscription and consumer) for ever: each
	// write gets streamWriteWait, and a write that fails ends the stream.
	rc := http.NewResponseController(w.Writer)
	alive := func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait)) }
	sent := func() bool {
		w.Flush()
		return rc.Flush() == nil
	}
	alive()
	w.WriteHeader(http.StatusOK)
	w.Flush()
	if st != nil {
		st.alive = alive
	}
	if ownRec != nil {
		(&runStream{w: w}).writeStatus(ownRec)
		w.Flush()
		return nil
	}
	if dupRec != nil {
		st.writeStatus(dupRec)
		w.Flush()
	}

	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		alive()
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-own:
			if !ok {
				own = nil
				continue
			}
			if rec.Kind != message.KindDelivery || rec.Status != message.DeliveryDuplicate && !message.Final(rec.Status) {
				continue // not a record that stands for the run (see above)
			}
			own = nil
			stopOwn() // the one record it waited for has come
			st.writeStatus(&rec)
			if !sent() {
				return nil
			}
			if rec.Status != message.DeliveryDuplicate {
				return nil
			}
			// A duplicate: nothing of the delivery was sent but that (it
			// has no statuses of the run's), so the stream starts again
			// on the run it repeats.
			stopEvents()
			if r, err = s.loadRun(c, id); err != nil {
				return nil // the run went (aged out) meanwhile: the stream ends
			}
			only = ""
			if events, st, stopEvents, err = s.followRun(ctx, c.Response(), r, only, resume); err != nil {
				return nil
			}
			st.alive = alive
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			st.status(&ev, lines)
			if !sent() {
				return nil
			}
			if only != "" && message.Final(ev.Status) {
				return nil // the run of the delivery asked for has ended
			}
		case line := <-lines:
			st.line(line)
			if !sent() {
				return nil
			}
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			if !sent() {
				return nil
			}
		}
	}
}

// followRun starts following run r (as read when the client came, or when
// the delivery it asked for turned out a duplicate) for one client: the
// run's statuses from the first of delivery only (of r's last delivery
// when ""), and the stream that places them and the output lines. The
// statuses stop coming when ctx ends or the returned function is called.
func (s *Service) followRun(ctx context.Context, w *echo.Response, r *message.Run, only string, resume resumePoint) (<-chan message.Run, *runStream, context.CancelFunc, error) {
	id := r.ID
	from := r.DeliveryID
	if only != "" {
		from = only
	}
	wctx, stop := context.WithCancel(ctx)
	events, err := runstatus.Watch(wctx, s.js, r.Namespace, id, from)
	if err != nil {
		stop()
		// A stop to call all the same: the caller's deferred one is this.
		return nil, nil, func() {}, errUnavailable
	}
	if resume.delivery != "" && resume.delivery != from {
		// Its lines were another delivery's run (an earlier one under
		// the same run id): this one's are all new to the client.
		resume = resumePoint{}
	}
	st := &runStream{w: w, liveFrom: liveFrom(r), only: only, resume: resume}
	st.snapshotNow = func(attempt int) (string, int, bool) {
		out, n, of, ok := s.outputSoFarOf(id)
		return out, n, ok && of == attempt
	}
	if only != "" && r.DeliveryID != only {
		// Another delivery's status is the run id's last: the one asked
		// for has not started yet (or ended before that one came, and
		// its records say all there is).
		st.liveFrom = 1
		r = &message.Run{}
	}
	if r.Status == message.StatusRunning {
		st.snapshot, st.snapshotN, st.snapshotOK = s.outputSoFar(id)
		// The executor answers with the attempt it runs now: r's, unless
		// the run moved on meanwhile. Then the record that ended r's
		// attempt has its output.
		if cur, err := runstatus.Get(ctx, s.js, id); err != nil || cur.Status != r.Status || cur.Attempt != r.Attempt || cur.DeliveryID != r.DeliveryID {
			st.snapshot, st.snapshotN, st.snapshotOK = "", 0, false
		}
		st.joinedRunning, st.snapshotAttempt = true, r.Attempt
	}
	return events, st, stop, nil
}

// hadTheEnd reports whether a client resuming from resume (an end's id)
// had the whole stream it asks for again, which then answers 204: the
// run's end, when the stream follows the run's current delivery (a
// duplicate's stream follows the run it repeats); the end of delivery
// only's own record (rejected apart from the run); or the end of only's
// run when a later delivery's statuses have followed it (one is stored
// only over a final status), which cannot change any more.
func hadTheEnd(r, ownRec *message.Run, only string, resume resumePoint) bool {
	switch {
	case ownRec != nil:
		return resume.delivery == only
	case only != "" && only != r.DeliveryID:
		// Attempt 0 too: a run that ended before it ran (filtered,
		// cancelled while queued) ends "0.end.<delivery>".
		return resume.delivery == only
	}
	return message.Final(r.Status) && r.DeliveryID == resume.delivery && r.Attempt == resume.attempt
}

// streamWriteWait bounds each write of a run's event stream (tests
// shorten it).
var streamWriteWait = time.Minute

// liveFrom is the first attempt of run r (as read when the client came)
// whose output can come live: the one running, or the next one when r is
// queued. The attempts before it ended before the client came; their
// output is in the records that ended them.
func liveFrom(r *message.Run) int {
	switch {
	case r.Status == message.StatusRunning:
		return r.Attempt
	case r.Status == message.StatusQueued:
		return r.Attempt + 1
	default:
		return math.MaxInt // ended: nothing comes live any more
	}
}

// maxPending bounds the live lines held for an attempt whose "running" the
// stream has not reached.
const maxPending = 1024

// runStream is one client's event stream. It sends the statuses as they
// come (the run's history first) and places each output line after the
// "running" of the attempt that printed it.
type runStream struct {
	w        *echo.Response
	liveFrom int // see liveFrom
	// alive, when set, renews the connection's write deadline: before
	// each event, so that a slow reader getting a long backlog is cut off
	// only when it has taken nothing for streamWriteWait.
	alive func()

	// joinedRunning: the run was running attempt snapshotAttempt when the
	// client came, and the executor had published snapshot, up to line
	// snapshotN ("" and 0 when it did not answer; snapshotOK then false).
	joinedRunning   bool
	snapshotAttempt int
	snapshot        string
	snapshotN       int
	snapshotOK      bool

	// fromStart: what was sent of the attempt in progress begins at its
	// first line (its "running" came live, or the snapshot did), so its
	// tail can be matched from its start; else it is only the live lines
	// after the client came.
	fromStart bool

	running bool   // a "running" was sent and no status has ended its attempt
	attempt int    // that attempt
	seen    int    // the number of its last line sent
	sent    []byte // its output sent so far
	done    int    // the last attempt whose output was sent in full
	// snapshotNow, when set, asks the executor running the run for its
	// output so far (Service.outputSoFar): live lines lost on their way
	// (a slow reader's full buffer) are sent from it, in order, before
	// the line after them.
	snapshotNow func(attempt int) (string, int, bool)

	pending []outputLine // live lines that came before their attempt's "running"

	delivery string // the delivery of the statuses sent last
	only     string // ?delivery=: the one delivery whose run is shown

	resume resumePoint // where the client's previous stream of this delivery's run ended
}

// resumePoint is the id of the last numbered output line a reconnecting
// client got (an EventSource sends it as Last-Event-ID):
// "<attempt>.<n>.<deliveryId>" ("<attempt>.<n>" from a release before the
// delivery was in it). Zero when it sent none.
type resumePoint struct {
	attempt, line int
	delivery      string // "" when the id did not say
	// ended: the id was a final status' ("<attempt>.end.<deliveryId>"):
	// the client had the whole stream of that delivery's run.
	ended bool
}

// lastEventID reads the Last-Event-ID header (or ?lastEventId= for
// clients that cannot set it); anything else than an output line's id is
// none.
func lastEventID(c echo.Context) resumePoint {
	v := c.Request().Header.Get("Last-Event-ID")
	if v == "" {
		v = c.QueryParam("lastEventId")
	}
	f := strings.SplitN(v, ".", 3)
	if len(f) < 2 {
		return resumePoint{}
	}
	if len(f) == 3 && f[1] == "end" {
		attempt, err := strconv.Atoi(f[0])
		if err != nil || attempt < 0 || f[2] == "" {
			return resumePoint{}
		}
		return resumePoint{attempt: attempt, delivery: f[2], ended: true}
	}
	attempt, err1 := strconv.Atoi(f[0])
	line, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || attempt < 1 || line < 1 {
		return resumePoint{}
	}
	p := resumePoint{attempt: attempt, line: line}
	if len(f) == 3 {
		p.delivery = f[2]
	}
	return p
}

// skipFor is how many of attempt's first lines the client has: -1 for
// all (an attempt before the one it had lines of: the stream sends each
// attempt's output before the next one's), its last line's number for
// that attempt, 0 for a later one.
func (st *runStream) skipFor(attempt int) int {
	switch {
	case st.resume.attempt == 0 || attempt > st.resume.attempt:
		return 0
	case attempt < st.resume.attempt:
		return -1
	default:
		return st.resume.line
	}
}

// exactTail reports whether text (an attempt's tail, or a running one's
// snapshot) holds exactly lines lines, the k-th being the line numbered k:
// none dropped before it, no long line published in pieces.
func exactTail(text string, lines int) bool {
	if lines <= 0 || strings.HasPrefix(text, message.OutputTruncated) {
		return false
	}
	n := strings.Count(text, "\n")
	if !strings.HasSuffix(text, "\n") && text != "" {
		n++
	}
	return n == lines
}

// writeTail sends text, an attempt's output up to its line numbered
// lines, but its first skip lines (none when skip is -1). When exactTail
// holds each line carries its number as id; otherwise all of text goes,
// without: a client may get some lines twice, never miss one.
func (st *runStream) writeTail(text string, attempt, lines, skip int) {
	if skip < 0 {
		return
	}
	if !exactTail(text, lines) {
		st.writeLines(text)
		return
	}
	for i, line := range strings.SplitAfter(text, "\n") {
		if line != "" && i+1 > skip {
			st.writeOutputNumbered(line, attempt, i+1)
		}
	}
}

// otherDelivery tells whether l names a delivery that is not the one whose
// run the stream is at (lines of executors before lines named theirs do
// not say, and go by their attempt alone).
func (st *runStream) otherDelivery(l outputLine) bool {
	cur := st.delivery
	if cur == "" {
		cur = st.only
	}
	return l.delivery != "" && cur != "" && l.delivery != cur
}

// nextDelivery starts the statuses of a later delivery of the event, which
// came after the client: its attempts count from 1 again, all of them live.
func (st *runStream) nextDelivery(ev *message.Run) {
	if ev.DeliveryID == st.delivery || ev.DeliveryID == "" {
		return
	}
	if st.delivery != "" {
		st.resume = resumePoint{} // its ids numbered the earlier delivery's lines
		st.liveFrom, st.joinedRunning = 0, false
		st.running, st.attempt, st.seen, st.sent, st.done = false, 0, 0, st.sent[:0], 0
	}
	st.delivery = ev.DeliveryID
}

// live reports whether the attempt in progress prints its output live.
func (st *runStream) live() bool { return st.running && st.attempt >= st.liveFrom }

// status sends status event ev, with the output that goes before it or
// after it.
func (st *runStream) status(ev *message.Run, lines <-chan outputLine) {
	st.nextDelivery(ev)
	switch {
	case ev.Status == message.StatusRunning:
		st.writeStatus(ev)
		if st.running && ev.Attempt == st.attempt {
			return // the same attempt stored again: its output goes on
		}
		st.running, st.attempt, st.seen, st.sent, st.fromStart = true, ev.Attempt, 0, st.sent[:0], true
		if !st.live() {
			return // replayed history: its output comes with the status that ended it
		}
		if st.joinedRunning && ev.Attempt == st.snapshotAttempt {
			skip := st.skipFor(ev.Attempt)
			st.writeTail(st.snapshot, ev.Attempt, st.snapshotN, skip)
			st.seen, st.snapshot, st.fromStart = max(st.snapshotN, skip), "", st.snapshotOK && skip <= 0
		} else if skip := st.skipFor(ev.Attempt); skip > 0 {
			st.seen, st.fromStart = skip, false // its live lines the client has
		}
		st.flushPending()
	case endsAttempt(ev):
		if st.running && ev.Attempt <= st.attempt {
			// The end of the attempt in progress: the lines still on
			// their way, then what of its tail was not sent live.
			switch {
			case !st.live():
				// Replayed history: its tail is all the stream sends of it.
				st.writeTail(ev.Output, st.attempt, ev.OutputLines, st.skipFor(st.attempt))
			default:
				for drained := false; !drained; {
					select {
					case l := <-lines:
						st.line(l)
					default:
						drained = true
					}
				}
				if exactTail(ev.Output, ev.OutputLines) {
					st.writeTail(ev.Output, st.attempt, ev.OutputLines, st.seen)
				} else {
					st.writeLines(unsent(ev.Output, string(st.sent), st.fromStart))
				}
			}
			st.done = max(st.done, st.attempt)
		} else if ev.Attempt > st.done {
			// An attempt whose start the stream did not see (its
			// statuses aged out of STATUS): its tail is all there is.
			st.writeTail(ev.Output, ev.Attempt, ev.OutputLines, st.skipFor(ev.Attempt))
			st.done = ev.Attempt
		}
		// A later record of an attempt already ended (a queued retry
		// cancelled) repeats its tail: not sent again.
		st.running, st.seen, st.sent = false, 0, st.sent[:0]
		st.writeStatus(ev)
	default:
		st.writeStatus(ev)
	}
}

// endsAttempt reports whether ev ends an attempt: a final status, or the
// "queued" of a retry, which carries the failed attempt's number and tail.
func endsAttempt(ev *message.Run) bool {
	return message.Final(ev.Status) || ev.Status == message.StatusQueued && ev.Attempt > 0
}

// line sends a live line, or holds it until its attempt's "running" has
// been sent.
func (st *runStream) line(l outputLine) {
	if st.otherDelivery(l) {
		if st.only == "" {
			st.hold(l) // a later delivery's run, which the stream follows on to
		}
		return
	}
	if l.attempt > 0 {
		switch {
		case l.attempt <= st.done, st.running && l.attempt < st.attempt:
			return // a late line of an attempt that ended: its record had it
		case !st.running || l.attempt > st.attempt:
			st.hold(l) // a line of an attempt whose "running" is still to come
			return
		}
	}
	if !st.live() {
		st.hold(l)
		return
	}
	if l.n > st.seen+1 && (st.seen > 0 || st.fromStart) && st.snapshotNow != nil {
		// Lines seen+1 .. l.n-1 were lost on their way (the first line is
		// 1 when the attempt is followed from its start): sent from the
		// executor's output so far when it holds them whole; else the
		// stream goes on after them (the record that ends the attempt
		// has them in its output).
		if out, n, ok := st.snapshotNow(st.attempt); ok && n >= l.n-1 && exactTail(out, n) {
			st.writeTail(out, st.attempt, n, st.seen)
			st.seen = max(st.seen, n)
		}
	}
	if l.n == 0 || l.n > st.seen {
		st.writeOutputNumbered(string(l.text), st.attempt, l.n)
		if l.n > 0 {
			st.seen = l.n
		}
	}
}

// hold keeps a live line until its attempt's "running" has been sent.
func (st *runStream) hold(l outputLine) {
	if len(st.pending) == maxPending {
		st.pending = st.pending[1:]
	}
	st.pending = append(st.pending, l)
}

// flushPending sends the held lines as the output of the attempt just
// started. Lines that name their attempt (Hookrun-Attempt) go by it: the
// attempt's own are sent, a later attempt's held on, an earlier one's
// dropped. For lines from an executor too old to name it: Every attempt numbers its lines from 1. An attempt that started
// after the client came has all its lines live: the held ones before its
// line 1 are an earlier attempt's stragglers, whose record had them. The
// attempt that was running when the client came continues its snapshot; a
// line numbered no higher than the one before it starts a later attempt's.
func (st *runStream) flushPending() {
	held := st.pending
	st.pending = nil
	var p []outputLine // lines that do not name their attempt
	for _, l := range held {
		switch {
		case st.otherDelivery(l):
			if st.only == "" {
				st.pending = append(st.pending, l)
			}
		case l.attempt == 0:
			p = append(p, l)
		case l.attempt == st.attempt:
			st.line(l)
		case l.attempt > st.attempt:
			st.pending = append(st.pending, l)
		}
	}
	joined := st.joinedRunning && st.attempt == st.snapshotAttempt
	start := -1
	for i := len(p) - 1; i >= 0 && start < 0; i-- {
		switch {
		case !joined && p[i].n == 1:
			start = i
		case joined && i > 0 && p[i].n != 0 && p[i].n <= p[i-1].n:
			start = i
		}
	}
	if start < 0 && joined {
		start = 0
	}
	for i, l := range p {
		if i >= start && start >= 0 || l.n == 0 {
			st.line(l)
		}
	}
}

func (st *runStream) writeStatus(ev *message.Run) {
	if st.alive != nil {
		st.alive()
	}
	b := marshalPlain(viewOfRun(ev))
	if ev.Kind == message.KindRun && message.Final(ev.Status) && ev.DeliveryID != "" {
		// The end of the delivery's run: an EventSource reconnecting with
		// this id gets 204, which stops it (lastEventID, runEvents).
		fmt.Fprintf(st.w, "event: status\nid: %d.end.%s\ndata: %s\n\n", ev.Attempt, ev.DeliveryID, b)
		return
	}
	if ev.Kind == message.KindDelivery && message.Final(ev.Status) && ev.ID != "" {
		// A delivery's record of its own that is all its stream sends
		// (rejected apart from the run): its end, attempt 0.
		fmt.Fprintf(st.w, "event: status\nid: 0.end.%s\ndata: %s\n\n", ev.ID, b)
		return
	}
	// No id: an EventSource keeps the last numbered line's as where to
	// resume, through statuses (a retry's backoff) too.
	fmt.Fprintf(st.w, "event: status\ndata: %s\n\n", b)
}

// writeLines sends text as output events, a line each.
func (st *runStream) writeLines(text string) {
	for _, line := range strings.SplitAfter(text, "\n") {
		if line != "" {
			st.writeOutput(line)
		}
	}
}

// maxSentKept bounds what a stream keeps of an attempt's output sent live:
// it is only matched against the tail an attempt's record stores (the
// executor's HOOKRUN_EXECUTOR_MAX_OUTPUT, 64 KiB by default), so more than
// that never matches, and a chatty run must not grow keys by its whole
// output per watcher.
const maxSentKept = 1 << 20

func (st *runStream) writeOutput(line string) { st.writeOutputNumbered(line, 0, 0) }

// writeOutputNumbered sends an output event; a numbered line's carries
// its attempt, number and delivery as the event's id
// ("<attempt>.<n>.<deliveryId>", see lastEventID), which a reconnecting
// client sends back as Last-Event-ID to get only the lines after it.
func (st *runStream) writeOutputNumbered(line string, attempt, n int) {
	if st.alive != nil {
		st.alive()
	}
	st.sent = append(st.sent, line...)
	if len(st.sent) > 2*maxSentKept {
		st.sent = append(st.sent[:0], st.sent[len(st.sent)-maxSentKept:]...)
	}
	b := marshalPlain(line)
	if n > 0 && attempt > 0 {
		if d := cmp.Or(st.delivery, st.only); d != "" {
			fmt.Fprintf(st.w, "event: output\nid: %d.%d.%s\ndata: %s\n\n", attempt, n, d, b)
		} else {
			fmt.Fprintf(st.w, "event: output\nid: %d.%d\ndata: %s\n\n", attempt, n, b)
		}
		return
	}
	fmt.Fprintf(st.w, "event: output\ndata: %s\n\n", b)
}

// outputLine is a live output line, its number and its attempt (0: not
// numbered, or from an executor too old to say).
type outputLine struct {
	text     []byte
	n        int
	attempt  int
	delivery string // "" from an executor too old to say
}

// snapshotTimeout bounds the wait for a running run's output so far; an
// executor that does not answer in time (or one too old to) leaves the
// client with the live lines from now on.
const snapshotTimeout = 250 * time.Millisecond

// outputSoFar asks the executor running run id for the output it has
// published so far, and the number of its last line.
func (s *Service) outputSoFar(id string) (string, int, bool) {
	out, n, _, ok := s.outputSoFarOf(id)
	return out, n, ok
}

// outputSoFarOf is outputSoFar with the attempt the output is of (0 from
// an executor before its answer said).
func (s *Service) outputSoFarOf(id string) (string, int, int, bool) {
	m, err := s.nc.Request(bus.OutputSnapshotSubject(id), nil, snapshotTimeout)
	if err != nil {
		return "", 0, 0, false
	}
	n, err := strconv.Atoi(m.Header.Get(bus.HeaderLine))
	if err != nil {
		return "", 0, 0, false
	}
	attempt, _ := strconv.Atoi(m.Header.Get(bus.HeaderAttempt))
	return string(m.Data), n, attempt, true
}

// unsent returns the part of a run's output (its tail) that follows what
// was already sent live: all of it when nothing was, the rest after the
// sent text when the sent text, or (a tail cut to its end) its end, is
// found, and nothing when it is not (lines were lost, or the tail no
// longer holds them). Sent text that begins at
// the attempt's first line (fromStart) is looked for at the tail's start
// first; text that does not (a client that joined a running attempt the
// executor gave no snapshot of) only at its end: the same text near the
// start would send the lines between again.
func unsent(output, sent string, fromStart bool) string {
	switch {
	case sent == "":
		return output
	case fromStart && strings.HasPrefix(output, sent):
		return output[len(sent):]
	}
	if i := strings.LastIndex(output, sent); i >= 0 {
		return output[i+len(sent):]
	}
	return unsentOfACutTail(output, sent)
}

// unsentOfACutTail is unsent of a tail cut to its last bytes (over the
// executor's MaxOutput, marked at its start) when more than it was sent:
// the tail's start is then the end of what was sent, and what follows
// that overlap is unsent. The longest overlap is taken (output repeating
// itself is ambiguous); none means the tail does not hold the sent text's
// end, and nothing is sent.
func unsentOfACutTail(output, sent string) string {
	t, cut := strings.CutPrefix(output, message.OutputTruncated)
	if !cut || t == "" {
		return ""
	}
	// A chance overlap (a "\n", a few bytes) when live lines were lost
	// would send the tail again: the overlap must end a line and be at
	// least minOverlap bytes (half of a shorter tail).
	if k := overlap(t, sent); k >= min(minOverlap, len(t)/2) && t[k-1] == '\n' {
		return t[k:]
	}
	return ""
}

// minOverlap is the least overlap unsentOfACutTail trusts.
const minOverlap = 512

// overlap is the length of the longest start of t that ends s, by the
// prefix function of t (Knuth-Morris-Pratt): linear in the two.
func overlap(t, s string) int {
	if len(s) > len(t) {
		s = s[len(s)-len(t):]
	}
	pi := make([]int32, len(t))
	for i := 1; i < len(t); i++ {
		k := pi[i-1]
		for k > 0 && t[i] != t[k] {
			k = pi[k-1]
		}
		if t[i] == t[k] {
			k++
		}
		pi[i] = k
	}
	k := int32(0)
	for i := 0; i < len(s); i++ {
		for k > 0 && (int(k) == len(t) || s[i] != t[k]) {
			k = pi[k-1]
		}
		if int(k) < len(t) && s[i] == t[k] {
			k++
		}
	}
	return int(k)
}

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// Causes a run's context can be cancelled with.
var (
	errCancelled = errors.New("cancelled")
	errHandBack  = errors.New("executor shutting down")
)

// outcome is what a runner reports.
type outcome struct {
	status   string
	exitCode *int
	output   string
	lines    int // the number of the last output line published live
	err      string
	// interrupted: the run was stopped from outside (cancel or shutdown),
	// not ended by itself or its timeout.
	interrupted bool
	// notStarted: the job never started (its command could not be
	// started, its request not built): the run's webhook shows why
	// (noteStartFailure).
	notStarted bool
}

// notStarted is the outcome of a run whose job could not start: failed
// with err.
func notStarted(err string) outcome {
	return outcome{status: message.StatusFailed, err: err, notStarted: true}
}

// handle is handleFrom for a run request from a consumer this executor
// does not keep: paced on this executor's AckWait.
func (x *Executor) handle(ctx context.Context, m jetstream.Msg) { x.handleFrom(ctx, nil, m) }

// handleFrom takes one run request of consumer c from fetch to ack. The ack
// comes only after the final status is stored: if this process dies first,
// JetStream redelivers the run, and it runs again as the next attempt.
func (x *Executor) handleFrom(ctx context.Context, c *jobConsumer, m jetstream.Msg) {
	var rr message.RunRequest
	if err := message.Decode(m.Data(), message.SchemaRunRequest, &rr); err != nil {
		if schema, wait, ok := bus.HandBackOtherVersion(m, message.SchemaRunRequest); ok {
			x.log.Error("run request of a schema this executor cannot read handed back: upgrade the executors", "subject", m.Subject(), "schema", schema, "in", wait)
			return
		}
		x.log.Error("undecodable run request terminated", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	// A redelivery of a run this process is still handling (its acks were
	// lost on the way, as when its NATS node was cut off) waits for that
	// handling to end instead of running the job a second time beside it.
	if !x.waitOwn(ctx, c, m, rr.ID) {
		return
	}
	defer x.release(rr.ID)
	x.handleRun(ctx, c, m, rr)
}

// waitOwn claims the run for this handler. If another handler in this
// process holds it, waitOwn keeps this delivery in progress until that one
// ends, then claims it. It reports false if ctx ended first: the delivery
// is then left to come back after its AckWait.
func (x *Executor) waitOwn(ctx context.Context, c *jobConsumer, m jetstream.Msg, id string) bool {
	for {
		x.mu.Lock()
		held, busy := x.owned[id]
		if !busy {
			x.owned[id] = make(chan struct{})
			x.mu.Unlock()
			return true
		}
		x.mu.Unlock()
		x.log.Info("run redelivered while still handled here; waiting for that handling to end", "run", id)
		t := time.NewTicker(x.ackWait(c) / 3)
		_ = m.InProgress()
	wait:
		for {
			select {
			case <-held:
				break wait
			case <-t.C:
				_ = m.InProgress()
			case <-ctx.Done():
				t.Stop()
				return false
			}
		}
		t.Stop()
	}
}

// release ends this process's claim on a run.
func (x *Executor) release(id string) {
	x.mu.Lock()
	close(x.owned[id])
	delete(x.owned, id)
	x.mu.Unlock()
}

// ownedElsewhere tells whether the run request m must not run because
// another request of the same run owns it. A run has the dispatcher's
// request and, for each retry, a copy scheduled for that attempt; m's copy
// number is g (0: the dispatcher's). The status says who owns the run:
//
//   - queued with retryAt: the copy for the next attempt (cur.Attempt+1);
//   - queued without it: the request that stored it (cur.Copy), which
//     holds the next attempt as an unacked message: the dispatcher's
//     (attempt 0, or a retry where scheduling is not available), or a copy
//     whose own next retry could not be scheduled (a publish that timed
//     out or was a duplicate); never another copy;
//   - running: the request that wrote it (cur.Copy); if that is m, m's
//     executor died mid-run and m runs the next attempt.
//
// So a copy scheduled just before a crash and the redelivered original
// never both run an attempt, whichever comes first.
func ownedElsewhere(g int, cur *message.Run) (bool, string) {
	switch {
	case cur.Status == message.StatusQueued && cur.RetryAt != nil:
		if g != cur.Attempt+1 {
			return true, "a scheduled retry owns the run"
		}
	case cur.Status == message.StatusQueued:
		if g != cur.Copy {
			return true, "a retry copy of a run that is not waiting for it"
		}
	default:
		if g != cur.Copy {
			return true, "another request of the run is running it"
		}
	}
	return false, ""
}

// handleRun handles a decoded run request of consumer c this process has
// claimed.
func (x *Executor) handleRun(ctx context.Context, c *jobConsumer, m jetstream.Msg, rr message.RunRequest) {
	// The run may start only while the message is surely still ours: until
	// its AckWait, counted from now, lapses, JetStream hands it to no one
	// else. Everything before the start is bounded by that, and a run that
	// cannot start in time (NATS stalling) is handed back, not started: its
	// redelivery may already be running elsewhere. The AckWait is the
	// consumer's when it is shorter than this executor's (another
	// executor's, written into the consumer).
	delivered := time.Now()
	startBy := delivered.Add(x.ackWait(c) * 2 / 3)
	pctx, pcancel := context.WithDeadline(ctx, startBy)
	defer pcancel()
	// Tracked before the cancel mark is read: a cancel either finds the run
	// tracked here, or its mark (written first by keys) is seen below. The
	// mark is read beside the status: one round trip's wait for both.
	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	x.track(rr.ID, cancel)
	defer x.untrack(rr.ID)
	var marked bool
	var markRead sync.WaitGroup
	first := firstDelivery(m)
	markRead.Go(func() { marked = x.cancelRequested(pctx, rr.ID, rr.DeliveryID, first) })
	defer markRead.Wait()
	// The run's current status says which attempt this is, and whether
	// there is anything left to do. Attempts are counted by starts, not by
	// deliveries: a run handed back unstarted (at shutdown) keeps its
	// number.
	// A retry copy knows its attempt even when the run's status is gone
	// (aged out of STATUS during a backoff longer than the retention):
	// attempts stay bounded by the job's retries.
	attempt := max(1, retryAttempt(m))
	interrupted := 0
	cur, curSeq, err := x.currentStatus(pctx, m, &rr)
	switch {
	case err == nil && cur.DeliveryID == rr.DeliveryID:
		if message.Final(cur.Status) {
			// An earlier attempt finished but its ack was lost, or the
			// run was cancelled while it waited in the queue.
			x.log.Info("run has already ended; acking", "run", rr.ID, "status", cur.Status)
			if cur.Status == message.StatusCancelled && cur.Error == message.CancelledWhileQueued {
				// Stored by keys, which runs no job: counted here, where
				// the run's request ends, as every other run's end is.
				mRuns.WithLabelValues(rr.Namespace+"/"+rr.Job, message.StatusCancelled).Inc()
			}
			_ = m.Ack()
			return
		}
		if owned, why := ownedElsewhere(retryAttempt(m), cur); owned {
			x.log.Info(why+"; acking", "run", rr.ID, "status", cur.Status, "attempt", cur.Attempt, "copy", retryAttempt(m))
			_ = m.Ack()
			return
		}
		if cur.Status == message.StatusRunning && cur.RequestSeq != 0 && cur.RequestSeq != requestSeq(m) {
			// The same request stored twice: the dispatcher's, again
			// after RUNS' duplicate window (its ack of the delivery was
			// lost). The other message owns the run while it is in
			// RUNS: it is running, or comes back to take the run over
			// if its executor died.
			switch pending, err := x.requestPending(pctx, cur.RequestSeq, &rr, cur.Copy); {
			case err != nil:
				x.log.Warn("cannot tell whether another message of the run's request runs it; handing the run back", "run", rr.ID, "err", err)
				handBackBy(m, startBy)
				return
			case pending:
				x.log.Info("another message of the run's request is running it; acking", "run", rr.ID, "attempt", cur.Attempt, "running_seq", cur.RequestSeq)
				_ = m.Ack()
				return
			}
		}
		if cur.Status == message.StatusRunning {
			// Taken to mean that the executor running it died: but a
			// job's consumer made again after a deletion hands out every
			// run in flight at once, other executors' still running
			// ones too. Only this path pays the question.
			switch alive, err := x.runningElsewhere(pctx, rr.ID); {
			case err != nil:
				x.log.Warn("cannot tell whether another executor still runs the run; handing the run back", "run", rr.ID, "err", err)
				handBackBy(m, startBy)
				return
			case alive:
				x.log.Info("the run is still running on another executor; handing it back", "run", rr.ID, "attempt", cur.Attempt, "in", ownerAliveRecheck)
				if time.Now().Before(startBy) {
					_ = m.NakWithDelay(ownerAliveRecheck)
				}
				return
			}
		}
		attempt = cur.Attempt + 1
		interrupted = cur.Interrupted
		if cur.Status == message.StatusRunning {
			// That attempt's executor stopped (shut down, or died)
			// before it ended: the job did not fail it.
			interrupted++
		}
	case err == nil:
		// The run id is the event's: a later delivery of it (sent again
		// after its dedup window) stores its "queued" only over a final
		// status (the dispatcher's expected-sequence check), so this
		// delivery's run has ended, its ack lost.
		x.log.Info("the run's status is a later delivery's: this one has ended; acking", "run", rr.ID, "delivery", rr.DeliveryID, "status_of", cur.DeliveryID)
		_ = m.Ack()
		return
	case err != nil && !errors.Is(err, runstatus.ErrNotFound):
		// Without the status neither the attempt nor whether the run has
		// already ended is known: come back later.
		if errors.Is(err, runstatus.ErrUndecodable) {
			// It will read the same until a release that can read it
			// runs (a rolling upgrade) or someone fixes the record: come
			// back later and later, not every second.
			delay := bus.RedeliveryBackoff(m)
			x.log.Error("cannot decode the run's status; handing the run back", "run", rr.ID, "in", delay, "err", err)
			if time.Now().Before(startBy) {
				_ = m.NakWithDelay(delay)
			}
			return
		}
		x.log.Warn("cannot read the run's status; handing the run back", "run", rr.ID, "err", err)
		handBackBy(m, startBy)
		return
	}
	log := x.log.With("run", rr.ID, "job", rr.Namespace+"/"+rr.Job, "attempt", attempt)
	label := rr.Namespace + "/" + rr.Job
	rec := x.record(&rr, attempt)
	rec.Interrupted = interrupted
	if interrupted > maxInterruptions {
		now := time.Now().UTC()
		rec.Status, rec.FinishedAt = message.StatusFailed, &now
		rec.Error = fmt.Sprintf("given up: an executor stopped (shut down, or died: out of memory?) during %d of its attempts", interrupted)
		x.finishAfter(ctx, c, m, rec, rr.Namespace+"/"+rr.Job, x.log.With("run", rr.ID), curSeq)
		return
	}
	rec.Copy, rec.RequestSeq = retryAttempt(m), requestSeq(m)

	job, ok := x.cat.Job(rr.Namespace, rr.Job)
	if !ok {
		// The catalog drops a record it cannot read (a newer keys' one,
		// during a rolling upgrade) as if the job had been deleted: the
		// bucket's leader tells the two apart before the run is failed.
		// Only a run whose job is not in the catalog pays this read.
		switch found, readable, err := x.jobRecord(pctx, label); {
		case err != nil:
			log.Warn("cannot tell whether the run's job still exists; handing the run back", "err", err)
			handBackBy(m, startBy)
			return
		case found:
			// It will read the same until a release that can read it
			// runs: come back later and later, not every second.
			delay := bus.RedeliveryBackoff(m)
			if readable {
				log.Info("the run's job is not in this executor's configuration yet; handing the run back", "in", delay)
			} else {
				log.Error("the run's job has a record this executor cannot read (a newer release's?); handing the run back: upgrade the executors", "in", delay)
			}
			if time.Now().Before(startBy) {
				_ = m.NakWithDelay(delay)
			}
			return
		}
		now := time.Now().UTC()
		rec.Status, rec.FinishedAt, rec.Error = message.StatusFailed, &now, "job "+label+" no longer exists"
		x.finishAfter(ctx, c, m, rec, label, log, curSeq)
		return
	}

	if markRead.Wait(); marked {
		now := time.Now().UTC()
		rec.Status, rec.FinishedAt, rec.Error = message.StatusCancelled, &now, "cancelled before it started"
		x.finishAfter(ctx, c, m, rec, label, log, curSeq)
		return
	}

	if x.beforeStart != nil {
		x.beforeStart(rr.ID)
	}
	// From just before its "running" until its message is acked or handed
	// back, the run answers for itself (onSnapshot): an executor about to
	// take it over from that "running" asks first (runningElsewhere), also
	// while the command is being set up or has ended and its final status
	// is being stored. Without an answer then, it would run it again.
	x.addOutput(rr.ID, &tail{})
	defer x.removeOutput(rr.ID)
	start := time.Now().UTC()
	rec.Status, rec.StartedAt = message.StatusRunning, &start
	// The sequence of "running": the final status is stored only after
	// it, so that this executor, back from a partition during which
	// another took the run over, cannot overwrite the newer attempt.
	runningSeq, err := x.publishStatus(pctx, rec, curSeq, log)
	// The consumer's AckWait may have been shortened meanwhile.
	if by := delivered.Add(x.ackWait(c) * 2 / 3); by.Before(startBy) {
		startBy = by
	}
	if err == nil && time.Now().After(startBy) {
		err = errors.New("too late to start: the run may have been handed to another executor")
	}
	if err != nil {
		log.Warn("cannot store running status in time; handing the run back", "err", err)
		handBackBy(m, startBy)
		return
	}
	// A full AckWait from here, unless the start came soon after the
	// delivery: keepAlive's first renewal, AckWait/3 from now, then comes
	// well before the delivery's AckWait lapses.
	if time.Until(startBy) < x.ackWait(c)/2 {
		_ = m.InProgress()
	}
	mAcceptToStart.WithLabelValues(label).Observe(start.Sub(rr.ReceivedAt).Seconds())

	stop := x.keepAlive(ctx, c, m, &rr, cancel)
	mRunning.WithLabelValues(label).Inc()
	var out outcome
	if x.afterRunning != nil {
		x.afterRunning(rr.ID)
	}
	if job.Spec.HTTP != nil {
		out = x.runHTTP(runCtx, job, &rr, attempt)
	} else {
		out = x.runCommand(runCtx, job, &rr, attempt, log)
	}
	mRunning.WithLabelValues(label).Dec()
	stop()
	end := time.Now().UTC()

	if out.interrupted {
		switch cause := context.Cause(runCtx); {
		case errors.Is(cause, errHandBack):
			log.Info("run stopped by shutdown; handing it back")
			_ = m.Nak()
			return
		case errors.Is(cause, errCancelled):
			out.status, out.err = message.StatusCancelled, "cancelled while running"
		}
	}
	if out.notStarted {
		// Before the final status: whoever sees the run end finds the
		// note queued.
		x.noteStartFailure(&rr, out.err)
	}
	rec.Status, rec.ExitCode, rec.Output, rec.Error, rec.FinishedAt = out.status, out.exitCode, out.output, out.err, &end
	rec.OutputLines = out.lines
	mRunSeconds.WithLabelValues(label).Observe(end.Sub(start).Seconds())
	if x.beforeFinal != nil {
		x.beforeFinal(rr.ID)
	}

	if (out.status == message.StatusFailed || out.status == message.StatusTimedOut) && failedAttempts(rec) <= job.Spec.Retries {
		if !errors.Is(context.Cause(runCtx), errCancelled) {
			x.retry(ctx, m, job, rec, attempt, out, label, log, runningSeq)
			return
		}
		// Cancelled as the attempt ended (the command had gone): the
		// run ends here, cancelled, rather than wait for a retry.
		rec.Status, rec.Error = message.StatusCancelled, fmt.Sprintf("cancelled as attempt %d ended (%s: %s)", attempt, out.status, out.err)
	}
	x.finishAfter(ctx, c, m, rec, label, log, runningSeq)
	mAcceptToFinish.WithLabelValues(label).Observe(end.Sub(rr.ReceivedAt).Seconds())
}

// maxFreeInterruptions is how many of a run's attempts an executor's
// shutdown or death may stop without using up the job's retries (a rolling
// deploy takes none of them); past it they count.
const maxFreeInterruptions = 3

// failedAttempts is the attempts of run r (its current one included) that
// count against its job's retries and double its backoff: all but those
// its executor's stop interrupted, up to maxFreeInterruptions.
func failedAttempts(r *message.Run) int {
	return r.Attempt - min(r.Interrupted, maxFreeInterruptions)
}

// maxInterruptions is how many of a run's attempts an executor's shutdown
// or death may stop before the run is given up: one that kills its
// executor every time (out of memory) would otherwise start again with
// every executor that takes it over, for ever.
const maxInterruptions = 10

// ownerAsk is how long an executor about to take a run over waits for the
// executor still running it, if any, to answer (runningElsewhere);
// ownerAliveRecheck is when a run still running elsewhere comes back.
const (
	ownerAsk          = 500 * time.Millisecond
	ownerAliveRecheck = 3 * time.Second
)

// runningElsewhere asks whether an executor still runs run id, before this
// one takes it over from its "running": the executor running a command
// answers requests for its output so far (onSnapshot), the others stay
// silent. No answer within ownerAsk (the owner died, or is cut off from
// NATS, which the expected sequence of its final status guards against)
// is false; err is set only when the question could not be asked.
func (x *Executor) runningElsewhere(ctx context.Context, id string) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, ownerAsk)
	defer cancel()
	_, err := x.nc.RequestWithContext(rctx, bus.OutputSnapshotSubject(id), nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return false, nil
	}
	return false, err
}

// handBackBy NAKs a run not started, if it is still surely ours. Past
// startBy JetStream may have redelivered it already, and a late NAK would
// make it come once more while that delivery runs (the server does not tell
// deliveries of a message apart on a NAK): then AckWait brings it back.
func handBackBy(m jetstream.Msg, startBy time.Time) {
	if time.Now().Before(startBy) {
		_ = m.NakWithDelay(time.Second)
	}
}

// retry makes the run's next attempt wait out its backoff without holding
// a slot of its job's concurrency: a copy of the run request is scheduled
// in RUNS (NATS message scheduling, on the job's subject when due), the
// run is stored as queued with its retryAt, and this message is acked.
// The order makes every crash safe: a redelivered original whose status
// says a retry is scheduled is acked (its copy runs it); one whose status
// still says running runs again, and its copy, when due, finds the attempt
// made and is acked (handleRun). Without message scheduling (a
// nats-server before 2.12) the message is held, as NakWithDelay does.
func (x *Executor) retry(ctx context.Context, m jetstream.Msg, job *resource.Job, rec *message.Run, attempt int, out outcome, label string, log *slog.Logger, runningSeq uint64) {
	delay := backoff(job.Spec.RetryBackoff.D(), failedAttempts(rec))
	at := time.Now().Add(delay).UTC()
	rec.Status, rec.FinishedAt = message.StatusQueued, nil
	rec.Error = fmt.Sprintf("attempt %d %s (%s); retrying in %s", attempt, out.status, out.err, delay)
	mRetries.WithLabelValues(label).Inc()
	bg := context.WithoutCancel(ctx)
	scheduled := x.scheduleRetry(bg, m, rec, attempt+1, at, log)
	if scheduled {
		rec.RetryAt = &at
	}
	sctx, cancel := context.WithTimeout(bg, 5*time.Second)
	queuedSeq, err := x.publishStatus(sctx, rec, runningSeq, log)
	cancel()
	log.Info("run failed; retrying", "status", out.status, "in", delay, "scheduled", scheduled)
	if errors.Is(err, runstatus.ErrNotLatest) {
		// Another executor took the run over meanwhile: the message is
		// its now; a NAK here would bring it back once more.
		log.Warn("the run was taken over while this attempt ran; leaving it to its new owner")
		return
	}
	if err != nil || !scheduled {
		// Without the retry status stored, a copy (if any) does not own
		// the run: this request, back when the retry is due, runs it.
		if err != nil {
			log.Warn("cannot store retry status", "err", err)
		}
		_ = m.NakWithDelay(delay)
		return
	}
	x.cancelIfMarked(bg, rec, queuedSeq, log)
	if x.loseRetryAck {
		return // a test's lost ack: JetStream redelivers the request
	}
	actx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := m.DoubleAck(actx); err != nil {
		// The redelivery finds the retry scheduled and only acks.
		log.Warn("ack failed after scheduling the retry", "err", err)
	}
}

// cancelIfMarked ends run rec, just stored waiting for a retry at sequence
// queuedSeq, as cancelled when a cancel of it is marked: keys, reading
// "running" as the attempt ended, stored no status of its own, and its
// cancel message found the command gone. The run would otherwise wait for
// its retry, which may be hours away, to be found cancelled. The copy in
// RETRIES, when due, finds the run ended and is only acked.
func (x *Executor) cancelIfMarked(ctx context.Context, rec *message.Run, queuedSeq uint64, log *slog.Logger) {
	if !x.cancelRequested(ctx, rec.ID, rec.DeliveryID, false) {
		return
	}
	now := time.Now().UTC()
	q := *rec
	q.Status, q.FinishedAt, q.Error = message.StatusCancelled, &now, message.CancelledWhileQueued
	q.StartedAt, q.ExitCode, q.RetryAt = nil, nil, nil
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := x.publishStatus(sctx, &q, queuedSeq, log); err != nil && !errors.Is(err, runstatus.ErrNotLatest) {
		// The copy, when due, finds the mark and ends the run then.
		log.Warn("cannot store the cancel of a run waiting for a retry", "err", err)
	}
}

// scheduleRetry stores a copy of m in RETRIES, due at at, for the given
// attempt; when due, NATS publishes it on the job's due subject there and
// moveDueRetries puts it back in RUNS. Its message id makes a second
// scheduling of the same attempt a duplicate.
func (x *Executor) scheduleRetry(ctx context.Context, m jetstream.Msg, rec *message.Run, attempt int, at time.Time, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := x.js.Stream(ctx, bus.StreamRetries)
	if err != nil || !s.CachedInfo().Config.AllowMsgSchedules {
		if err == nil {
			log.Warn("RETRIES has no message scheduling (nats-server 2.12 or later): the retry holds a slot of its job while it waits")
		}
		return false
	}
	c := nats.NewMsg(bus.RetryScheduleSubject(rec.ID))
	c.Data = m.Data()
	c.Header.Set(bus.HeaderSchema, m.Headers().Get(bus.HeaderSchema))
	c.Header.Set(bus.HeaderRetryAttempt, strconv.Itoa(attempt))
	c.Header.Set(bus.HeaderSchedule, "@at "+at.Format(time.RFC3339Nano))
	c.Header.Set(bus.HeaderScheduleTarget, bus.RetryDueSubject(rec.Namespace, rec.Job))
	msgID := retryMsgID(rec.ID, rec.DeliveryID, attempt)
	ack, err := x.js.PublishMsg(ctx, c, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(bus.StreamRetries))
	if err != nil || ack.Duplicate {
		// A copy may exist all the same (a time-out after NATS stored
		// it, or an earlier scheduling): it will not own the run, whose
		// status says no retry is scheduled (ownedElsewhere).
		log.Warn("cannot schedule the retry; holding the run until it is due", "err", err, "duplicate", err == nil)
		return false
	}
	return true
}

// retryMsgID is the message id of the copy of a run's request for attempt.
func retryMsgID(runID, deliveryID string, attempt int) string {
	return bus.RunMsgID(runID, deliveryID) + ":retry" + strconv.Itoa(attempt)
}

// moveDueRetries moves due retries from RETRIES into RUNS, on their job's
// subject (a durable consumer shared by every executor, made again if it is
// deleted). The copy keeps its headers, and its message id in RUNS drops a
// second move of the same copy (a crash between the publish and the ack).
func (x *Executor) moveDueRetries(ctx context.Context) error {
	return x.consumeDurable(ctx, bus.StreamRetries, jetstream.ConsumerConfig{
		Durable:       bus.ConsumerRetries,
		Description:   "Due retries, moved into RUNS",
		FilterSubject: bus.RetriesDue,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 10_000,
	}, false, func(m jetstream.Msg) {
		ns, job, ok := bus.JobOfRetryDue(m.Subject())
		if !ok {
			x.log.Error("due retry on a subject that names no job: dropped", "subject", m.Subject())
			_ = m.Term()
			return
		}
		out := nats.NewMsg(bus.RunSubject(ns, job))
		out.Data = m.Data()
		for _, h := range []string{bus.HeaderSchema, bus.HeaderRetryAttempt} {
			out.Header.Set(h, m.Headers().Get(h))
		}
		var rr struct {
			ID         string `json:"id"`
			DeliveryID string `json:"deliveryId"`
		}
		_ = json.Unmarshal(m.Data(), &rr)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		attempt := retryAttempt(m)
		msgID := retryMsgID(rr.ID, rr.DeliveryID, attempt)
		ack, err := x.js.PublishMsg(pctx, out, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(bus.StreamRuns))
		if err == nil && ack.Duplicate {
			// A second move of this copy (the first one's ack lost), or a
			// write a clustered JetStream lost with its leader and still
			// answers as held: acked then, the run, whose status says this
			// copy owns it (ownedElsewhere), would wait for ever.
			err = bus.ConfirmDuplicate(pctx, x.js, out, msgID, ack, func(id string, seq uint64, next string) {
				if next != "" {
					x.log.Warn("due retry answered as a duplicate not held in RUNS: storing it under the next message id", "run", rr.ID, "attempt", attempt, "msg_id", id, "seq", seq, "next", next)
				}
			}, jetstream.WithExpectStream(bus.StreamRuns))
		}
		if err != nil {
			x.log.Warn("cannot move a due retry into RUNS; trying again", "run", rr.ID, "attempt", attempt, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		if _, known := x.cat.Job(ns, job); !known {
			// Its job deleted meanwhile, its consumer may be gone too
			// (deleted by hand: executors keep a drained one): the run
			// would wait in RUNS for ever. In a consumer, it is drained
			// (ends failed).
			if err := x.keepJobConsumer(pctx, ns, job); err != nil {
				x.log.Warn("cannot make sure a due retry's job has a consumer; trying again", "run", rr.ID, "job", ns+"/"+job, "err", err)
				_ = m.NakWithDelay(time.Second)
				return
			}
		}
		_ = m.Ack()
	})
}

// retryAttempt is the attempt a scheduled retry copy is for; 0 for a run
// request the dispatcher stored.
func retryAttempt(m jetstream.Msg) int {
	n, _ := strconv.Atoi(m.Headers().Get(bus.HeaderRetryAttempt))
	return n
}

// requestSeq is m's sequence in RUNS (0 if unknown).
func requestSeq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

// requestPending tells whether the message at seq, the one that wrote the
// run's "running", is still in RUNS: a work queue, where a request is
// removed once acked, so one still there is running or comes back. It must
// be a message of the same request (rr's copy g): RUNS made again (deleted,
// lost with its store) numbers its messages from 1 again, and another
// run's request there would hold this run for ever, its every message
// acked as if the other ran it.
func (x *Executor) requestPending(ctx context.Context, seq uint64, rr *message.RunRequest, g int) (bool, error) {
	_, id, found, err := bus.MsgAt(ctx, x.js.Conn(), bus.StreamRuns, seq)
	if err != nil || !found {
		return false, err
	}
	return sameRequest(id, requestMsgID(rr.ID, rr.DeliveryID, g)), nil
}

// requestMsgID is the message id in RUNS of copy g of a run's request:
// the dispatcher's (0; bus.RunMsgID) or the copy for
// attempt g (retryMsgID).
func requestMsgID(runID, deliveryID string, g int) string {
	if g > 0 {
		return retryMsgID(runID, deliveryID, g)
	}
	return bus.RunMsgID(runID, deliveryID)
}

// sameRequest tells whether message id is want, or want stored again
// under "#n" (the dispatcher's series for a duplicate answer it could not
// confirm, ARCHITECTURE.md).
func sameRequest(id, want string) bool {
	rest, ok := strings.CutPrefix(id, want)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	n, ok := strings.CutPrefix(rest, "#")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// finish stores the final status and then acks. The run has happened: its
// status is retried for as long as NATS or the STATUS stream is away (an
// outage of any length), with in-progress acks holding the run whenever
// they get through, so that it is not run again. Only once the executor is
// shutting down does it give up, after ShutdownGrace, and hand the run back
// (its redelivery runs it again, as a later attempt).
func (x *Executor) finish(ctx context.Context, m jetstream.Msg, rec *message.Run, label string, log *slog.Logger) {
	x.finishAfter(ctx, nil, m, rec, label, log, 0)
}

// maxStrippedError bounds the error kept in a status fitted to NATS'
// max_payload (fitStatus).
const maxStrippedError = 4 << 10

// finishAfter is finish for a run of consumer c whose "running" is at
// runningSeq: the final status is stored only if no other status came after
// it. One that did (another executor took the run over while this one was
// cut off) wins: this attempt's result is dropped and the message, now the
// other's, is left alone.
func (x *Executor) finishAfter(ctx context.Context, c *jobConsumer, m jetstream.Msg, rec *message.Run, label string, log *slog.Logger, runningSeq uint64) {
	wait := x.statusRetry
	if wait <= 0 {
		wait = time.Second
	}
	var giveUp <-chan time.Time
	for i := 1; ; i++ {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := x.publishStatus(sctx, rec, runningSeq, log)
		if errors.Is(err, runstatus.ErrNotLatest) {
			// Stored by an earlier try whose ack was lost, or the run
			// taken over?
			cur, gerr := runstatus.Get(sctx, x.js, rec.ID)
			if gerr == nil && cur.Status == rec.Status && cur.Attempt == rec.Attempt && cur.Copy == rec.Copy {
				err = nil
			} else if gerr == nil {
				cancel()
				log.Warn("the run was taken over while this attempt ran; its result is not stored", "status", rec.Status, "current", cur.Status, "current_attempt", cur.Attempt)
				if message.Final(cur.Status) || cur.DeliveryID != rec.DeliveryID {
					// Ended (keys cancelled it as it started), or the run
					// id is a later delivery's: nothing is left for any
					// copy of this message to do.
					_ = m.Ack()
				}
				return
			}
		}
		cancel()
		if err == nil {
			if i > 1 {
				log.Info("final status stored after retries", "attempts", i)
			}
			break
		}
		if i == 1 || i%10 == 0 {
			log.Warn("cannot store final status; retrying until NATS takes it", "attempts", i, "err", err)
		}
		_ = m.InProgress()
		if giveUp == nil && ctx.Err() != nil {
			giveUp = time.After(x.cfg.ShutdownGrace)
		}
		select {
		case <-time.After(wait):
		case <-giveUp:
			log.Warn("cannot store final status before shutting down; handing the run back", "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		// At most a third of AckWait apart, as keepAlive's in-progress
		// acks, so that NATS back from an outage sees one in time.
		wait = min(2*wait, 5*time.Second, x.ackWait(c)/3)
	}
	// A plain ack, not a confirmed one: should it be lost, the redelivery
	// finds the final status stored and only acks, so waiting for the
	// server's answer would buy nothing but a round trip per run.
	if err := m.Ack(); err != nil {
		log.Warn("ack failed after final status", "err", err)
	}
	mRuns.WithLabelValues(label, rec.Status).Inc()
	log.Info("run finished", "status", rec.Status)
}

// keepAlive sends in-progress acks while a run of consumer c lasts, a
// third of its AckWait apart (renewed at once when the consumer's AckWait
// is found shortened), checks with each whether the run was marked
// cancelled, and on shutdown gives the run ShutdownGrace before stopping it
// to hand it back.
func (x *Executor) keepAlive(ctx context.Context, c *jobConsumer, m jetstream.Msg, rr *message.RunRequest, cancel context.CancelCauseFunc) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		shorter := c.shortened()
		period := x.ackWait(c) / 3
		t := time.NewTicker(period)
		defer t.Stop()
		repace := func() {
			if p := x.ackWait(c) / 3; p != period {
				period = p
				t.Reset(p)
			}
		}
		shutdown := ctx.Done()
		var grace <-chan time.Time
		for {
			select {
			case <-done:
				return
			case <-shorter:
				// The last renewal may be older than the new AckWait.
				shorter = c.shortened()
				_ = m.InProgress()
				repace()
			case <-t.C:
				_ = m.InProgress()
				repace()
				// keys' cancel message is core NATS: one published while
				// this executor was reconnecting is lost. Its mark, written
				// first, is not.
				if x.cancelRequested(context.Background(), rr.ID, rr.DeliveryID, true) {
					x.log.Info("cancel mark found while running; cancelling", "run", rr.ID)
					cancel(errCancelled)
				}
			case <-shutdown:
				shutdown = nil
				grace = time.After(x.cfg.ShutdownGrace)
			case <-grace:
				cancel(errHandBack)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func backoff(base time.Duration, attempt int) time.Duration {
	if base <= 0 {
		base = 5 * time.Second
	}
	d := base
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return d
}

func (x *Executor) record(rr *message.RunRequest, attempt int) *message.Run {
	q := rr.QueuedAt
	return &message.Run{
		Kind: message.KindRun, ID: rr.ID, Namespace: rr.Namespace, Webhook: rr.Webhook, Job: rr.Job,
		DeliveryID: rr.DeliveryID, Attempt: attempt, QueuedAt: &q, Args: rr.Args, Replay: rr.Replay,
		WebhookPayload: message.StatusPayload(rr.Payload), WebhookPayloadTruncated: message.PayloadTruncated(rr.Payload), WebhookEventID: rr.EventID, WebhookReceivedAt: rr.ReceivedAt,
		WebhookSource: rr.Source, Callback: rr.Callback,
	}
}

func (x *Executor) track(id string, cancel context.CancelCauseFunc) {
	x.mu.Lock()
	x.running[id] = cancel
	x.mu.Unlock()
}

func (x *Executor) untrack(id string) {
	x.mu.Lock()
	delete(x.running, id)
	x.mu.Unlock()
}

// jobTimeout is the job's timeout.
func jobTimeout(j *resource.Job) time.Duration {
	if j.Spec.Timeout <= 0 {
		return 5 * time.Minute
	}
	return j.Spec.Timeout.D()
}

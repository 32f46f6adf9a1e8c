package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// activeRun is a run executing on this instance.
type activeRun struct {
	cancel    context.CancelCauseFunc
	cancelled bool
}

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
	err      string
}

// handle takes one run request from fetch to ack. The ack comes only after
// the final status is stored: if this process dies first, JetStream
// redelivers the run (NumDelivered = attempt).
func (x *Executor) handle(ctx context.Context, m jetstream.Msg) {
	var rr message.RunRequest
	if err := message.Decode(m.Data(), message.SchemaRunRequest, &rr); err != nil {
		x.log.Error("undecodable run request terminated", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	log := x.log.With("run", rr.ID, "job", rr.Namespace+"/"+rr.Job, "attempt", attempt)
	label := rr.Namespace + "/" + rr.Job
	rec := x.record(&rr, attempt)

	if x.cancelRequested(ctx, rr.ID) {
		now := time.Now().UTC()
		rec.Status, rec.FinishedAt, rec.Error = message.StatusCancelled, &now, "cancelled before it started"
		x.finish(ctx, m, rec, label, log)
		return
	}
	job, ok := x.cat.Job(rr.Namespace, rr.Job)
	if !ok {
		now := time.Now().UTC()
		rec.Status, rec.FinishedAt, rec.Error = message.StatusFailed, &now, "job "+label+" no longer exists"
		x.finish(ctx, m, rec, label, log)
		return
	}

	start := time.Now().UTC()
	rec.Status, rec.StartedAt = message.StatusRunning, &start
	if err := runstatus.Publish(ctx, x.js, rec); err != nil {
		log.Warn("cannot store running status; handing the run back", "err", err, "cause", context.Cause(ctx))
		_ = m.NakWithDelay(time.Second)
		return
	}
	mAcceptToStart.WithLabelValues(label).Observe(start.Sub(rr.ReceivedAt).Seconds())

	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ar := &activeRun{cancel: cancel}
	x.track(rr.ID, ar)
	defer x.untrack(rr.ID)
	stop := x.keepAlive(ctx, m, cancel)
	defer stop()

	mRunning.WithLabelValues(label).Inc()
	var out outcome
	if job.Spec.HTTP != nil {
		out = x.runHTTP(runCtx, job, &rr, attempt)
	} else {
		out = x.runCommand(runCtx, job, &rr, attempt, log)
	}
	mRunning.WithLabelValues(label).Dec()
	end := time.Now().UTC()

	switch cause := context.Cause(runCtx); {
	case errors.Is(cause, errHandBack):
		log.Info("run stopped by shutdown; handing it back")
		_ = m.NakWithDelay(time.Second)
		return
	case errors.Is(cause, errCancelled):
		out.status, out.err = message.StatusCancelled, "cancelled"
	}
	rec.Status, rec.ExitCode, rec.Output, rec.Error, rec.FinishedAt = out.status, out.exitCode, out.output, out.err, &end
	mRunSeconds.WithLabelValues(label).Observe(end.Sub(start).Seconds())

	if (out.status == message.StatusFailed || out.status == message.StatusTimedOut) && attempt <= job.Spec.Retries {
		delay := backoff(job.Spec.RetryBackoff.D(), attempt)
		rec.Status, rec.FinishedAt = message.StatusQueued, nil
		rec.Error = fmt.Sprintf("attempt %d %s (%s); retrying in %s", attempt, out.status, out.err, delay)
		if err := runstatus.Publish(ctx, x.js, rec); err != nil {
			log.Warn("cannot store retry status", "err", err)
		}
		mRetries.WithLabelValues(label).Inc()
		_ = m.NakWithDelay(delay)
		return
	}
	x.finish(ctx, m, rec, label, log)
	mAcceptToFinish.WithLabelValues(label).Observe(end.Sub(rr.ReceivedAt).Seconds())
}

// finish stores the final status (retrying while the store is away, with
// in-progress acks holding the run) and then acks.
func (x *Executor) finish(ctx context.Context, m jetstream.Msg, rec *message.Run, label string, log interface {
	Warn(string, ...any)
	Info(string, ...any)
}) {
	for i := 0; ; i++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := runstatus.Publish(pctx, x.js, rec)
		cancel()
		if err == nil {
			break
		}
		if i == 10 {
			log.Warn("cannot store final status; handing the run back", "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.InProgress()
		time.Sleep(time.Second)
	}
	if err := m.DoubleAck(context.WithoutCancel(ctx)); err != nil {
		log.Warn("ack failed after final status; a redelivery will re-run", "err", err)
	}
	mRuns.WithLabelValues(label, rec.Status).Inc()
	log.Info("run finished", "status", rec.Status)
}

// keepAlive sends in-progress acks while a run lasts, and on shutdown gives
// the run ShutdownGrace before stopping it to hand it back.
func (x *Executor) keepAlive(ctx context.Context, m jetstream.Msg, cancel context.CancelCauseFunc) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(x.cfg.AckWait / 3)
		defer t.Stop()
		shutdown := ctx.Done()
		var grace <-chan time.Time
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
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
	payload := rr.Payload
	if len(payload) > message.MaxStatusPayload {
		payload = payload[:message.MaxStatusPayload]
	}
	q := rr.QueuedAt
	return &message.Run{
		Kind: message.KindRun, ID: rr.ID, Namespace: rr.Namespace, Webhook: rr.Webhook, Job: rr.Job,
		DeliveryID: rr.DeliveryID, Attempt: attempt, QueuedAt: &q, Args: rr.Args, Replay: rr.Replay,
		WebhookPayload: string(payload), WebhookEventID: rr.EventID, WebhookReceivedAt: rr.ReceivedAt,
		WebhookSource: rr.Source, Callback: rr.Callback,
	}
}

func (x *Executor) track(id string, ar *activeRun) {
	x.mu.Lock()
	x.running[id] = ar
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

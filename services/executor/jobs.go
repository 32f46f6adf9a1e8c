package executor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
)

// jobWorkers is the fetch loop of one job, replaced when the job's
// concurrency changes.
type jobWorkers struct {
	concurrency int
	stop        context.CancelFunc // stops fetching; runs in hand go on
	job         string             // namespace/name, the label of its series
	cons        jetstream.Consumer
	// draining: the job was deleted. Its runs still queued are fetched
	// and ended as failed ("no longer exists", in handleRun) until none
	// is left, rather than left queued for ever.
	draining bool
}

// manageJobs keeps one durable consumer and a fetch loop per job in
// step with the catalog: created when a job appears, replaced when its
// concurrency changes, draining when it goes (its queued runs end as failed;
// the loop stops once the consumer holds none). Replacing loops does not
// stop the runs they hold: those finish, and the consumer's MaxAckPending
// keeps counting them against the new limit.
func (x *Executor) manageJobs(ctx context.Context) error {
	select {
	case <-x.cat.Ready():
	case <-ctx.Done():
		return nil
	}
	changed := make(chan struct{}, 1)
	x.cat.OnChange(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	workers := map[string]*jobWorkers{}
	var wg sync.WaitGroup
	defer wg.Wait()
	lag := time.NewTicker(5 * time.Second)
	defer lag.Stop()
	retry := time.NewTicker(10 * time.Second) // consumers that failed to be created
	defer retry.Stop()
	for {
		want := map[string]*resource.Job{}
		for _, j := range x.cat.Jobs() {
			want[bus.JobConsumer(j.Metadata.Namespace, j.Metadata.Name)] = j
		}
		for name, w := range workers {
			j, ok := want[name]
			switch {
			case w.draining && !ok:
			case w.draining:
				x.log.Info("deleted job is back: fetching its runs again", "job", w.job)
				w.stop()
				delete(workers, name)
			case !ok:
				x.log.Info("job deleted: its queued runs are ended as failed", "job", w.job)
				w.stop()
				fctx, stop := context.WithCancel(ctx)
				dw := &jobWorkers{concurrency: w.concurrency, stop: stop, job: w.job, cons: w.cons, draining: true}
				workers[name] = dw
				wg.Add(1)
				go func() { defer wg.Done(); x.fetchLoop(ctx, fctx, dw.cons, dw.concurrency) }()
			case j.Spec.Concurrency != w.concurrency:
				x.log.Info("job concurrency changed: fetching anew", "job", w.job, "concurrency", j.Spec.Concurrency)
				w.stop()
				delete(workers, name)
			}
		}
		for name, j := range want {
			if _, ok := workers[name]; ok {
				continue
			}
			cons, err := x.ensureConsumer(ctx, j)
			if err != nil {
				x.log.Warn("cannot create job consumer; will retry", "job", name, "err", err)
				continue
			}
			x.log.Info("fetching runs of job", "job", j.Metadata.Namespace+"/"+j.Metadata.Name, "concurrency", j.Spec.Concurrency)
			fctx, stop := context.WithCancel(ctx)
			workers[name] = &jobWorkers{concurrency: j.Spec.Concurrency, stop: stop, job: j.Metadata.Namespace + "/" + j.Metadata.Name, cons: cons}
			wg.Add(1)
			go func() { defer wg.Done(); x.fetchLoop(ctx, fctx, cons, j.Spec.Concurrency) }()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-lag.C:
			x.reportBacklog(ctx, workers)
			x.endDrained(ctx, workers)
			x.drainOrphans(ctx, workers, want, &wg)
		case <-retry.C:
		}
	}
}

// ensureConsumer creates or updates the job's durable consumer. Its
// MaxAckPending is the job's concurrency: JetStream will not hand out more
// unacked runs than that, whatever the number of executors.
func (x *Executor) ensureConsumer(ctx context.Context, j *resource.Job) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return x.js.CreateOrUpdateConsumer(cctx, bus.StreamRuns, jetstream.ConsumerConfig{
		Durable:       bus.JobConsumer(j.Metadata.Namespace, j.Metadata.Name),
		Description:   "Runs of job " + j.Metadata.Namespace + "/" + j.Metadata.Name,
		FilterSubject: bus.RunSubject(j.Metadata.Namespace, j.Metadata.Name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       x.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: j.Spec.Concurrency,
	})
}

// idlePoll is how long an idle job's pull request waits for a run.
const idlePoll = time.Second

// fetchLoop feeds one job's runs to handlers, each on its own goroutine and
// holding one of this instance's slots (the per-instance cap) until its
// handling ends. It fetches in one of two ways:
//
//   - busy (the last fetch got runs): it takes every free slot, up to the
//     job's concurrency, and fetches that many runs without waiting;
//   - idle: one long poll for as many runs as there are free slots,
//     holding none, so that an idle job never keeps the slots a busy one
//     needs (runs trickling in come through that one poll). It polls only
//     while a slot is free; a run that arrives when the instance has filled
//     up meanwhile is handed back at once, for an executor with room.
//
// A fetched run goes to its handler as it arrives, so the start checks in
// handleRun (startBy) count from its delivery as they did with one fetch per
// run. The loop stops fetching when fetchCtx ends and returns once the runs
// it started have ended; those live under ctx, the executor's, whose end
// starts the shutdown grace.
func (x *Executor) fetchLoop(ctx, fetchCtx context.Context, cons jetstream.Consumer, concurrency int) {
	var runs sync.WaitGroup
	defer runs.Wait()
	run := func(m jetstream.Msg) { // m holds a slot, given back when it is done
		runs.Add(1)
		go func() {
			defer runs.Done()
			defer x.releaseSlots(1)
			x.handle(ctx, m)
		}()
	}
	busy := false
	for fetchCtx.Err() == nil {
		var (
			held  int // slots taken for this fetch
			batch jetstream.MessageBatch
			err   error
		)
		if busy {
			if held = x.takeSlots(fetchCtx, concurrency); held == 0 {
				return
			}
			batch, err = cons.FetchNoWait(held)
		} else {
			if !x.waitFreeSlot(fetchCtx) {
				return
			}
			batch, err = cons.Fetch(min(x.freeSlots(), concurrency), jetstream.FetchMaxWait(idlePoll))
		}
		if err != nil {
			x.releaseSlots(held)
			busy = false
			select {
			case <-fetchCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		got := 0
		for m := range batch.Messages() {
			got++
			switch {
			case fetchCtx.Err() != nil:
				_ = m.Nak() // fetched as we stopped: hand it back at once
			case held > 0:
				held--
				run(m)
			case x.takeSlot():
				run(m)
			default:
				_ = m.Nak() // the instance filled up during the poll
			}
		}
		x.releaseSlots(held)
		busy = got > 0
	}
}

// drainOrphans starts draining the consumers of jobs that no longer exist
// and that no loop here fetches, when they hold runs: the job was deleted
// while no executor watched (or this one restarted mid-drain), or a retry
// that fell due after the drain was moved into RUNS. Consumer names are job_<ns>_<job>, and
// names hold no "_".
func (x *Executor) drainOrphans(ctx context.Context, workers map[string]*jobWorkers, want map[string]*resource.Job, wg *sync.WaitGroup) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := x.js.Stream(lctx, bus.StreamRuns)
	if err != nil {
		return
	}
	names := s.ConsumerNames(lctx)
	for name := range names.Name() {
		rest, ok := strings.CutPrefix(name, "job_")
		ns, job, ok2 := strings.Cut(rest, "_")
		if !ok || !ok2 || workers[name] != nil || want[name] != nil {
			continue
		}
		if _, found := x.cat.Job(ns, job); found {
			continue // created since want was read: the next pass fetches it
		}
		// This executor's catalog may lag behind the executor that made
		// the consumer of a job just created: ask the bucket's leader
		// before failing the job's runs as "no longer exists".
		if _, err := bus.LastKV(lctx, x.js.Conn(), bus.BucketJobs, bus.ConfigKey(ns, job)); !errors.Is(err, bus.ErrKVKeyNotFound) {
			continue
		}
		cons, err := s.Consumer(lctx, name)
		if err != nil {
			continue
		}
		info := cons.CachedInfo()
		if info.NumPending == 0 && info.NumAckPending == 0 {
			continue
		}
		x.log.Info("draining the runs of a deleted job", "job", ns+"/"+job, "queued", info.NumPending)
		fctx, stop := context.WithCancel(ctx)
		dw := &jobWorkers{concurrency: 1, stop: stop, job: ns + "/" + job, cons: cons, draining: true}
		workers[name] = dw
		wg.Add(1)
		go func() { defer wg.Done(); x.fetchLoop(ctx, fctx, dw.cons, dw.concurrency) }()
	}
}

// endDrained stops the loops of deleted jobs whose consumer holds no run
// any more (none waiting, none in hand), and forgets their series.
func (x *Executor) endDrained(ctx context.Context, workers map[string]*jobWorkers) {
	for name, w := range workers {
		if !w.draining {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := w.cons.Info(ictx)
		cancel()
		if err == nil && (info.NumPending > 0 || info.NumAckPending > 0) || err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		x.log.Info("deleted job drained: its runs are no longer fetched", "job", w.job)
		w.stop()
		delete(workers, name)
		forgetJob(name, w.job)
	}
}

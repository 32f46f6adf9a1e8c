package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/resource"
)

// jobWorkers is the fetch loop of one job, replaced when the job's
// concurrency changes or its consumer is found deleted.
type jobWorkers struct {
	concurrency int
	stop        context.CancelFunc // stops fetching; runs in hand go on
	job         string             // namespace/name, the label of its series
	cons        *jobConsumer
	// draining: the job was deleted. Its runs still queued are fetched
	// and ended as failed ("no longer exists", in handleRun) until none
	// is left, rather than left queued for ever.
	draining bool
	// gone: the loop found its consumer deleted (by an operator, or with
	// RUNS, which keys then lays out again) and stopped fetching.
	gone atomic.Bool
}

// jobConsumer is a job's durable consumer on RUNS, with the AckWait it has
// there as last read. Every executor writes its own AckWait into the
// consumer (create-or-update), so during a rolling change of
// HOOKRUN_EXECUTOR_ACK_WAIT the consumer may hold another executor's,
// shorter than this one's: a run whose in-progress acks came at this one's
// pace would be handed to another executor, and run there a second time,
// while it still runs here. Runs are paced on the shorter of the two
// (Executor.ackWait).
type jobConsumer struct {
	jetstream.Consumer
	mu      sync.Mutex
	ackWait time.Duration // 0: not known
	shorter chan struct{} // closed, and replaced, when ackWait shortens
}

func newJobConsumer(c jetstream.Consumer) *jobConsumer {
	jc := &jobConsumer{Consumer: c, shorter: make(chan struct{})}
	if info := c.CachedInfo(); info != nil {
		jc.ackWait = info.Config.AckWait
	}
	return jc
}

// setAckWait records the AckWait the consumer has now, and wakes the runs
// paced on a longer one (shortened).
func (c *jobConsumer) setAckWait(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ackWait == 0 || d < c.ackWait {
		close(c.shorter)
		c.shorter = make(chan struct{})
	}
	c.ackWait = d
}

// shortened is closed when the consumer's AckWait shortens (never for a
// nil c).
func (c *jobConsumer) shortened() <-chan struct{} {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shorter
}

// ackWait is the AckWait a run from c is paced on: the shorter of this
// executor's and the one c has in JetStream (this executor's for a nil c,
// or while c's is not known).
func (x *Executor) ackWait(c *jobConsumer) time.Duration {
	d := x.cfg.AckWait
	if c == nil {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ackWait > 0 && c.ackWait < d {
		d = c.ackWait
	}
	return d
}

// manageJobs keeps one durable consumer and a fetch loop per job in
// step with the catalog: created when a job appears, replaced when its
// concurrency changes, created again when it is found deleted, draining
// when the job goes (its queued runs end as failed; the loop stops once
// the consumer holds none). Replacing loops does not
// stop the runs they hold: those finish, and the consumer's MaxAckPending
// keeps counting them against the new limit.
func (x *Executor) manageJobs(ctx context.Context) error {
	select {
	case <-x.cat.Ready():
	case <-ctx.Done():
		return nil
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	x.cat.OnChange(poke)
	// A job whose consumer cannot be made (a consumer of its name NATS
	// will not turn into this one, say) is reported but does not make the
	// executor not ready: every other job still runs here. The shared
	// consumers, retries and callbacks, are required (check "consumer").
	missing := &missingConsumers{}
	x.health.Add(checkJobConsumers, missing.check)
	x.health.NotRequired(checkJobConsumers)
	workers := map[string]*jobWorkers{}
	wentAt := map[string]time.Time{} // job consumers found deleted, when
	var wg sync.WaitGroup
	defer wg.Wait()
	start := func(name string, w *jobWorkers) {
		fctx, stop := context.WithCancel(ctx)
		w.stop = stop
		workers[name] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.fetchLoop(ctx, fctx, w.cons, w.concurrency, func() { w.gone.Store(true); poke() })
		}()
	}
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
			case w.gone.Load() && (w.draining || !ok):
				x.log.Info("deleted job's consumer is gone: its runs are no longer fetched", "job", w.job)
				w.stop()
				delete(workers, name)
				forgetJob(name, w.job)
			case w.gone.Load():
				// Made again below, from the job's configuration, once
				// bus.RecreateDelay has passed.
				x.log.Warn("the job's consumer was deleted: creating it again", "job", w.job, "consumer", name)
				missing.set(name, "was deleted: being created again")
				w.stop()
				delete(workers, name)
				wentAt[name] = time.Now()
				time.AfterFunc(bus.RecreateDelay, poke)
			case w.draining && !ok:
			case w.draining:
				x.log.Info("deleted job is back: fetching its runs again", "job", w.job)
				w.stop()
				delete(workers, name)
			case !ok:
				x.jobGone(ctx, name, w, workers, start)
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
			if at, ok := wentAt[name]; ok {
				if time.Since(at) < bus.RecreateDelay {
					continue
				}
				delete(wentAt, name)
			}
			cons, err := x.ensureConsumer(ctx, j)
			if err != nil {
				x.log.Warn("cannot create job consumer; will retry", "job", name, "err", err)
				missing.set(name, "cannot be created: "+err.Error())
				continue
			}
			missing.set(name, "")
			x.log.Info("fetching runs of job", "job", j.Metadata.Namespace+"/"+j.Metadata.Name, "concurrency", j.Spec.Concurrency)
			countEndsOf(j.Metadata.Namespace + "/" + j.Metadata.Name)
			start(name, &jobWorkers{concurrency: j.Spec.Concurrency, job: j.Metadata.Namespace + "/" + j.Metadata.Name, cons: newJobConsumer(cons)})
		}
		missing.retain(func(name string) bool { return want[name] != nil })
		maps.DeleteFunc(wentAt, func(name string, _ time.Time) bool { return want[name] == nil })
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-lag.C:
			x.reportBacklog(ctx, workers)
			infos := x.listJobConsumers(ctx)
			for name, w := range workers {
				if info := infos[name]; info != nil {
					w.cons.setAckWait(info.Config.AckWait)
				}
			}
			x.endDrained(workers, infos)
			x.drainOrphans(ctx, workers, want, infos, start)
			x.keepConsumersOfWaitingRuns(ctx, want, infos)
			if x.afterJobsPass != nil {
				x.afterJobsPass()
			}
		case <-retry.C:
		}
	}
}

// jobGone handles a job that is no longer in this executor's catalog. The
// catalog drops a record it cannot read (one a newer keys wrote, during a
// rolling upgrade) as if the job had been deleted: the bucket's leader
// tells the two apart before the job's queued runs are failed as "no
// longer exists". A job that exists but cannot be read here is left to
// the executors that can read it; one that was deleted is drained.
func (x *Executor) jobGone(ctx context.Context, name string, w *jobWorkers, workers map[string]*jobWorkers, start func(string, *jobWorkers)) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	found, readable, err := x.jobRecord(rctx, w.job)
	cancel()
	switch {
	case err != nil:
		// Asked again at the next pass; runs fetched meanwhile are
		// handed back (handleRun asks the same).
		x.log.Warn("cannot tell whether a job gone from the configuration was deleted; asking again", "job", w.job, "err", err)
	case found && readable:
		// Put again since the catalog dropped it: it is about to be
		// back.
	case found:
		x.log.Error("the job's record cannot be read by this executor (a newer release's?): its runs are left to executors that can read it: upgrade the executors", "job", w.job)
		w.stop()
		delete(workers, name)
		forgetJob(name, w.job)
	default:
		x.log.Info("job deleted: its queued runs are ended as failed", "job", w.job)
		w.stop()
		start(name, &jobWorkers{concurrency: w.concurrency, job: w.job, cons: w.cons, draining: true})
	}
}

// jobRecord reads the record of job (namespace/name) from the jobs
// bucket's leader, for a job this executor's catalog does not hold: found
// is false when it was deleted; a record that does not decode (readable
// false) is one this release cannot read, which the catalog drops.
func (x *Executor) jobRecord(ctx context.Context, job string) (found, readable bool, err error) {
	ns, name, _ := strings.Cut(job, "/")
	var j resource.Job
	return catalog.ReadLeader(ctx, x.js.Conn(), bus.BucketJobs, bus.ConfigKey(ns, name), &j)
}

// jobConsumerConfig is the configuration of the durable consumer of job
// ns/name. Its MaxAckPending is the job's concurrency: JetStream will not
// hand out more unacked runs than that, whatever the number of executors.
func (x *Executor) jobConsumerConfig(ns, name string, concurrency int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       bus.JobConsumer(ns, name),
		Description:   "Runs of job " + ns + "/" + name,
		FilterSubject: bus.RunSubject(ns, name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       x.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: concurrency,
	}
}

// ensureConsumer creates or updates the job's durable consumer.
//
// It never lowers the AckWait of a consumer that exists: it writes the
// longer of this executor's and the consumer's. A shorter AckWait written
// while other executors have runs in flight, paced on the longer one,
// makes NATS hand those runs out again at once (before those executors
// read the consumer again, every 5 s): a newer executor started with a
// shorter HOOKRUN_EXECUTOR_ACK_WAIT would run them a second time. Each
// executor paces its runs on the shorter of its own and the consumer's
// (Executor.ackWait), so a longer one in the consumer costs nothing but a
// later redelivery when an executor dies. Shortening a consumer's AckWait
// is therefore an operator's edit of the consumer (`nats consumer edit`),
// once every executor runs with the shorter one.
func (x *Executor) ensureConsumer(ctx context.Context, j *resource.Job) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := x.jobConsumerConfig(j.Metadata.Namespace, j.Metadata.Name, j.Spec.Concurrency)
	had, err := x.js.Consumer(cctx, bus.StreamRuns, cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		// Created only if no other executor made it meanwhile (with
		// its own AckWait, maybe longer): then it is updated below.
		cons, err := x.js.CreateConsumer(cctx, bus.StreamRuns, cfg)
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return cons, err
		}
		if had, err = x.js.Consumer(cctx, bus.StreamRuns, cfg.Durable); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	cfg.AckWait = max(cfg.AckWait, had.CachedInfo().Config.AckWait)
	cons, err := x.js.UpdateConsumer(cctx, bus.StreamRuns, cfg)
	if _, ok := bus.DropBrokenConsumer(cctx, x.js, bus.StreamRuns, cfg.Durable, err); ok {
		// RUNS is a work queue: the runs the broken consumer had not
		// acked are still there, and the one made afresh gets them. The
		// delete is answered once the files are gone.
		x.log.Warn("a job consumer's files were lost on the server: deleted it, creating it again", "job", j.Metadata.Namespace+"/"+j.Metadata.Name)
		return x.js.CreateConsumer(cctx, bus.StreamRuns, cfg)
	}
	return cons, err
}

// keepJobConsumer creates the consumer of a job this executor does not
// know (deleted, most likely) if it has none: a run request stored on a
// subject no consumer reads would wait there for ever, while one in a
// consumer is drained (drainOrphans). A consumer already there is left as
// it is.
func (x *Executor) keepJobConsumer(ctx context.Context, ns, name string) error {
	_, err := x.js.CreateConsumer(ctx, bus.StreamRuns, x.jobConsumerConfig(ns, name, 1))
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return nil
	}
	return err
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
// run. The loop stops fetching when fetchCtx ends, or when it finds its
// consumer deleted (then it calls gone), and returns once the runs it
// started have ended; those live under ctx, the executor's, whose end
// starts the shutdown grace.
func (x *Executor) fetchLoop(ctx, fetchCtx context.Context, cons *jobConsumer, concurrency int, gone func()) {
	var runs sync.WaitGroup
	defer runs.Wait()
	run := func(m jetstream.Msg) { // m holds a slot, given back when it is done
		runs.Add(1)
		x.goRun(func() {
			defer runs.Done()
			defer x.releaseSlots(1)
			x.handleFrom(ctx, cons, m)
		})
	}
	pause := func() {
		select {
		case <-fetchCtx.Done():
		case <-time.After(250 * time.Millisecond):
		}
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
			pause()
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
		// A pull that ends in an error (not a time-out, not "no
		// messages") and brought nothing: the consumer may be gone. A
		// consumer deleted is answered "no responders" at once, and
		// pulling it again would spin for ever.
		if err := batch.Error(); err != nil && got == 0 && fetchCtx.Err() == nil {
			if consumerGone(fetchCtx, cons, err) {
				gone()
				return
			}
			pause()
		}
	}
}

// consumerGone reports whether cons no longer exists: the server said it
// was deleted (err), or does not know it (a pull to a consumer deleted is
// answered "no responders", which a consumer in a leader election may
// answer too).
func consumerGone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) {
		return true
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = cons.Info(ictx)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// listJobConsumers reads every consumer on RUNS, one listing for all
// (empty when it cannot). A consumer missing from it may exist all the
// same (a clustered listing leaves out those whose leader did not answer
// in time): only those listed are acted on.
func (x *Executor) listJobConsumers(ctx context.Context) map[string]*jetstream.ConsumerInfo {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	infos := map[string]*jetstream.ConsumerInfo{}
	s, err := x.js.Stream(lctx, bus.StreamRuns)
	if err != nil {
		return infos
	}
	l := s.ListConsumers(lctx)
	for info := range l.Info() {
		infos[info.Name] = info
	}
	return infos
}

// drainOrphans starts draining the consumers of jobs that no longer exist
// and that no loop here fetches, when they hold runs: the job was deleted
// while no executor watched (or this one restarted mid-drain), or a run
// request came after the drain (a retry falling due, a dispatcher
// resuming a delivery, which publishes its run request whatever the job
// is now). Consumer names are job_<ns>_<job>, and names hold no "_". Each
// consumer has its own time-out: one that NATS is slow to answer for does
// not starve those after it.
//
// A drained consumer is not deleted: a run request stored on its subject
// later would wait in RUNS for ever, read by no consumer.
func (x *Executor) drainOrphans(ctx context.Context, workers map[string]*jobWorkers, want map[string]*resource.Job, infos map[string]*jetstream.ConsumerInfo, start func(string, *jobWorkers)) {
	for name, info := range infos {
		rest, ok := strings.CutPrefix(name, "job_")
		ns, job, ok2 := strings.Cut(rest, "_")
		if !ok || !ok2 || workers[name] != nil || want[name] != nil {
			continue
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			continue
		}
		if _, found := x.cat.Job(ns, job); found {
			continue // created since want was read: the next pass fetches it
		}
		func() {
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			// This executor's catalog may lag behind the executor that
			// made the consumer of a job just created, or not read its
			// record (a newer release's): ask the bucket's leader before
			// failing the job's runs as "no longer exists".
			if found, _, err := x.jobRecord(octx, ns+"/"+job); found || err != nil {
				return
			}
			cons, err := x.js.Consumer(octx, bus.StreamRuns, name)
			if err != nil {
				return
			}
			x.log.Info("draining the runs of a deleted job", "job", ns+"/"+job, "queued", info.NumPending)
			start(name, &jobWorkers{concurrency: 1, job: ns + "/" + job, cons: newJobConsumer(cons), draining: true})
		}()
	}
}

// keepConsumersOfWaitingRuns gives a consumer to the run requests waiting
// in RUNS on the subject of a job that no longer exists and never had one:
// the job was created, a delivery queued its run, and the job was deleted
// before any executor made its consumer (none running, or each one's
// catalog behind). RUNS is a work queue with no age limit: without a
// consumer, the run would stay queued for ever. Made, the consumer is
// drained by the next pass (drainOrphans), which fails the runs as of a
// job that no longer exists. A job the bucket's leader still holds is left
// to the pass that creates its consumer from the catalog.
func (x *Executor) keepConsumersOfWaitingRuns(ctx context.Context, want map[string]*resource.Job, infos map[string]*jetstream.ConsumerInfo) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := x.js.Stream(lctx, bus.StreamRuns)
	if err != nil {
		return
	}
	info, err := s.Info(lctx, jetstream.WithSubjectFilter(bus.RunSubject("*", "*")))
	if err != nil {
		return
	}
	for subject, n := range info.State.Subjects {
		ns, job, ok := bus.ParseRunSubject(subject)
		name := bus.JobConsumer(ns, job)
		if !ok || n == 0 || infos[name] != nil || want[name] != nil {
			continue
		}
		if _, found := x.cat.Job(ns, job); found {
			continue
		}
		if found, _, err := x.jobRecord(lctx, ns+"/"+job); found || err != nil {
			continue
		}
		if err := x.keepJobConsumer(lctx, ns, job); err != nil {
			x.log.Warn("cannot create the consumer of a deleted job's waiting runs; will retry", "job", ns+"/"+job, "err", err)
			continue
		}
		x.log.Info("runs of a deleted job were waiting with no consumer: made one, to end them", "job", ns+"/"+job, "queued", n)
	}
}

// endDrained stops the loops of deleted jobs whose consumer holds no run
// any more (none waiting, none in hand), and forgets their series. The
// consumer stays (see drainOrphans).
func (x *Executor) endDrained(workers map[string]*jobWorkers, infos map[string]*jetstream.ConsumerInfo) {
	for name, w := range workers {
		info := infos[name]
		if !w.draining || info == nil || info.NumPending > 0 || info.NumAckPending > 0 {
			continue
		}
		x.log.Info("deleted job drained: its runs are no longer fetched", "job", w.job)
		w.stop()
		delete(workers, name)
		forgetJob(name, w.job)
	}
}

// checkJobConsumers is the readiness check naming the job consumers
// missing: reported (/readyz's "degraded"), not required.
const checkJobConsumers = "job consumers"

// missingConsumers are the durable consumers this executor pulls from and
// does not have: not created yet, or found deleted and being created
// again. Readiness reports them (check "consumer"; the jobs' own, check
// checkJobConsumers), as the dispatcher reports its own.
type missingConsumers struct {
	mu  sync.Mutex
	why map[string]string // consumer -> why it is missing
}

// set records why consumer name is missing; "" when it is not.
func (m *missingConsumers) set(name, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if why == "" {
		delete(m.why, name)
		return
	}
	if m.why == nil {
		m.why = map[string]string{}
	}
	m.why[name] = why
}

// retain forgets the consumers keep says are no longer needed.
func (m *missingConsumers) retain(keep func(name string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.why {
		if !keep(name) {
			delete(m.why, name)
		}
	}
}

func (m *missingConsumers) check(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.why) == 0 {
		return nil
	}
	names := make([]string, 0, len(m.why))
	for name := range m.why {
		names = append(names, name)
	}
	slices.Sort(names)
	err := fmt.Errorf("%s %s: its messages are not consumed", names[0], m.why[names[0]])
	if len(names) > 1 {
		err = fmt.Errorf("%w (and %d other consumers)", err, len(names)-1)
	}
	return err
}

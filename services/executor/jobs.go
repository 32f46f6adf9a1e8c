package executor

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/service"
)

// jobWorkers is the set of fetch loops of one job, replaced when the job's
// concurrency changes.
type jobWorkers struct {
	concurrency int
	stop        context.CancelFunc // stops fetching; runs in hand go on
}

// manageJobs keeps one durable consumer and a set of fetch loops per job in
// step with the catalog: created when a job appears, replaced when its
// concurrency changes, stopped when it goes. Replacing loops does not stop
// the runs they hold: those finish, and the consumer's MaxAckPending keeps
// counting them against the new limit.
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
			if j, ok := want[name]; !ok || j.Spec.Concurrency != w.concurrency {
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
			fctx, stop := context.WithCancel(ctx)
			workers[name] = &jobWorkers{concurrency: j.Spec.Concurrency, stop: stop}
			for i := 0; i < j.Spec.Concurrency && i < x.cfg.MaxConcurrent; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); x.fetchLoop(ctx, fctx, cons) }()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-lag.C:
			for name := range workers {
				service.ReportConsumerOnce(ctx, x.js, bus.StreamRuns, name)
			}
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

// fetchLoop takes one run at a time while this instance has a free slot
// (the per-instance cap). It stops fetching when fetchCtx ends; the run it
// holds lives under ctx, the executor's, whose end starts the shutdown
// grace.
func (x *Executor) fetchLoop(ctx, fetchCtx context.Context, cons jetstream.Consumer) {
	for fetchCtx.Err() == nil {
		select {
		case x.slots <- struct{}{}:
		case <-fetchCtx.Done():
			return
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			<-x.slots
			select {
			case <-fetchCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		for m := range batch.Messages() {
			if fetchCtx.Err() != nil {
				_ = m.Nak() // fetched as we stopped: hand it back at once
				continue
			}
			x.handle(ctx, m)
		}
		<-x.slots
	}
}

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

// jobWorkers is the set of fetch loops of one job, restarted when the job's
// concurrency changes.
type jobWorkers struct {
	concurrency int
	cancel      context.CancelFunc
	done        chan struct{}
}

// manageJobs keeps one durable consumer and a set of workers per job in
// step with the catalog: created when a job appears, updated when its
// concurrency changes, stopped when it goes.
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
	lag := time.NewTicker(5 * time.Second)
	defer lag.Stop()
	for {
		want := map[string]*resource.Job{}
		for _, j := range x.cat.Jobs() {
			want[bus.JobConsumer(j.Metadata.Namespace, j.Metadata.Name)] = j
		}
		for name, w := range workers {
			if j, ok := want[name]; !ok || j.Spec.Concurrency != w.concurrency {
				w.cancel()
				<-w.done
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
			wctx, cancel := context.WithCancel(ctx)
			w := &jobWorkers{concurrency: j.Spec.Concurrency, cancel: cancel, done: make(chan struct{})}
			workers[name] = w
			var jwg sync.WaitGroup
			for i := 0; i < j.Spec.Concurrency && i < x.cfg.MaxConcurrent; i++ {
				jwg.Add(1)
				go func() { defer jwg.Done(); x.fetchLoop(wctx, cons) }()
			}
			wg.Add(1)
			go func() { defer wg.Done(); jwg.Wait(); close(w.done) }()
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-changed:
		case <-lag.C:
			for name := range workers {
				service.ReportConsumerOnce(ctx, x.js, bus.StreamRuns, name)
			}
		case <-time.After(10 * time.Second): // retry consumers that failed to create
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

// fetchLoop takes one run at a time while this instance has a free slot.
func (x *Executor) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		select {
		case x.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			<-x.slots
			if ctx.Err() == nil {
				time.Sleep(250 * time.Millisecond)
			}
			continue
		}
		got := false
		for m := range batch.Messages() {
			got = true
			x.handle(ctx, m)
		}
		<-x.slots
		_ = got
	}
}

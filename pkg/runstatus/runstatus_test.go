package runstatus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

func TestRunstatus_LastEventIsCurrentAndHistoryKeepsAll(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	if _, err := runstatus.Get(ctx, js, "run_missing"); !errors.Is(err, runstatus.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v, want ErrNotFound", err)
	}
	t0 := time.Now().UTC()
	for i, st := range []string{message.StatusQueued, message.StatusRunning, message.StatusSucceeded} {
		q := t0.Add(time.Duration(i) * time.Millisecond)
		r := &message.Run{ID: "run_a", Namespace: "default", Webhook: "w", Job: "j", Status: st, QueuedAt: &q}
		if err := runstatus.Publish(ctx, js, r); err != nil {
			t.Fatal(err)
		}
	}
	later := t0.Add(time.Second)
	if err := runstatus.Publish(ctx, js, &message.Run{ID: "run_b", Namespace: "default", Webhook: "w", Job: "k", Status: message.StatusFailed, QueuedAt: &later}); err != nil {
		t.Fatal(err)
	}
	if err := runstatus.Publish(ctx, js, &message.Run{Kind: message.KindDelivery, ID: "dlv_a", Namespace: "default", Webhook: "w", Status: message.DeliveryDispatched}); err != nil {
		t.Fatal(err)
	}

	r, err := runstatus.Get(ctx, js, "run_a")
	if err != nil || r.Status != message.StatusSucceeded {
		t.Fatalf("Get = %+v, %v; want succeeded", r, err)
	}
	h, err := runstatus.History(ctx, js, "default", "run_a")
	if err != nil || len(h) != 3 || h[0].Status != message.StatusQueued || h[2].Status != message.StatusSucceeded {
		t.Fatalf("History = %+v, %v", h, err)
	}
	runs, err := runstatus.List(ctx, js, runstatus.Filter{})
	if err != nil || len(runs) != 2 || runs[0].ID != "run_b" || runs[1].ID != "run_a" {
		t.Fatalf("List = %+v, %v; want run_b then run_a, no delivery records", runs, err)
	}
	runs, err = runstatus.List(ctx, js, runstatus.Filter{Job: "j", Status: message.StatusSucceeded})
	if err != nil || len(runs) != 1 || runs[0].ID != "run_a" {
		t.Fatalf("filtered List = %+v, %v", runs, err)
	}

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ch, err := runstatus.Watch(wctx, js, "default", "run_a", "")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for r := range ch {
		seen = append(seen, r.Status)
	}
	if len(seen) != 3 || seen[2] != message.StatusSucceeded {
		t.Fatalf("Watch saw %v, want the three events ending at succeeded", seen)
	}
}

// TestRunstatus_GetSeesTheLatestStatusThroughAnyNode: on a STATUS stream
// with three replicas, a status read is the latest stored, through a
// connection to any node — also to a node that was down while the status
// changed and is catching up. (The executor decides from this read whether
// a redelivered run already ended; a stale "running" ran it twice.)
func TestRunstatus_GetSeesTheLatestStatusThroughAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testenv.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a loaded machine (make test runs packages side by side) elects leaders slowly
	defer cancel()
	connect := func(i int) jetstream.JetStream {
		nc, err := nats.Connect(c.Nodes[i].ClientURL(), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return js
	}
	js := connect(0)
	if err := bus.EnsureRetry(ctx, js, bus.Options{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	publish := func(id, st string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			return runstatus.Publish(ctx, js, &message.Run{ID: id, Namespace: "default", Job: "j", Status: st, QueuedAt: &now})
		})
	}
	const n = 100
	start := time.Now()
	for i := range n {
		publish(fmt.Sprintf("run_%d", i), message.StatusRunning)
	}
	t.Logf("%d statuses stored on three nodes in %s", n, time.Since(start))
	c.Stop(2)
	start = time.Now()
	for i := range n {
		publish(fmt.Sprintf("run_%d", i), message.StatusSucceeded)
	}
	t.Logf("%d more with node 3 down in %s", n, time.Since(start))
	c.Start(2)
	back := connect(2)
	for i := range n {
		id := fmt.Sprintf("run_%d", i)
		var got *message.Run
		testenv.Eventually(t, time.Minute, func() error {
			// Each try bounded: a request sent while the node is still
			// joining may get no answer at all, and would otherwise wait
			// out the whole test's context (a loaded machine: make test).
			gctx, gcancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer gcancel()
			var err error
			got, err = runstatus.Get(gctx, back, id)
			return err // no leader yet, or not connected yet
		})
		if got.Status != message.StatusSucceeded {
			t.Fatalf("read %d through the node that was down: %s, want succeeded", i, got.Status)
		}
	}
}

// A status record that cannot be decoded (a newer schema, a corrupt record)
// is told apart from a failed read: asking again soon gives the same answer.
func TestRunstatus_UndecodableRecordIsErrUndecodable(t *testing.T) {
	t.Parallel()
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	m := nats.NewMsg(bus.StatusSubject("default", "run_garbled"))
	m.Data = []byte(`{"schema":"hookrun.run.v9","status":`)
	m.Header.Set(bus.HeaderSchema, "hookrun.run.v9")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := runstatus.Get(ctx, js, "run_garbled"); !errors.Is(err, runstatus.ErrUndecodable) {
		t.Fatalf("Get of a garbled record: %v, want ErrUndecodable", err)
	}
	if _, err := runstatus.Get(ctx, js, "run_absent"); errors.Is(err, runstatus.ErrUndecodable) {
		t.Fatal("a missing record is not an undecodable one")
	}
}

// A run id is the event's: an event delivered again after its dedup window
// runs again under the same id, after the first run's final status. A
// watch from the second delivery skips the first run's statuses; one from
// the first goes on past the first run's end when the second's statuses
// are already stored; both end at the second run's end.
func TestRunstatus_WatchFollowsTheLastRunOfAReusedID(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	pub := func(delivery, st string) {
		t.Helper()
		r := &message.Run{ID: "run_r", DeliveryID: delivery, Namespace: "default", Webhook: "w", Job: "j", Status: st}
		if err := runstatus.Publish(ctx, js, r); err != nil {
			t.Fatal(err)
		}
	}
	pub("dlv_1", message.StatusQueued)
	pub("dlv_1", message.StatusSucceeded)
	pub("dlv_2", message.StatusQueued)
	pub("dlv_2", message.StatusRunning)

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	watch := func(from string, want []string) <-chan message.Run {
		t.Helper()
		ch, err := runstatus.Watch(wctx, js, "default", "run_r", from)
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for len(seen) < len(want) {
			r, ok := <-ch
			if !ok {
				t.Fatalf("watch from %q closed after %v, want %v", from, seen, want)
			}
			seen = append(seen, r.DeliveryID+":"+r.Status)
		}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("watch from %q: %v, want %v", from, seen, want)
		}
		return ch
	}
	second := watch("dlv_2", []string{"dlv_2:queued", "dlv_2:running"})
	all := watch("", []string{"dlv_1:queued", "dlv_1:succeeded", "dlv_2:queued", "dlv_2:running"})
	for _, ch := range []<-chan message.Run{second, all} {
		select {
		case r, ok := <-ch:
			t.Fatalf("Watch sent %+v (open %v) while the second run is running", r, ok)
		case <-time.After(200 * time.Millisecond):
		}
	}
	pub("dlv_2", message.StatusFailed)
	for _, ch := range []<-chan message.Run{second, all} {
		r, ok := <-ch
		if !ok || r.DeliveryID != "dlv_2" || r.Status != message.StatusFailed {
			t.Fatalf("after the second run's end: %+v, %v", r, ok)
		}
		if _, ok := <-ch; ok {
			t.Fatal("Watch went on after the last run's final status")
		}
	}
}

// A final status followed only by records this release cannot read (a
// newer release's, during a rolling upgrade) still ends the watch.
func TestRunstatus_WatchEndsAtAFinalStatusFollowedByUnreadableRecords(t *testing.T) {
	t.Parallel()
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	if err := runstatus.Publish(ctx, js, &message.Run{ID: "run_u", DeliveryID: "dlv_u", Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(bus.StatusSubject("default", "run_u"))
	m.Data = []byte(`{"schema":"hookrun.run.v9","status":`)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ch, err := runstatus.Watch(wctx, js, "default", "run_u", "")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for r := range ch {
		seen = append(seen, r.Status)
	}
	if wctx.Err() != nil || len(seen) != 1 || seen[0] != message.StatusSucceeded {
		t.Fatalf("Watch saw %v and ended by %v; want succeeded, then the end", seen, wctx.Err())
	}
}

// A watch leaves no consumer on the server once it ends, whether it ended
// at a final status or because its client went away: an EventSource that
// reconnects to a finished run every few seconds left one per request for
// five minutes.
func TestRunstatus_WatchLeavesNoConsumerBehind(t *testing.T) {
	t.Parallel()
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	for _, r := range []*message.Run{
		{ID: "run_done", DeliveryID: "dlv_1", Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusSucceeded},
		{ID: "run_going", DeliveryID: "dlv_2", Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusRunning},
	} {
		if err := runstatus.Publish(ctx, js, r); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		ch, err := runstatus.Watch(ctx, js, "default", "run_done", "")
		if err != nil {
			t.Fatal(err)
		}
		for range ch {
		}
		wctx, cancel := context.WithCancel(ctx)
		ch, err = runstatus.Watch(wctx, js, "default", "run_going", "")
		if err != nil {
			t.Fatal(err)
		}
		<-ch // running
		cancel()
		for range ch {
		}
	}
	noConsumersLeft(t, js, 3*time.Second, "after 10 watches ended")
}

// List gives each run once, in its current state, however many pages the
// stream's last events take (a page is 500): past the first page it once
// gave every event stored after that page, earlier statuses too.
func TestRunstatus_ListGivesEachRunOnceInItsCurrentStatePastTheFirstPage(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	const runs = 700
	t0 := time.Now().UTC()
	current := func(i int) string { // even runs have ended, odd ones run
		if i%2 == 0 {
			return message.StatusSucceeded
		}
		return message.StatusRunning
	}
	var futs []jetstream.PubAckFuture
	for i := range runs {
		q := t0.Add(time.Duration(i) * time.Millisecond)
		id := fmt.Sprintf("run_%04d", i)
		sts := []string{message.StatusQueued, message.StatusRunning}
		if current(i) != message.StatusRunning {
			sts = append(sts, current(i))
		}
		for _, st := range sts {
			futs = append(futs, storeAsync(t, js, message.Run{ID: id, Namespace: "default", Webhook: "w", Job: "j", Status: st, QueuedAt: &q}))
		}
	}
	waitAcks(t, futs)
	all, err := runstatus.List(ctx, js, runstatus.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range all {
		var i int
		fmt.Sscanf(r.ID, "run_%d", &i)
		if seen[r.ID] || r.Status != current(i) {
			t.Fatalf("List gave %s (%s) again or not in its current state (%d runs listed)", r.ID, r.Status, len(all))
		}
		seen[r.ID] = true
	}
	if len(all) != runs || all[0].ID != fmt.Sprintf("run_%04d", runs-1) {
		t.Fatalf("List gave %d runs, the first %s; want %d, newest first", len(all), all[0].ID, runs)
	}
	running, err := runstatus.List(ctx, js, runstatus.Filter{Status: message.StatusRunning, Limit: 1000})
	if err != nil || len(running) != runs/2 {
		t.Fatalf("List of running runs = %d runs, %v; want %d", len(running), err, runs/2)
	}
	// A List cut short by its context leaves no consumer behind either: it
	// deletes it, or, when the server handled that delete before the create
	// it had given up on, the server removes it once unused for 10s.
	for i := range 40 { // deadlines across the consumer's creation
		d := time.Duration(i+1) * 500 * time.Microsecond
		short, cancel := context.WithTimeout(ctx, d)
		_, _ = runstatus.List(short, js, runstatus.Filter{Limit: 1000})
		cancel()
	}
	noConsumersLeft(t, js, 20*time.Second, "after List")
}

// Pages follow each other from the previous page's Next: every run once,
// newest first (runs queued at the same time by id), and a run whose status
// changes between two pages keeps its place.
func TestRunstatus_ListPagesFollowTheCursor(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	var want []string
	for i := 24; i >= 0; i-- {
		q := t0.Add(time.Duration(i/2) * time.Second) // two runs per queue time
		id := fmt.Sprintf("run_%02d", i)
		want = append(want, id)
		if err := runstatus.Publish(ctx, js, &message.Run{ID: id, Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusQueued, QueuedAt: &q}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var after *runstatus.Cursor
	for page := 0; ; page++ {
		p, err := runstatus.ListPage(ctx, js, runstatus.Filter{Limit: 10, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Runs {
			got = append(got, r.ID)
		}
		if page == 0 {
			// Between pages, a run of the first page and one of the next
			// change status: neither moves.
			for _, id := range []string{"run_20", "run_10"} {
				r, err := runstatus.Get(ctx, js, id)
				if err != nil {
					t.Fatal(err)
				}
				r.Status = message.StatusRunning
				if err := runstatus.Publish(ctx, js, r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if p.Next == nil {
			break
		}
		c, err := runstatus.ParseCursor(p.Next.String())
		if err != nil || !c.When.Equal(p.Next.When) || c.ID != p.Next.ID {
			t.Fatalf("cursor %q read back as %+v, %v; want %+v", p.Next.String(), c, err, *p.Next)
		}
		after = &c
		if page > 3 {
			t.Fatal("more pages than runs")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("runs over the pages:\n %v\nwant\n %v", got, want)
	}
	for _, bad := range []string{"", "x", "bm90LWEtY3Vyc29y"} {
		if _, err := runstatus.ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

// A STATUS stream of many events is read from its end: a page of recent
// runs reads the events of the last moments, not the stream, and every
// page, through the cursor and with filters, is the page a read of the
// whole stream gives. A dispatcher whose clock runs ahead of the NATS
// server's (queue times later than the events' storing) widens the window
// rather than hide a run queued before it.
func TestRunstatus_ListReadsRecentEventsFirstAndGivesTheSamePages(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	publish := func(id string, q time.Time, statuses ...string) {
		t.Helper()
		var futs []jetstream.PubAckFuture
		for _, st := range statuses {
			futs = append(futs, storeAsync(t, js, message.Run{ID: id, Namespace: "default", Webhook: "w", Job: "j", Status: st, QueuedAt: &q}))
		}
		waitAcks(t, futs)
	}
	// pages lists every page of f, each run as id:status, and how many
	// events the first page read.
	pages := func(f runstatus.Filter) (all []string, firstRead uint64) {
		t.Helper()
		for page := 0; ; page++ {
			before := runstatus.EventsRead()
			p, err := runstatus.ListPage(ctx, js, f)
			if err != nil {
				t.Fatal(err)
			}
			if page == 0 {
				firstRead = runstatus.EventsRead() - before
			}
			for _, r := range p.Runs {
				all = append(all, r.ID+":"+r.Status)
			}
			all = append(all, "|")
			if p.Next == nil {
				return all, firstRead
			}
			f.After = p.Next
			if page > 100 {
				t.Fatal("more pages than runs")
			}
		}
	}
	compare := func(f runstatus.Filter) (firstRead, wholeRead uint64) {
		t.Helper()
		whole, wholeRead := pages(f)
		restore := runstatus.SetWindow(100, 50)
		defer restore()
		defer runstatus.SetClockMargin(100 * time.Millisecond)()
		recent, firstRead := pages(f)
		if !slices.Equal(recent, whole) {
			i := 0
			for i < min(len(recent), len(whole)) && recent[i] == whole[i] {
				i++
			}
			t.Fatalf("pages of %+v read from the end differ from the pages read whole at item %d (| ends a page):\n %v\nwant\n %v", f, i, recent[i:min(i+12, len(recent))], whole[i:min(i+12, len(whole))])
		}
		return firstRead, wholeRead
	}

	t0 := time.Now().UTC()
	for i := range 300 {
		end := message.StatusSucceeded
		if i%3 == 0 {
			end = message.StatusFailed
		}
		publish(fmt.Sprintf("run_a%03d", i), t0.Add(time.Duration(i)*time.Millisecond), message.StatusQueued, message.StatusRunning, end)
	}
	time.Sleep(4 * time.Second)
	t1 := time.Now().UTC()
	for i := range 40 {
		sts := []string{message.StatusQueued, message.StatusRunning}
		if i%2 == 0 {
			sts = append(sts, message.StatusSucceeded)
		}
		publish(fmt.Sprintf("run_b%03d", i), t1.Add(time.Duration(i)*time.Millisecond), sts...)
	}
	if n, _ := compare(runstatus.Filter{Limit: 10}); n == 0 || n > 200 {
		t.Fatalf("the first page of 10 read %d events of a stream of 1000; want those of the last runs only", n)
	}
	// Filter.WholeScan gates only a read of the whole stream: a first page
	// the recent events fill does not wait for it; a filter no recent run
	// matches reads the whole stream through it and releases it after; a
	// gate's error is the list's.
	func() {
		defer runstatus.SetWindow(100, 50)()
		defer runstatus.SetClockMargin(100 * time.Millisecond)()
		var asked, released int
		gate := func(context.Context) (func(), error) {
			asked++
			return func() { released++ }, nil
		}
		if p, err := runstatus.ListPage(ctx, js, runstatus.Filter{Limit: 10, WholeScan: gate}); err != nil || len(p.Runs) != 10 || asked != 0 {
			t.Fatalf("a first page of recent runs: %d runs, %v; asked the gate %d times, want none", len(p.Runs), err, asked)
		}
		if p, err := runstatus.ListPage(ctx, js, runstatus.Filter{Limit: 10, Webhook: "none", WholeScan: gate}); err != nil || len(p.Runs) != 0 || asked != 1 || released != 1 {
			t.Fatalf("a filter no run matches: %d runs, %v; asked the gate %d times and released it %d times, want 1 and 1", len(p.Runs), err, asked, released)
		}
		busy := errors.New("busy")
		if _, err := runstatus.ListPage(ctx, js, runstatus.Filter{Limit: 10, Webhook: "none", WholeScan: func(context.Context) (func(), error) { return nil, busy }}); !errors.Is(err, busy) {
			t.Fatalf("a gate's error: %v", err)
		}
	}()
	compare(runstatus.Filter{Limit: 7, Status: message.StatusRunning})
	compare(runstatus.Filter{Limit: 50, Status: message.StatusFailed})
	compare(runstatus.Filter{Limit: 1000})
	// A filter no run matches: the windows give way to reading the stream
	// whole before they have read more than a fraction of it again.
	if n, whole := compare(runstatus.Filter{Limit: 10, Webhook: "none"}); n > whole*3/2 {
		t.Fatalf("a filter no run matches read %d events, reading the stream whole %d", n, whole)
	}

	// A dispatcher 30 s ahead queued run_c_ahead, then, after a pause,
	// run_d_ahead: the first is newer than every run but run_d_ahead, and
	// its events are older than the window that holds the second.
	publish("run_c_ahead", time.Now().UTC().Add(30*time.Second), message.StatusQueued)
	time.Sleep(4 * time.Second)
	publish("run_d_ahead", time.Now().UTC().Add(30*time.Second), message.StatusQueued)
	t2 := time.Now().UTC()
	for i := range 20 {
		publish(fmt.Sprintf("run_e%03d", i), t2.Add(time.Duration(i)*time.Millisecond), message.StatusQueued)
	}
	compare(runstatus.Filter{Limit: 10})
	if p, err := runstatus.ListPage(ctx, js, runstatus.Filter{Limit: 2}); err != nil || len(p.Runs) != 2 || p.Runs[0].ID != "run_d_ahead" || p.Runs[1].ID != "run_c_ahead" {
		t.Fatalf("first page = %+v, %v; want run_d_ahead, run_c_ahead", p.Runs, err)
	}
}

// A deep page (a cursor far back) reads from its window to the stream's
// end, where a run's latest event may be: one that would read more than a
// quarter of the stream reads it whole, through Filter.WholeScan (the gate
// that bounds such reads), rather than more than the whole outside it.
func TestRunstatus_DeepPagesReadTheStreamWholeThroughTheGate(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	// Runs at a steady rate, so that the stream's time is its events'.
	for b := range 30 {
		var futs []jetstream.PubAckFuture
		for i := range 20 {
			q := time.Now().UTC()
			for _, st := range []string{message.StatusQueued, message.StatusRunning, message.StatusSucceeded} {
				futs = append(futs, storeAsync(t, js, message.Run{ID: fmt.Sprintf("run_s%02d%02d", b, i), Namespace: "default", Webhook: "w", Job: "j", Status: st, QueuedAt: &q}))
			}
		}
		waitAcks(t, futs)
		time.Sleep(100 * time.Millisecond)
	}
	defer runstatus.SetWindow(100, 50)()
	defer runstatus.SetClockMargin(50 * time.Millisecond)()
	const total = 30 * 20 * 3
	var asked int
	f := runstatus.Filter{Limit: 10, WholeScan: func(context.Context) (func(), error) { asked++; return func() {}, nil }}
	runs := 0
	for page := 0; ; page++ {
		before, askedBefore := runstatus.EventsRead(), asked
		p, err := runstatus.ListPage(ctx, js, f)
		if err != nil {
			t.Fatal(err)
		}
		if read := runstatus.EventsRead() - before; asked == askedBefore && read > total/3 {
			t.Fatalf("page %d read %d events of %d without the gate", page, read, total)
		}
		runs += len(p.Runs)
		if p.Next == nil || page > 100 {
			break
		}
		f.After = p.Next
	}
	if runs != 600 || asked == 0 {
		t.Fatalf("%d runs listed, the gate asked %d times; want 600, and the deep pages through it", runs, asked)
	}
}

// storeAsync stores r as a status event without waiting for its ack (a
// record as the services write it, without runstatus.Publish's checks).
func storeAsync(tb testing.TB, js jetstream.JetStream, r message.Run) jetstream.PubAckFuture {
	tb.Helper()
	r.Schema, r.Kind = message.SchemaRun, message.KindRun
	b, err := json.Marshal(&r)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := js.PublishAsync(bus.StatusSubject(r.Namespace, r.ID), b)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// waitAcks waits for every ack of futs.
func waitAcks(tb testing.TB, futs []jetstream.PubAckFuture) {
	tb.Helper()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatal(err)
		case <-time.After(10 * time.Second):
			tb.Fatal("no ack in 10s")
		}
	}
}

// A status record keeps < > & as they are: each took six bytes (\u003c),
// and a record of a payload and arguments full of them took six times
// their size, past NATS' max_payload where the run request was not.
func TestRunstatus_RecordsKeepHTMLCharactersAsTheyAre(t *testing.T) {
	t.Parallel()
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	lt := strings.Repeat("<&>", 20_000)
	if err := runstatus.Publish(ctx, js, &message.Run{ID: "run_lt", DeliveryID: "dlv_1", Namespace: "default", Webhook: "w", Job: "j",
		Status: message.StatusQueued, WebhookPayload: lt, Args: map[string]string{"a": lt}}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.StatusSubject("default", "run_lt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) > 2*len(lt)+2000 {
		t.Fatalf("a record of %d bytes of payload and argument takes %d bytes stored", 2*len(lt), len(m.Data))
	}
	r, err := runstatus.Get(ctx, js, "run_lt")
	if err != nil || r.WebhookPayload != lt || r.Args["a"] != lt {
		t.Fatalf("record read back changed (%v)", err)
	}
}

// noConsumersLeft waits up to within for STATUS to have no consumer left;
// after says after what, for the failure.
func noConsumersLeft(t *testing.T, js jetstream.JetStream, within time.Duration, after string) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, within, func() error {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Consumers != 0 {
			return fmt.Errorf("%d consumers left on STATUS %s", info.State.Consumers, after)
		}
		return nil
	})
}

// A page read from the whole stream holds only a few runs whole (about
// twice the page), not every run it reads (each with its output and
// payload), and its runs come whole (TestPageOf_ReadsARunNotHeldWholeBySequence
// reads one again that it let go).
func TestRunstatus_ListHoldsFewRunsWholeAndReadsTheRestAgain(t *testing.T) {
	_, js := testenv.StartNATS(t).Connect()
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour)
	out := strings.Repeat("x", 4096)
	var futs []jetstream.PubAckFuture
	for i := 1; i <= 10; i++ { // the latest queued last: each ranks above those read before
		q := base.Add(time.Duration(i) * time.Second)
		futs = append(futs, storeAsync(t, js, message.Run{ID: fmt.Sprintf("run_w%02d", i), Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusRunning, QueuedAt: &q, Output: out}))
	}
	waitAcks(t, futs)
	// The two latest end: their last events no longer match, and the
	// page's runs are ones held whole for a while and then let go.
	for _, i := range []int{9, 10} {
		q := base.Add(time.Duration(i) * time.Second)
		waitAcks(t, []jetstream.PubAckFuture{storeAsync(t, js, message.Run{ID: fmt.Sprintf("run_w%02d", i), Namespace: "default", Webhook: "w", Job: "j", Status: message.StatusSucceeded, QueuedAt: &q})})
	}
	runstatus.ResetWholeRunsPeak()
	p, err := runstatus.ListPage(ctx, js, runstatus.Filter{Status: message.StatusRunning, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Runs {
		got = append(got, r.ID+":"+r.Status+":"+strconv.Itoa(len(r.Output)))
	}
	if strings.Join(got, ",") != "run_w08:running:4096,run_w07:running:4096" || p.Next == nil || p.Next.ID != "run_w07" {
		t.Fatalf("page %v, next %+v; want run_w08 and run_w07 whole, then more", got, p.Next)
	}
	if peak := runstatus.WholeRunsPeak(); peak > 5 {
		t.Fatalf("%d runs held whole for a page of 2", peak)
	}
}

// Package runstatus publishes and reads status events in the STATUS stream.
// The last event on a run's (or delivery's) subject is its current state;
// every event carries the whole record, so one read answers a query.
package runstatus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
)

// ErrNotFound is returned for an id with no status event.
var ErrNotFound = errors.New("no status for this id")

// ErrUndecodable is a stored status this release cannot read (a newer
// schema during a rolling upgrade, or a corrupt record): asking again soon
// gives the same answer.
var ErrUndecodable = errors.New("undecodable status record")

// Publish stores r as the current status of r.ID and waits for the ack.
func Publish(ctx context.Context, js jetstream.JetStream, r *message.Run) error {
	_, err := PublishAfter(ctx, js, r, 0)
	return err
}

// ErrNotLatest: the run's status is no longer the one the writer stored
// last (PublishAfter); another writer has moved the run on.
var ErrNotLatest = errors.New("the run's status has changed since this writer's last")

// PublishAfter stores r as the current status of r.ID only if the last
// status stored for it is at sequence after (0: whatever it is), and
// returns the new status' sequence. ErrNotLatest means another status was
// stored in between. When no status of r.ID is left at all (they aged out
// of STATUS, HOOKRUN_RETENTION, while the writer worked: a run longer than
// the retention), nothing newer can have been stored, and r is stored.
func PublishAfter(ctx context.Context, js jetstream.JetStream, r *message.Run, after uint64) (uint64, error) {
	seq, err := publishAfter(ctx, js, r, after, after > 0)
	if errors.Is(err, ErrNotLatest) {
		if _, gerr := Get(ctx, js, r.ID); errors.Is(gerr, ErrNotFound) {
			return publishAfter(ctx, js, r, 0, false)
		}
	}
	return seq, err
}

// PublishFirst stores r as the first status of r.ID, and returns its
// sequence. ErrNotLatest means a status of r.ID is stored already (a
// dispatcher's, stored meanwhile).
func PublishFirst(ctx context.Context, js jetstream.JetStream, r *message.Run) (uint64, error) {
	return publishAfter(ctx, js, r, 0, true)
}

// publishAfter stores r; expect: only if the last status of r.ID is at
// sequence after (0: there is none).
func publishAfter(ctx context.Context, js jetstream.JetStream, r *message.Run, after uint64, expect bool) (uint64, error) {
	r.Schema = message.SchemaRun
	if r.Kind == "" {
		r.Kind = message.KindRun
	}
	// Without escaping < > & (six bytes each): records are read by
	// programs, and a payload or arguments full of them took six times
	// their size, past NATS' max_payload.
	data, err := message.MarshalNoHTMLEscape(r)
	if err != nil {
		return 0, err
	}
	m := nats.NewMsg(bus.StatusSubject(r.Namespace, r.ID))
	m.Data = data
	m.Header.Set(bus.HeaderSchema, message.SchemaRun)
	m.Header.Set(bus.HeaderStatus, r.Status)
	if expect {
		m.Header.Set(bus.HeaderExpectedLastSubjSeq, strconv.FormatUint(after, 10))
	}
	ack, err := bus.Publish(ctx, js.Conn(), m)
	if err != nil {
		if expect && IsNotLatest(err) {
			return 0, fmt.Errorf("publish status %s of %s: %w", r.Status, r.ID, ErrNotLatest)
		}
		return 0, fmt.Errorf("publish status %s of %s: %w", r.Status, r.ID, err)
	}
	return ack.Sequence, nil
}

// IsNotLatest tells whether err is JetStream refusing a publish whose
// expected last sequence of the subject was not the last.
func IsNotLatest(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Get returns the current status of a run or delivery id in any namespace.
// It reads from the STATUS stream's leader, so a status just stored is seen
// whichever replica is nearest: the executor decides from it whether a
// redelivered run has already ended, the dispatcher how far an earlier
// attempt at a delivery got.
func Get(ctx context.Context, js jetstream.JetStream, id string) (*message.Run, error) {
	r, _, err := GetSeq(ctx, js, id)
	return r, err
}

// GetSeq is Get with the status' sequence, for PublishAfter.
func GetSeq(ctx context.Context, js jetstream.JetStream, id string) (*message.Run, uint64, error) {
	if !bus.SafeToken(id) {
		return nil, 0, ErrNotFound
	}
	data, seq, err := bus.LastBySubjectSeq(ctx, js.Conn(), bus.StreamStatus, bus.StatusByIDFilter(id))
	if errors.Is(err, bus.ErrNoMessage) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("status of %s: %w", id, err)
	}
	r, err := decode(data)
	return r, seq, err
}

// GetDirect is Get by a direct get through a handle of the STATUS stream
// the caller keeps: any replica may answer it, possibly before it has
// applied the latest status. It costs about two thirds of Get (one
// request either way, but no JetStream API round on the server and no
// JSON envelope), so a hot path may try it first when the answer it hopes
// for cannot be stale in a harmful way — a final status stays final — and
// go to Get for anything else.
func GetDirect(ctx context.Context, s jetstream.Stream, id string) (*message.Run, error) {
	r, _, err := GetDirectSeq(ctx, s, id)
	return r, err
}

// GetDirectSeq is GetDirect with the status' sequence.
func GetDirectSeq(ctx context.Context, s jetstream.Stream, id string) (*message.Run, uint64, error) {
	if !bus.SafeToken(id) {
		return nil, 0, ErrNotFound
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.StatusByIDFilter(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	r, err := decode(m.Data)
	return r, m.Sequence, err
}

func decode(data []byte) (*message.Run, error) {
	var r message.Run
	if err := message.Decode(data, message.SchemaRun, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	return &r, nil
}

// Filter selects runs for List.
type Filter struct {
	Namespace string
	Webhook   string
	Job       string
	Status    string
	Limit     int
	// After, when set, starts the page after the run it names: the
	// previous page's Next.
	After *Cursor
	// WholeScan, when set, is called before ListPage reads the whole
	// stream (a small stream, a deep page, a filter few recent runs
	// match): it returns once the read may start, and release ends it; an
	// error is ListPage's. A caller bounds with it how many such reads,
	// each of every run retained, run at once.
	WholeScan func(ctx context.Context) (release func(), err error)
}

// Cursor is a place in List's order (newest first: by queue time, then
// by run id): the last run of a page. It does not move when runs change
// status, as a position or a stream sequence would.
type Cursor struct {
	When time.Time
	ID   string
}

// String encodes c for a URL: opaque to clients.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.When.UnixNano(), 10) + "." + c.ID))
}

// ParseCursor decodes a Cursor's String.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, errors.New("not a cursor this API gave")
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return Cursor{}, errors.New("not a cursor this API gave")
	}
	return Cursor{When: time.Unix(0, n).UTC(), ID: id}, nil
}

// before reports whether run r comes before cursor c in List's order.
func (c Cursor) before(r *message.Run) bool {
	w := when(*r)
	return w.After(c.When) || w.Equal(c.When) && r.ID >= c.ID
}

// Page is a page of List: the runs, and where the next page starts when
// more runs match.
type Page struct {
	Runs []message.Run
	Next *Cursor
}

// listInactive is how long a List consumer that nobody pulls from stays:
// the server removes one whose delete did not reach it (a delete handled
// before a create the client had given up on). Pages come far faster.
const listInactive = 10 * time.Second

// List returns the current state of runs matching f, newest first. See
// ListPage.
func List(ctx context.Context, js jetstream.JetStream, f Filter) ([]message.Run, error) {
	p, err := ListPage(ctx, js, f)
	return p.Runs, err
}

// fullScanBelow is the size of a STATUS stream, in messages, below which
// ListPage reads the last event of every subject at once rather than the
// most recent events first. A variable for tests.
var fullScanBelow uint64 = 20_000

// windowEvents is about how many events ListPage's first window of
// recent events holds, at least. A variable for tests.
var windowEvents = 2000

// clockMargin is how far ahead of the NATS servers' clocks the clocks of
// the services that stamp queue times may be, at least, when ListPage reads
// only recent events (it also measures how far ahead they are in the
// events it reads, and allows for that). A variable for tests.
var clockMargin = time.Second

// eventsRead counts the events ListPage has read, for tests.
var eventsRead atomic.Uint64

// ListPage returns a page of the runs matching f, newest first (by queue
// time, then run id), each in its current state, and where the next page
// starts when more runs match.
//
// A run's current state is the last event of its subject. A STATUS stream
// of fullScanBelow messages or more is read from its end backwards, in
// windows of time growing fourfold (listRecent): a run queued at time q has
// its last event stored at q or later, so the events stored since t tell
// the current state of every run queued since t. Only when the matching
// runs of the window do not fill the page does a wider window follow, and,
// once a window would reach the stream's start, the whole stream is read
// (listAll). So a page of recent runs costs the events of the last moments,
// not of the stream's whole retention.
func ListPage(ctx context.Context, js jetstream.JetStream, f Filter) (Page, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	subj := bus.StatusAll
	if f.Namespace != "" {
		subj = bus.StatusSubject(f.Namespace, ">")
	}
	s, err := js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		return Page{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Page{}, err
	}
	if info.State.Msgs == 0 {
		return Page{Runs: []message.Run{}}, nil
	}
	if info.State.Msgs >= fullScanBelow {
		if p, ok, err := listRecent(ctx, s, subj, f, info.State); err != nil || ok {
			return p, err
		}
	}
	if f.WholeScan != nil {
		release, err := f.WholeScan(ctx)
		if err != nil {
			return Page{}, err
		}
		defer release()
	}
	return listAll(ctx, s, subj, f)
}

// found is a run read for a page, with its event's sequence in STATUS.
type found struct {
	r   message.Run
	seq uint64
}

// matches tells whether run r is one f selects, cursor apart.
func (f Filter) matches(r *message.Run) bool {
	return (f.Webhook == "" || r.Webhook == f.Webhook) && (f.Job == "" || r.Job == f.Job) && (f.Status == "" || r.Status == f.Status)
}

// listAll reads the last event of every subject of subj.
func listAll(ctx context.Context, s jetstream.Stream, subj string, f Filter) (Page, error) {
	// Each subject's last event, once: a safety net keeps the one stored
	// last should a page ever repeat a subject. Of every run, only what
	// ranks it is kept; whole, only the few a page may need.
	last := map[string]ranked{}
	whole := newWholeRuns(f.Limit)
	err := scan(ctx, s, jetstream.ConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	}, 0, func(m jetstream.Msg, seq uint64, _ time.Time) {
		var r message.Run
		if message.Decode(m.Data(), message.SchemaRun, &r) != nil || r.Kind != message.KindRun {
			return
		}
		if prev, ok := last[r.ID]; ok && seq <= prev.seq {
			return
		}
		l := rank(&r, seq, f)
		last[r.ID] = l
		if l.match {
			whole.put(&r, seq)
		}
	})
	if err != nil {
		return Page{}, err
	}
	var match []ranked
	for _, l := range last {
		if l.match {
			match = append(match, l)
		}
	}
	return pageOf(ctx, s, match, whole, f)
}

// listRecent reads the events stored since a moment before the newest
// (before the cursor's time for a later page), over a window of time that
// grows fourfold until the runs it can place fill the page. It answers
// ok=false when the window would reach the stream's first event: then the
// whole stream is better read at once, last event per subject.
//
// A window starting at t holds the last event of every run queued at t or
// later, as stored events never predate the queue time they carry, the
// clocks apart: those runs, and only those, it can place. Runs of earlier
// queue times (their last event may be older than t) come after them all
// in the order. The queue time is the dispatcher's clock, a stored event's
// time the NATS server's, so a run is placed only from t + the most any
// event of the window is stamped ahead of its storing (at least
// clockMargin).
func listRecent(ctx context.Context, s jetstream.Stream, subj string, f Filter, st jetstream.StreamState) (Page, bool, error) {
	span := st.LastTime.Sub(st.FirstTime)
	if span <= 0 {
		return Page{}, false, nil
	}
	// A first window of about 16 events per run of the page (a run has
	// two to four) at the stream's average rate, and clockMargin, in
	// which no run can be placed.
	perSecond := float64(st.Msgs) / span.Seconds()
	events := max(16*(f.Limit+1), windowEvents)
	w := max(time.Duration(float64(events)/perSecond*float64(time.Second)), clockMargin) + clockMargin
	top := st.LastTime
	if f.After != nil && f.After.When.Before(top) {
		top = f.After.When
	}
	// Each wider window reads only what the narrower ones did not (the
	// events before the first one read), into the same map of each
	// subject's latest event, and on to the stream's end: a run's latest
	// event may be after the cursor. A read that would hold more than a
	// quarter of the stream's events (from the window's start to the
	// end, for a deep page far more than the window) gives way to
	// listAll, which the caller's WholeScan gates: a filter that few runs
	// match reads little more than the stream once, and a deep page no
	// more than the stream.
	latest := map[string]ranked{} // by subject; id "": not a run, or unreadable
	whole := newWholeRuns(f.Limit)
	var ahead time.Duration
	var readFrom uint64 // the first sequence read so far; 0: none yet
	for ; ; w *= 4 {
		from := top.Add(-w)
		if !from.After(st.FirstTime) || perSecond*st.LastTime.Sub(from).Seconds() > float64(st.Msgs)/4 {
			return Page{}, false, nil
		}
		end := st.LastSeq
		if readFrom != 0 {
			end = readFrom - 1
		}
		if end == 0 {
			return Page{}, false, nil
		}
		err := scan(ctx, s, jetstream.ConsumerConfig{
			FilterSubjects: []string{subj},
			DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
			OptStartTime:   &from,
		}, end, func(m jetstream.Msg, seq uint64, stored time.Time) {
			if readFrom == 0 || seq < readFrom {
				readFrom = seq
			}
			if prev, ok := latest[m.Subject()]; ok && seq <= prev.seq {
				return
			}
			var r message.Run
			if message.Decode(m.Data(), message.SchemaRun, &r) != nil || r.Kind != message.KindRun {
				latest[m.Subject()] = ranked{seq: seq}
				return
			}
			if d := when(r).Sub(stored); d > ahead {
				ahead = d
			}
			l := rank(&r, seq, f)
			latest[m.Subject()] = l
			if l.match {
				whole.put(&r, seq)
			}
		})
		if err != nil {
			return Page{}, false, err
		}
		placed := from.Add(max(ahead, 0) + clockMargin)
		var match []ranked
		for _, l := range latest {
			if l.match && !l.when.Before(placed) {
				match = append(match, l)
			}
		}
		if len(match) > f.Limit {
			p, err := pageOf(ctx, s, match, whole, f)
			return p, err == nil, err
		}
	}
}

// ranked is what a run is placed in a page by, of its last event read:
// its queue time, id and event's sequence in STATUS; match: a run f
// selects, after its cursor. The run itself is not kept (a whole stream's
// runs, output and payload included, would be held for one page).
type ranked struct {
	id    string
	seq   uint64
	when  time.Time
	match bool
}

func rank(r *message.Run, seq uint64, f Filter) ranked {
	return ranked{id: r.ID, seq: seq, when: when(*r), match: f.matches(r) && (f.After == nil || !f.After.before(r))}
}

// first orders runs as pages list them: the latest queued first, then by
// id, descending.
func first(aWhen time.Time, aID string, bWhen time.Time, bID string) int {
	if c := bWhen.Compare(aWhen); c != 0 {
		return c
	}
	return strings.Compare(bID, aID)
}

// wholeRuns keeps whole some of the runs a page is chosen from: of those
// given, the first (in a page's order) n, after each put at most 2n. A run
// of the page that it let go is read again by its sequence.
type wholeRuns struct {
	n    int
	runs map[string]found
}

func newWholeRuns(n int) *wholeRuns { return &wholeRuns{n: n, runs: map[string]found{}} }

func (w *wholeRuns) put(r *message.Run, seq uint64) {
	w.runs[r.ID] = found{*r, seq}
	if held := int64(len(w.runs)); held > wholeRunsPeak.Load() {
		wholeRunsPeak.Store(held)
	}
	if len(w.runs) <= 2*w.n {
		return
	}
	all := slices.Collect(maps.Values(w.runs))
	slices.SortFunc(all, func(a, b found) int { return first(when(a.r), a.r.ID, when(b.r), b.r.ID) })
	for _, x := range all[w.n:] {
		delete(w.runs, x.r.ID)
	}
}

// wholeRunsPeak is the most runs a wholeRuns has held (tests).
var wholeRunsPeak atomic.Int64

// pageOf sorts the runs that match f (after its cursor) and cuts the page
// f asks for, each run whole: kept by whole at the sequence ranked, else
// read again from s.
func pageOf(ctx context.Context, s jetstream.Stream, match []ranked, whole *wholeRuns, f Filter) (Page, error) {
	slices.SortFunc(match, func(a, b ranked) int { return first(a.when, a.id, b.when, b.id) })
	out := make([]message.Run, 0, min(len(match), f.Limit))
	for _, l := range match[:min(len(match), f.Limit)] {
		if w, ok := whole.runs[l.id]; ok && w.seq == l.seq {
			out = append(out, w.r)
			continue
		}
		m, err := s.GetMsg(ctx, l.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out since it was read
		}
		if err != nil {
			return Page{}, err
		}
		var r message.Run
		if err := message.Decode(m.Data, message.SchemaRun, &r); err != nil {
			continue // read once already: not expected
		}
		out = append(out, r)
	}
	p := Page{Runs: out}
	if len(match) > f.Limit && len(out) > 0 {
		last := out[len(out)-1]
		p.Next = &Cursor{When: when(last), ID: last.ID}
	}
	return p, nil
}

// scan reads the events cfg selects through a consumer of its own (no
// acks, in memory) fetched page by page, until none is pending or, when
// end is not 0, past stream sequence end (so that a busy stream does not
// keep it reading), and deletes the consumer. Not an ordered consumer:
// nats.go makes each fetch after an ordered consumer's first a new consumer
// from the last sequence read (DeliverByStartSequence), whose pages would
// hold every event after it, for DeliverLastPerSubject a run once per
// status, old ones too.
func scan(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig, end uint64, visit func(m jetstream.Msg, seq uint64, stored time.Time)) error {
	// Named here, so that it can be deleted even when its creation timed
	// out on our side after the server made it; the server removes it
	// after listInactive unused if we cannot.
	cfg.Name = ident.Random("list-", 10)
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = listInactive
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, cfg.Name)
	}()
	c, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err // the client went: read no more
		}
		if err := ctx.Err(); err != nil {
			return err // the client went: read no more
		}
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return err
		}
		n := 0
		pending, seq := uint64(0), uint64(0)
		for m := range batch.Messages() {
			n++
			var stored time.Time
			if md, _ := m.Metadata(); md != nil {
				pending, seq, stored = md.NumPending, md.Sequence.Stream, md.Timestamp
			}
			eventsRead.Add(1)
			visit(m, seq, stored)
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			return batch.Error()
		}
		if n == 0 || pending == 0 || end != 0 && seq >= end {
			return nil
		}
	}
}

func when(r message.Run) time.Time {
	if r.QueuedAt != nil {
		return *r.QueuedAt
	}
	return r.WebhookReceivedAt
}

// lastStored tells whether no status of the watched id was stored after m
// when m was delivered.
func lastStored(m jetstream.Msg) bool {
	md, err := m.Metadata()
	return err != nil || md.NumPending == 0
}

// History returns every stored status event of a run or delivery id, oldest
// first. Tests and audits use it to check that a run went through each
// state once.
func History(ctx context.Context, js jetstream.JetStream, ns, id string) ([]message.Run, error) {
	s, err := js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.StatusSubject(ns, id)}})
	if err != nil {
		return nil, err
	}
	var out []message.Run
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return nil, err
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			var r message.Run
			if message.Decode(m.Data(), message.SchemaRun, &r) == nil {
				out = append(out, r)
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			return nil, batch.Error()
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
	}
}

// watchInactive is how long a Watch's consumer that nobody pulls from
// stays on the server.
const watchInactive = 10 * time.Second

// Watch sends the status events of id from the first one of delivery
// fromDelivery ("": from the first stored) until a final one that is the
// last stored when it is read, then closes the channel. A run id is the
// event's, so a later delivery of the event (after its dedup window) runs
// again under the same id, after the earlier run's final status: the
// earlier runs' statuses are skipped, and a watch that reaches a final
// status with a later delivery's already stored goes on to the end of that
// one. It ends early when ctx ends.
func Watch(ctx context.Context, js jetstream.JetStream, ns, id, fromDelivery string) (<-chan message.Run, error) {
	s, err := js.Stream(ctx, bus.StreamStatus)
	if err != nil {
		return nil, err
	}
	// Stopping the ordered consumer's iterator leaves the consumer on the
	// server until its InactiveThreshold (5 minutes by default): an
	// EventSource that reconnects to a finished run every few seconds
	// left hundreds. So it is deleted when the watch ends, and the server
	// removes one whose delete did not reach it after watchInactive.
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.StatusSubject(ns, id)}, InactiveThreshold: watchInactive})
	if err != nil {
		return nil, err
	}
	out := make(chan message.Run, 16)
	go func() {
		// The consumer is deleted after the channel closes: the reader
		// (an SSE stream ending) does not wait for the round trip.
		defer func() {
			if info := c.CachedInfo(); info != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				_ = s.DeleteConsumer(dctx, info.Name)
			}
		}()
		defer close(out)
		it, err := c.Messages()
		if err != nil {
			return
		}
		go func() { <-ctx.Done(); it.Stop() }()
		defer it.Stop()
		ended := false // the last status sent was final
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			var r message.Run
			if message.Decode(m.Data(), message.SchemaRun, &r) != nil {
				if ended && lastStored(m) {
					return // only records this release cannot read came after the end
				}
				continue
			}
			if fromDelivery != "" {
				if r.DeliveryID != fromDelivery {
					continue
				}
				fromDelivery = ""
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
			ended = message.Final(r.Status)
			if ended && lastStored(m) {
				return
			}
		}
	}()
	return out, nil
}

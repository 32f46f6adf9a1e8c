package dispatcher

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/resource"
)

// A delivery whose webhook or job this dispatcher's catalog does not give
// as the delivery needs it (missing, another webhook under the name, or
// disabled) is not rejected on the catalog's word alone once catalogGrace
// has passed: the catalog drops a record it cannot decode (one a newer
// keys wrote, during a rolling upgrade) as if it had been deleted, and its
// watch may be behind the bucket for longer than the grace (down, or the
// ingress' clock ahead of this one's). The bucket's leader says which: a
// record there that is the delivery's hands the delivery back, later and
// later, until a catalog that holds it takes it; only a record that is not
// there (or is another webhook's) rejects it. Only deliveries the catalog
// turns down pay the read, once per record and batch.

// leaderView is what a bucket's leader holds of a delivery's webhook or
// job.
type leaderView int

const (
	// leaderGone: no record, or (a webhook) another webhook's under the
	// name: the delivery's was deleted.
	leaderGone leaderView = iota
	// leaderHas: the delivery's record, readable: this catalog is behind.
	leaderHas
	// leaderUnreadable: the delivery's record (or one whose uid cannot be
	// read either), in a form this release cannot read.
	leaderUnreadable
	// leaderUnknown: the leader could not be asked.
	leaderUnknown
)

// leaderReadTimeout bounds one leader read.
const leaderReadTimeout = time.Second

// leaderRecords reads, and keeps for one batch, the records the batch's
// deliveries need from the configuration buckets' leaders. A backlog of a
// deleted webhook's deliveries costs one read a batch, not one each. Not
// safe for concurrent use: claim and decideAll go one delivery at a time.
type leaderRecords struct {
	nc   *nats.Conn
	read map[string]*leaderRecord
}

// leaderRecord is one record as a leader holds it.
type leaderRecord struct {
	found, readable bool
	err             error
	// webhook is the record of a webhooks' key that decodes; uid is its
	// uid, read even when the rest does not decode.
	webhook *resource.Webhook
	uid     string
}

func newLeaderRecords(nc *nats.Conn) *leaderRecords {
	return &leaderRecords{nc: nc}
}

func (l *leaderRecords) get(ctx context.Context, bucket, ns, name string) *leaderRecord {
	key := bus.ConfigKey(ns, name)
	if r, ok := l.read[bucket+" "+key]; ok {
		return r
	}
	r := &leaderRecord{}
	// Its own bound, well inside the batch's: a leader that does not
	// answer (an election, a users.conf without the permission, where
	// the request only times out) must not use up the batch's time, or
	// its dedup claims would fail for want of it and pause dispatching.
	ctx, cancel := context.WithTimeout(ctx, leaderReadTimeout)
	defer cancel()
	if bucket == bus.BucketWebhooks {
		var w webhookRecord
		r.found, r.readable, r.err = catalog.ReadLeader(ctx, l.nc, bucket, key, &w)
		r.uid = w.uid
		if r.readable {
			r.webhook = &w.Webhook
		}
	} else {
		var j resource.Job
		r.found, r.readable, r.err = catalog.ReadLeader(ctx, l.nc, bucket, key, &j)
	}
	// An error is kept too: a leader that does not answer within the
	// batch's time would only use up the rest of it, one delivery at a
	// time. The next batch asks again.
	if l.read == nil {
		l.read = map[string]*leaderRecord{}
	}
	l.read[bucket+" "+key] = r
	return r
}

// webhook is what the leader holds of it's webhook; w is the record when
// it is the delivery's and readable, err why the leader was not asked.
func (l *leaderRecords) webhook(ctx context.Context, it *item) (v leaderView, w *resource.Webhook, err error) {
	r := l.get(ctx, bus.BucketWebhooks, it.d.Namespace, it.d.Webhook)
	switch {
	case r.err != nil:
		return leaderUnknown, nil, r.err
	case !r.found:
		return leaderGone, nil, nil
	case r.uid != "" && it.d.RunID != "" && runIDOf(&resource.Webhook{Metadata: resource.Meta{UID: r.uid}}, &it.d) != it.d.RunID:
		// Deleted and made again under its name: the one there now is
		// another webhook (a delivery of an older ingress, without a run
		// id, cannot tell, and waits for the catalog).
		return leaderGone, nil, nil
	case !r.readable:
		return leaderUnreadable, nil, nil
	}
	return leaderHas, r.webhook, nil
}

// job is what the leader holds of job ns/name; err why it was not asked.
func (l *leaderRecords) job(ctx context.Context, ns, name string) (leaderView, error) {
	r := l.get(ctx, bus.BucketJobs, ns, name)
	switch {
	case r.err != nil:
		return leaderUnknown, r.err
	case !r.found:
		return leaderGone, nil
	case !r.readable:
		return leaderUnreadable, nil
	}
	return leaderHas, nil
}

// webhookRecord decodes a webhook record as the catalog does, and keeps
// its uid even when the rest does not decode: a record another release
// wrote under the name with another uid is another webhook, and the
// delivery's is gone.
type webhookRecord struct {
	resource.Webhook
	uid string
}

func (r *webhookRecord) UnmarshalJSON(b []byte) error {
	var m struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if json.Unmarshal(b, &m) == nil {
		r.uid = m.Metadata.UID
	}
	return json.Unmarshal(b, &r.Webhook)
}

// waitForConfig hands it back, later and later (a rolling upgrade, or a
// watch down, can last): the leader holds its webhook, or its job when
// job (namespace/name) is not empty, in a record this dispatcher's
// catalog does not give, or could not be asked (err).
func (d *Dispatcher) waitForConfig(it *item, v leaderView, job string, err error) {
	it.failed, it.retryIn = true, bus.RedeliveryBackoff(it.msg)
	log := d.log.With("delivery", it.d.ID, "webhook", it.d.Namespace+"/"+it.d.Webhook, "in", it.retryIn)
	kind := "webhook"
	if job != "" {
		kind, log = "job", log.With("job", job)
	}
	switch v {
	case leaderUnreadable:
		log.Error("the delivery's " + kind + " has a record this dispatcher cannot read (a newer release's?): handing the delivery back: upgrade the dispatchers")
	case leaderHas:
		log.Info("the delivery's " + kind + " is not in this dispatcher's configuration yet: handing the delivery back")
	default:
		log.Warn("cannot tell whether the delivery's "+kind+" still exists: handing the delivery back", "err", err)
	}
}

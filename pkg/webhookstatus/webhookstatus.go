// Package webhookstatus records what the system observes about a webhook —
// the last error that kept a delivery from becoming a run or a run from
// starting its job, and the time of the last delivery — in the webhook
// status bucket, which the keys service merges into the webhook's status.
// It is runtime state, not configuration, so services other than keys may
// write it: the ingress, the dispatcher and the executor (the last two
// through Notes, off their hot paths).
package webhookstatus

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
)

// Status is the stored record.
type Status struct {
	// UID is the uid of the webhook the status is of. A webhook deleted
	// and made again under its name is another webhook: a write for the
	// old one that lands after the delete (a writer whose catalog had not
	// heard of it yet) must not show as the new one's. keys claims the
	// record for a webhook it creates (Claim), writes of another uid are
	// dropped, and keys shows a record of another uid as none. Empty in
	// records of older writers, which a write with a uid adopts.
	UID            string     `json:"uid,omitempty"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
	LastDeliveryAt *time.Time `json:"lastDeliveryAt,omitempty"`
}

// Writer updates statuses; lastDeliveryAt is written at most once a second
// per webhook so a busy webhook does not turn every delivery into a KV write.
type Writer struct {
	js jetstream.JetStream

	mu       sync.Mutex
	lastSeen map[string]time.Time
	// kv is the bucket, opened by the first write that gets it: opening
	// it is a JetStream API request (the stream's info), which every
	// write would otherwise pay on top of its own.
	kv jetstream.KeyValue
}

// NewWriter returns a Writer.
func NewWriter(js jetstream.JetStream) *Writer {
	return &Writer{js: js, lastSeen: map[string]time.Time{}}
}

// Get reads a webhook's status (zero when none).
func Get(ctx context.Context, js jetstream.JetStream, ns, name string) (Status, error) {
	var s Status
	kv, err := js.KeyValue(ctx, bus.BucketWebhookStatus)
	if err != nil {
		return s, err
	}
	e, err := kv.Get(ctx, bus.ConfigKey(ns, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	err = json.Unmarshal(e.Value(), &s)
	return s, err
}

// MaxErrorBytes bounds a lastError, whoever writes it: the messages quote
// what a webhook's configuration holds (a filter, a template, a job's
// program path), and the record is read with every webhook shown.
const MaxErrorBytes = 4 << 10

// Error records msg as the lastError of webhook ns/name of uid uid, cut
// to MaxErrorBytes.
func (w *Writer) Error(ctx context.Context, ns, name, uid, msg string) error {
	msg = cutError(msg)
	now := time.Now().UTC()
	return w.update(ctx, ns, name, uid, func(s *Status) { s.LastError, s.LastErrorAt = msg, &now })
}

// cutError cuts msg to MaxErrorBytes, between UTF-8 characters, marking
// the cut.
func cutError(msg string) string {
	const mark = "…"
	if len(msg) <= MaxErrorBytes {
		return msg
	}
	n := MaxErrorBytes - len(mark)
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n] + mark
}

// Delivered records a delivery at t to webhook ns/name of uid uid
// (throttled).
func (w *Writer) Delivered(ctx context.Context, ns, name, uid string, t time.Time) error {
	// By uid too: a webhook made again under the name has its first
	// delivery recorded, however soon after the earlier one's last.
	key := bus.ConfigKey(ns, name) + "/" + uid
	w.mu.Lock()
	if last, ok := w.lastSeen[key]; ok && t.Sub(last) < time.Second {
		w.mu.Unlock()
		return nil
	}
	w.lastSeen[key] = t
	w.mu.Unlock()
	t = t.UTC()
	return w.update(ctx, ns, name, uid, func(s *Status) {
		if s.LastDeliveryAt == nil || t.After(*s.LastDeliveryAt) {
			s.LastDeliveryAt = &t
		}
	})
}

// Clear removes a webhook's status (on delete).
func Clear(ctx context.Context, js jetstream.JetStream, ns, name string) error {
	kv, err := js.KeyValue(ctx, bus.BucketWebhookStatus)
	if err != nil {
		return err
	}
	err = kv.Purge(ctx, bus.ConfigKey(ns, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// bucket returns the status bucket, opened once.
func (w *Writer) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	w.mu.Lock()
	kv := w.kv
	w.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := w.js.KeyValue(ctx, bus.BucketWebhookStatus)
	if err != nil {
		return nil, err // opened again by the next write
	}
	w.mu.Lock()
	w.kv = kv
	w.mu.Unlock()
	return kv, nil
}

// Claim starts webhook ns/name's record over for the webhook of uid uid,
// which keys has just created: whatever a writer stored for an earlier
// webhook of the name since its delete cleared the record is replaced,
// and later writes for it are dropped (update).
func Claim(ctx context.Context, js jetstream.JetStream, ns, name, uid string) error {
	kv, err := js.KeyValue(ctx, bus.BucketWebhookStatus)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(Status{UID: uid})
	_, err = kv.Put(ctx, bus.ConfigKey(ns, name), b)
	return err
}

// update is a compare-and-set loop so concurrent writers do not lose
// fields. A record of another uid is another webhook's, the one keys
// created since (Claim): the write is dropped. A write without a uid
// (none is known) keeps the record's.
func (w *Writer) update(ctx context.Context, ns, name, uid string, f func(*Status)) error {
	kv, err := w.bucket(ctx)
	if err != nil {
		return err
	}
	key := bus.ConfigKey(ns, name)
	for i := 0; i < 5; i++ {
		var s Status
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &s)
		}
		if uid != "" && s.UID != "" && s.UID != uid {
			return nil // an earlier webhook's write, landed after its delete
		}
		if uid != "" {
			s.UID = uid
		}
		f(&s)
		b, _ := json.Marshal(s)
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
	}
	return errors.New("webhook status: too many concurrent updates")
}

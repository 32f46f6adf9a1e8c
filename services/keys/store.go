package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/runstatus"
)

// kvStore reads and writes one bucket of JSON values.
type kvStore[T any] struct {
	js     jetstream.JetStream
	bucket string
	log    *slog.Logger
}

func (s kvStore[T]) kv(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, s.bucket)
	if err != nil {
		return nil, errUnavailable
	}
	return kv, nil
}

// get returns the value and its revision; found=false when absent. It
// reads from the bucket's stream leader (bus.LastKV), so what this service
// has just written is what it reads back, on a replicated bucket too.
func (s kvStore[T]) get(ctx context.Context, key string) (*T, uint64, bool, error) {
	e, err := bus.LastKV(ctx, s.js.Conn(), s.bucket, key)
	if errors.Is(err, bus.ErrKVKeyNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, errUnavailable
	}
	v := new(T)
	if err := json.Unmarshal(e.Value, v); err != nil {
		return nil, 0, false, err
	}
	return v, e.Revision, true, nil
}

// put writes v: created when rev is 0, else only over revision rev (no
// lost updates between two writers).
func (s kvStore[T]) put(ctx context.Context, key string, v *T, rev uint64) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	b, err := encodeValue(v)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyExists) || isWrongSeq(err):
		return &apiError{Status: 409, Code: "conflict", Message: "the resource changed while this request ran; retry"}
	case errors.Is(err, nats.ErrMaxPayload):
		// Not worth a retry: the same resource will not fit later.
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("the resource takes %d bytes stored, more than the largest NATS message the server takes (%d bytes): make it smaller", len(b), s.js.Conn().MaxPayload())}
	}
	s.log.Warn("could not store a resource", "bucket", s.bucket, "key", key, "bytes", len(b), "err", err)
	return errUnavailable
}

// encodeValue is the JSON of a stored value, without json.Marshal's
// escaping of <, > and & (\u003c: six bytes for one), which made a large
// resource that fits as sent too large for NATS once stored.
func encodeValue(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isWrongSeq tells whether err is JetStream refusing a write against a
// revision that is no longer the key's last: a conflict, not an outage. A
// replicated bucket refuses a write racing another one in flight to the
// same key with its own code (10164), not 10071; runstatus checks both.
func isWrongSeq(err error) bool { return runstatus.IsNotLatest(err) }

// del removes key; found=false when it was absent. The purge is of the
// revision read: of several deletes at once one finds it (the others 404,
// as after it), and one racing a change answers 409 conflict.
func (s kvStore[T]) del(ctx context.Context, key string) (bool, error) {
	_, rev, found, err := s.get(ctx, key)
	if err != nil || !found {
		return false, err
	}
	return s.delAt(ctx, key, rev)
}

// delAt removes key if revision rev is still its last: a caller that
// decided on what it read deletes that version, not whatever is there
// now. A change since answers 409 conflict, a delete since found=false.
func (s kvStore[T]) delAt(ctx context.Context, key string, rev uint64) (bool, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return false, err
	}
	if err := kv.Purge(ctx, key, jetstream.LastRevision(rev)); err != nil {
		if !isWrongSeq(err) {
			return false, errUnavailable
		}
		if _, _, found, err := s.get(ctx, key); err != nil || !found {
			return false, err
		}
		return false, &apiError{Status: 409, Code: "conflict", Message: "the resource changed while this request ran; retry"}
	}
	return true, nil
}

// list returns every value whose key starts with prefix ("" = all).
func (s kvStore[T]) list(ctx context.Context, prefix string) ([]*T, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, errUnavailable
	}
	var out []*T
	for k := range lister.Keys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		v, _, found, err := s.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, v)
		}
	}
	return out, nil
}

func nsPrefix(ns string) string { return bus.ConfigKey(ns, "") }

package keys

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
)

// kvStore reads and writes one bucket of JSON values.
type kvStore[T any] struct {
	js     jetstream.JetStream
	bucket string
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
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSeq(err) {
		return &apiError{Status: 409, Code: "conflict", Message: "the resource changed while this request ran; retry"}
	}
	if err != nil {
		return errUnavailable
	}
	return nil
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// del removes key; found=false when it was absent.
func (s kvStore[T]) del(ctx context.Context, key string) (bool, error) {
	_, _, found, err := s.get(ctx, key)
	if err != nil || !found {
		return false, err
	}
	kv, err := s.kv(ctx)
	if err != nil {
		return false, err
	}
	if err := kv.Purge(ctx, key); err != nil {
		return false, errUnavailable
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

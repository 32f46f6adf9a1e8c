package catalog

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
)

// ReadLeader reads key of configuration bucket from the bucket's stream
// leader into v, for a record a Catalog does not give: a Catalog drops a
// record it cannot decode (one a newer release wrote, during a rolling
// upgrade) as if it had been deleted, and its watch may lag behind the
// bucket. Only the leader tells "deleted" from "there". found is false
// when the key is absent, deleted or purged; readable is false when its
// value does not decode into v, as a Catalog decodes it (v is then left
// as the decoder left it).
//
// A leader read costs a JetStream API request: it is for the rare record
// the Catalog lacks, not for every look-up.
func ReadLeader(ctx context.Context, nc *nats.Conn, bucket, key string, v any) (found, readable bool, err error) {
	e, err := bus.LastKV(ctx, nc, bucket, key)
	if errors.Is(err, bus.ErrKVKeyNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, json.Unmarshal(e.Value, v) == nil, nil
}

package bus

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerFloor is a consumer's ack floor (every message of its stream up
// to Seq is done), and when that consumer was created.
type ConsumerFloor struct {
	Seq     uint64
	Created time.Time
}

// DropBrokenConsumer deletes the durable consumer name of stream when err,
// the failure to create or update it, is nats-server failing on its own
// side (500, "could not create consumer") while the consumer exists and
// cannot be written even as it is.
//
// nats-server can keep a consumer whose files were removed under it: one
// made again while the server was still removing the files of the
// consumer of that name just deleted ("open …/obs/<name>/meta.inf.tmp: no
// such file or directory"). That consumer delivers, but every update of
// it fails alike, for ever, and a restart of the server loses it.
//
// It returns the ack floor the consumer deleted had, for the caller to
// make it again after it (nothing done is done again); ok is false when
// nothing was deleted.
func DropBrokenConsumer(ctx context.Context, js jetstream.JetStream, stream, name string, err error) (floor ConsumerFloor, ok bool) {
	if !serverFailed(err) {
		return ConsumerFloor{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, lerr := js.Consumer(ctx, stream, name)
	if lerr != nil {
		return ConsumerFloor{}, false
	}
	info := c.CachedInfo()
	// nats-server answers a refused change (of where the consumer starts,
	// say) alike: the consumer is broken only if it cannot be written as
	// it is.
	if _, uerr := js.UpdateConsumer(ctx, stream, info.Config); !serverFailed(uerr) {
		return ConsumerFloor{}, false
	}
	if derr := js.DeleteConsumer(ctx, stream, name); derr != nil {
		return ConsumerFloor{}, false
	}
	return ConsumerFloor{Seq: info.AckFloor.Stream, Created: info.Created}, true
}

// serverFailed reports whether err is nats-server's "could not create
// consumer" (500).
func serverFailed(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusInternalServerError && apiErr.ErrorCode == jetstream.JSErrCodeConsumerCreate
}

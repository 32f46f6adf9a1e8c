package bus

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RecreateDelay is how long a service waits, once it finds its consumer
// deleted, before making it again: nats-server tells of a deletion before
// it has removed the deleted consumer's files, and a consumer made again
// at once can have its files removed under it (see DropBrokenConsumer).
const RecreateDelay = time.Second

// ConsumerFloor is a consumer's ack floor (every message of its stream up
// to Seq is done), and when that consumer was created.
type ConsumerFloor struct {
	Seq     uint64
	Created time.Time
}

// DropBrokenConsumer deletes the durable consumer name of stream when err,
// the failure to create or update it, says that nats-server cannot write
// the consumer's files because their directory is gone, and the consumer
// cannot be written even as it is.
//
// nats-server can keep a consumer whose files were removed under it: one
// made again while the server was still removing the files of the
// consumer of that name just deleted ("open …/obs/<name>/meta.inf.tmp: no
// such file or directory"). That consumer delivers, but every update of
// it fails alike, for ever, and a restart of the server loses it. Other
// failures to write (a full or read-only disk) leave the consumer alone:
// deleting it would not help, and its ack floor would live only in the
// caller's memory until the disk is back.
//
// It returns the ack floor the consumer deleted had, for the caller to
// make it again after it (nothing done is done again); ok is false when
// nothing was deleted. The delete is answered once the files are gone: the
// consumer can be made again at once.
func DropBrokenConsumer(ctx context.Context, js jetstream.JetStream, stream, name string, err error) (floor ConsumerFloor, ok bool) {
	if !filesGone(err) {
		return ConsumerFloor{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, lerr := js.Consumer(ctx, stream, name)
	if lerr != nil {
		return ConsumerFloor{}, false
	}
	info := c.CachedInfo()
	// Still broken now, as it is: not made again meanwhile by another
	// instance of the caller.
	if _, uerr := js.UpdateConsumer(ctx, stream, info.Config); !filesGone(uerr) {
		return ConsumerFloor{}, false
	}
	if derr := js.DeleteConsumer(ctx, stream, name); derr != nil {
		return ConsumerFloor{}, false
	}
	return ConsumerFloor{Seq: info.AckFloor.Stream, Created: info.Created}, true
}

// filesGone reports whether err is nats-server's "could not create
// consumer" (500) for a consumer whose directory is missing.
func filesGone(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusInternalServerError || apiErr.ErrorCode != jetstream.JSErrCodeConsumerCreate {
		return false
	}
	d := strings.ToLower(apiErr.Description)
	return strings.Contains(d, "no such file or directory") || strings.Contains(d, "cannot find the path") // Unix, Windows
}

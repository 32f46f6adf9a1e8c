package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CheckLayout reports the first stream or bucket that does not exist yet.
// Services other than keys only check the layout: the keys service alone
// creates and updates it (deploy/nats/users.conf allows no one else a
// stream update, through which a service could source its own messages
// into the configuration buckets).
func CheckLayout(ctx context.Context, js jetstream.JetStream) error {
	var names []string
	for _, sc := range StreamConfigs(Options{}) {
		names = append(names, sc.Name)
	}
	for _, kc := range BucketConfigs(Options{}) {
		names = append(names, "KV_"+kc.Bucket)
	}
	for _, n := range names {
		if _, err := js.Stream(ctx, n); errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s does not exist yet", n)
		} else if err != nil {
			return fmt.Errorf("stream %s: %w", n, err)
		}
	}
	return nil
}

// WaitLayout calls CheckLayout until the layout is there or ctx ends.
func WaitLayout(ctx context.Context, js jetstream.JetStream) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := CheckLayout(cctx, js)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the keys service to create the streams and buckets): %w", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

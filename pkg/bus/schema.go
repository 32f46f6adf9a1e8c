package bus

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/message"
)

// MaxSchemaWait bounds the delay before a message of another schema
// version comes back: while it waits it holds one of its consumer's
// MaxAckPending slots (for a run request, one of its job's concurrency).
const MaxSchemaWait = 5 * time.Second

// HandBackOtherVersion is for a message m that did not decode as schema
// want. If m names another version of want's kind (a later release wrote
// it during a rolling upgrade, and it was accepted: a sender got 202), it
// hands m back to wait for a reader that can read it, at most
// MaxSchemaWait between tries, and returns the schema m names and the
// wait. ok is false for a message that is no such message at all, which
// the caller terminates rather than loop on.
func HandBackOtherVersion(m jetstream.Msg, want string) (schema string, wait time.Duration, ok bool) {
	schema = message.SchemaOf(m.Headers().Get(HeaderSchema), m.Data())
	if !message.AnotherVersion(schema, want) {
		return schema, 0, false
	}
	wait = min(RedeliveryBackoff(m), MaxSchemaWait)
	_ = m.NakWithDelay(wait)
	return schema, wait, true
}

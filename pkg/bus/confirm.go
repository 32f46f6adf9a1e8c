package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MsgCopies bounds the message ids a run request is stored under: its own,
// then "#2" .. "#MsgCopies" (see ConfirmDuplicate).
const MsgCopies = 4

// ConfirmDuplicate checks msg, published under msgID (with opts) and
// answered as a duplicate by ack. A clustered JetStream can answer so for
// the message id of a write that never committed (its leader lost
// mid-write): then nothing holds the message, and the caller that takes
// the answer for a success loses it. The message at the answer's sequence
// must carry the id. If it does not, msg is stored under the next id of a
// fixed series ("#2", "#3", ... up to MsgCopies) — the same series on
// every attempt, so a copy stored by an earlier attempt is found again
// rather than stored twice; unconfirmed, if not nil, is told of each id
// not confirmed, and of the id msg is stored under next ("" when the
// series is spent and it gives up). A run request's copy that an executor finds already
// consumed finds its run ended (or owned by the copy running it) and is
// acked without running.
//
// It returns nil once a copy is held, and an error when the check cannot
// be made or no id of the series is confirmed: the caller hands its own
// message back, to try again later.
func ConfirmDuplicate(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string, ack *jetstream.PubAck, unconfirmed func(msgID string, seq uint64, next string), opts ...jetstream.PublishOpt) error {
	id := msgID
	for n := 2; ; n++ {
		stored, found, err := MsgIDAt(ctx, js.Conn(), ack.Stream, ack.Sequence)
		if err != nil {
			return fmt.Errorf("confirming the duplicate %s: %w", id, err)
		}
		if found && stored == id {
			return nil
		}
		next := ""
		if n <= MsgCopies {
			next = msgID + "#" + strconv.Itoa(n)
		}
		if unconfirmed != nil {
			unconfirmed(id, ack.Sequence, next)
		}
		if next == "" {
			return fmt.Errorf("duplicates of %s not confirmed under any of its %d ids", msgID, MsgCopies)
		}
		id = next
		m := &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: nats.Header{}}
		for k, v := range msg.Header {
			m.Header[k] = v
		}
		if ack, err = js.PublishMsg(ctx, m, append(opts, jetstream.WithMsgID(id))...); err != nil {
			return fmt.Errorf("storing %s: %w", id, err)
		}
		if !ack.Duplicate {
			return nil
		}
	}
}

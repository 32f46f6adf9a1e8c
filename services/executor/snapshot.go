package executor

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
)

// A client that starts following a run while it runs (the keys API's
// /v1/runs/{id}/events, `hookrun runs watch`) asks for the output the run
// has published so far; the executor running it answers, the others stay
// silent. Lines are numbered (bus.HeaderLine), so the client drops the live
// lines the snapshot already holds.

// addOutput makes a run's output answerable (a command's replaces the
// empty one its run starts with).
func (x *Executor) addOutput(id string, t *tail) {
	x.mu.Lock()
	x.outputs[id] = t
	x.mu.Unlock()
}

func (x *Executor) removeOutput(id string) {
	x.mu.Lock()
	delete(x.outputs, id)
	x.mu.Unlock()
}

// onSnapshot answers a request for a run's output so far, if it runs here:
// from just before its "running" is stored until its message is acked or
// handed back (an executor about to take it over asks the same).
func (x *Executor) onSnapshot(m *nats.Msg) {
	id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	x.mu.Lock()
	t, ok := x.outputs[id]
	x.mu.Unlock()
	if !ok || m.Reply == "" {
		return
	}
	out, last := t.Published()
	// The answer is also "still running here" to an executor about to
	// take the run over (runningElsewhere): one over NATS' max_payload,
	// refused, would let it run the run a second time. It keeps the end
	// that fits (MaxOutput is bounded so at start-up, but the server
	// reconnected to may take less).
	if limit := x.nc.MaxPayload() - snapshotHeaderRoom; limit > 0 && int64(len(out)) > limit {
		out = keepEnd(out, int(limit))
	}
	// Its attempt too: keys fills lines a slow reader lost from it, only
	// for the attempt they are of.
	r := &nats.Msg{Subject: m.Reply, Data: []byte(out), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(last)}, bus.HeaderAttempt: []string{t.attempt}}}
	_ = x.nc.PublishMsg(r)
}

// snapshotHeaderRoom is what a snapshot answer's headers may take of
// max_payload.
const snapshotHeaderRoom = 1 << 10

// maxOutputWithin is the most output a snapshot answer can hold within
// NATS' max_payload limit (marked as cut, with its headers).
func maxOutputWithin(limit int64) int {
	return int(limit) - snapshotHeaderRoom - len(message.OutputTruncated)
}

// maxPayloadOf is nc's max_payload; 0 (no bound known) without a
// connection.
func maxPayloadOf(nc *nats.Conn) int64 {
	if nc == nil {
		return 0
	}
	return nc.MaxPayload()
}

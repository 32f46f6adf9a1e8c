package executor

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/bus"
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
	r := &nats.Msg{Subject: m.Reply, Data: []byte(out), Header: nats.Header{bus.HeaderLine: []string{strconv.Itoa(last)}}}
	_ = x.nc.PublishMsg(r)
}

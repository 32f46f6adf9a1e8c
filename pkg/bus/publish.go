package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream's publish headers besides HeaderMsgID, set on the message
// before Publish.
const (
	HeaderExpectedStream      = jetstream.ExpectedStreamHeader
	HeaderExpectedLastSubjSeq = jetstream.ExpectedLastSubjSeqHeader
)

const (
	publishRetryAttempts  = jetstream.DefaultPubRetryAttempts
	publishRetryWait      = jetstream.DefaultPubRetryWait
	publishDefaultTimeout = 5 * time.Second
)

// Publish stores m in the stream bound to its subject and returns
// JetStream's ack, as jetstream.JetStream.PublishMsg does with its default
// retries (a "no responders", as during a stream leader election, is tried
// again twice after 250 ms), bounded by ctx or, when ctx has no deadline,
// by 5 s. The errors are the same: a refusal by the stream is a
// *jetstream.APIError (wrapped), no stream is jetstream.ErrNoStreamResponse.
//
// It differs in cost only: the hot paths publish through here, and the
// client's PublishMsg decodes every ack with encoding/json (reflection, a
// map look-up per field), which was 4–5% of the ingress' CPU. Acks in the
// server's usual forms are parsed by hand; any other goes to encoding/json.
func Publish(ctx context.Context, nc *nats.Conn, m *nats.Msg) (*jetstream.PubAck, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishDefaultTimeout)
		defer cancel()
	}
	return publish(m, func() (*nats.Msg, error) { return nc.RequestMsgWithContext(ctx, m) }, func() bool {
		t := time.NewTimer(publishRetryWait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	})
}

// PublishWithin is Publish bounded by timeout instead of a context (a
// pooled timer, not a context, a timer and a cancel registration per call).
func PublishWithin(nc *nats.Conn, m *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
	deadline := time.Now().Add(timeout)
	return publish(m, func() (*nats.Msg, error) {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nats.ErrTimeout
		}
		return nc.RequestMsg(m, left)
	}, func() bool {
		if time.Until(deadline) <= publishRetryWait {
			return false
		}
		time.Sleep(publishRetryWait)
		return true
	})
}

func publish(m *nats.Msg, request func() (*nats.Msg, error), wait func() bool) (*jetstream.PubAck, error) {
	resp, err := request()
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < publishRetryAttempts && wait(); r++ {
		resp, err = request()
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, jetstream.ErrNoStreamResponse
	}
	if err != nil {
		return nil, err
	}
	return ParsePubAck(resp.Data)
}

// ParsePubAck reads JetStream's answer to a publish. The server writes
// successful acks from a template: {"stream":"S","seq":N}, with
// ,"domain":"D" before the sequence in a domain and ,"duplicate": true
// after it for a duplicate; those are parsed here, anything else (errors,
// batches, counters, a future form) by encoding/json.
func ParsePubAck(data []byte) (*jetstream.PubAck, error) {
	if ack, ok := parsePubAckFast(data); ok {
		return ack, nil
	}
	var resp struct {
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("nats: %w", resp.Error)
	}
	if resp.PubAck == nil || resp.PubAck.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

var (
	ackStream    = []byte(`{"stream":"`)
	ackDomain    = []byte(`","domain":"`)
	ackSeq       = []byte(`","seq":`)
	ackDuplicate = [][]byte{[]byte(`,"duplicate": true}`), []byte(`,"duplicate":true}`)}
)

// parsePubAckFast parses the template forms only; false for anything else
// (a name with a quote or backslash escaped, a field it does not know).
func parsePubAckFast(b []byte) (*jetstream.PubAck, bool) {
	if !bytes.HasPrefix(b, ackStream) {
		return nil, false
	}
	b = b[len(ackStream):]
	ack := &jetstream.PubAck{}
	i := bytes.IndexByte(b, '"')
	if i <= 0 || bytes.IndexByte(b[:i], '\\') >= 0 {
		return nil, false
	}
	ack.Stream = string(b[:i])
	b = b[i:]
	if bytes.HasPrefix(b, ackDomain) {
		b = b[len(ackDomain):]
		j := bytes.IndexByte(b, '"')
		if j < 0 || bytes.IndexByte(b[:j], '\\') >= 0 {
			return nil, false
		}
		ack.Domain = string(b[:j])
		b = b[j:]
	}
	if !bytes.HasPrefix(b, ackSeq) {
		return nil, false
	}
	b = b[len(ackSeq):]
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 {
		return nil, false
	}
	var seq uint64
	for _, c := range b[:n] {
		d := uint64(c - '0')
		if seq > (math.MaxUint64-d)/10 {
			return nil, false
		}
		seq = seq*10 + d
	}
	ack.Sequence = seq
	b = b[n:]
	switch {
	case len(b) == 1 && b[0] == '}':
		return ack, true
	case bytes.Equal(b, ackDuplicate[0]), bytes.Equal(b, ackDuplicate[1]):
		ack.Duplicate = true
		return ack, true
	}
	return nil, false
}

package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KVEntry is a key's last value as the stream's leader has it.
type KVEntry struct {
	Value    []byte
	Revision uint64
}

// ErrKVKeyNotFound is LastKV's answer for a key absent, deleted or purged.
var ErrKVKeyNotFound = errors.New("key not found")

// LastKV reads key of bucket from the stream's leader. A KV's Get is a
// direct get, which a follower may answer before it has applied the latest
// write: on a replicated bucket a value just written can read as absent.
// The control plane reads through here what it has just written or must
// check (a webhook's secretRef right after the secret was put).
func LastKV(ctx context.Context, nc *nats.Conn, bucket, key string) (*KVEntry, error) {
	if !validKVKey(key) {
		return nil, ErrKVKeyNotFound
	}
	m, err := leaderGet(ctx, nc, "KV_"+bucket, map[string]any{"last_by_subj": "$KV." + bucket + "." + key})
	if errors.Is(err, ErrNoMessage) {
		return nil, ErrKVKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", bucket, err)
	}
	if op := m.header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, ErrKVKeyNotFound
	}
	return &KVEntry{Value: m.data, Revision: m.seq}, nil
}

// MsgIDAt returns the Nats-Msg-Id of the message at seq of stream, read
// from the stream's leader; found is false when no message is there (never
// stored, deleted, or consumed from a work queue).
//
// A publish answered "duplicate" is checked through here: a clustered
// JetStream can answer so for the message id of a write that never
// committed (its leader was lost mid-write, and still held the id when it
// led again), naming the sequence that write would have had.
func MsgIDAt(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (msgID string, found bool, err error) {
	_, msgID, found, err = MsgAt(ctx, nc, stream, seq)
	return msgID, found, err
}

// MsgAt is MsgIDAt with the message's subject.
func MsgAt(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (subject, msgID string, found bool, err error) {
	if seq == 0 {
		return "", "", false, nil
	}
	m, err := leaderGet(ctx, nc, stream, map[string]any{"seq": seq})
	if errors.Is(err, ErrNoMessage) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("stream %s: %w", stream, err)
	}
	return m.subject, m.header.Get(jetstream.MsgIDHeader), true, nil
}

// LastBySubject returns the data of the last message on subject (which may
// hold wildcards) in stream, read from the stream's leader, or
// ErrNoMessage. Reads that decide what to do next go through here: a
// direct get (the jetstream client's choice on a stream with AllowDirect)
// may be answered by a replica that has not applied the latest write, and
// a run would be started again after its final status was stored.
func LastBySubject(ctx context.Context, nc *nats.Conn, stream, subject string) ([]byte, error) {
	data, _, err := LastBySubjectSeq(ctx, nc, stream, subject)
	return data, err
}

// LastBySubjectSeq is LastBySubject with the message's sequence.
func LastBySubjectSeq(ctx context.Context, nc *nats.Conn, stream, subject string) ([]byte, uint64, error) {
	m, err := leaderGet(ctx, nc, stream, map[string]any{"last_by_subj": subject})
	if err != nil {
		return nil, 0, err
	}
	return m.data, m.seq, nil
}

// ErrNoMessage is LastBySubject's answer when no message matches.
var ErrNoMessage = errors.New("no message")

type storedMsg struct {
	subject string
	seq     uint64
	header  nats.Header
	data    []byte
}

// LeaderGetTimeout bounds a leader read whose context has no deadline.
const LeaderGetTimeout = 5 * time.Second

// leaderGet is a STREAM.MSG.GET request, which the stream's leader answers
// (unlike a direct get, which any replica may answer before it has applied
// the latest write).
func leaderGet(ctx context.Context, nc *nats.Conn, stream string, req map[string]any) (*storedMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		// As the jetstream package bounds its API requests: an answer
		// that never comes (no leader, a refused subject) is an error,
		// not a wait as long as the caller's (an HTTP client's) patience.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, LeaderGetTimeout)
		defer cancel()
	}
	body, _ := json.Marshal(req)
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Hdrs    []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, err
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound) {
			return nil, ErrNoMessage
		}
		return nil, fmt.Errorf("%s (%d)", resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, errors.New("empty answer")
	}
	m := &storedMsg{subject: resp.Message.Subject, seq: resp.Message.Seq, data: resp.Message.Data, header: nats.Header{}}
	if len(resp.Message.Hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Hdrs)
		if err != nil {
			return nil, fmt.Errorf("headers of message %d: %w", resp.Message.Seq, err)
		}
		m.header = h
	}
	return m, nil
}

// validKVKey is NATS KV's rule for keys: no empty tokens, only
// [-/_=.a-zA-Z0-9].
func validKVKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '/', c == '_', c == '=':
		case c == '.':
			if k[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// RedeliveryBackoff is the delay of a hand-back (NAK) that will not succeed
// soon: 1 s after a message's first delivery, doubling with each
// redelivery, at most a minute.
func RedeliveryBackoff(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 0 {
		n = md.NumDelivered
	}
	return min(time.Second<<min(n-1, 6), time.Minute)
}

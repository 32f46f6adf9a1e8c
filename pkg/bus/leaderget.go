package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key})
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
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
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("kv %s: %w", bucket, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound) {
			return nil, ErrKVKeyNotFound
		}
		return nil, fmt.Errorf("kv %s: %s (%d)", bucket, resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("kv %s: empty answer", bucket)
	}
	if len(resp.Message.Hdrs) > 0 {
		if h, err := nats.DecodeHeadersMsg(resp.Message.Hdrs); err == nil {
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				return nil, ErrKVKeyNotFound
			}
		}
	}
	return &KVEntry{Value: resp.Message.Data, Revision: resp.Message.Seq}, nil
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

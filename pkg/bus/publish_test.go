package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// Every form parses to what the client's own decoding gives: the server's
// templates by hand, the rest through encoding/json.
func TestParsePubAck_SameAsTheClientsDecoding(t *testing.T) {
	forms := []string{
		`{"stream":"DELIVERIES","seq":1}`,
		`{"stream":"DELIVERIES","seq":18446744073709551615}`,
		`{"stream":"S","domain":"hub","seq":42}`,
		`{"stream":"S","seq":7,"duplicate": true}`,
		`{"stream":"S","seq":7,"duplicate":true}`,
		`{"stream":"S","domain":"d","seq":7,"duplicate": true}`,
		`{"stream":"S","seq":7,"batch":"b1","count":3}`,
		`{"stream":"S","seq":7,"val":"12"}`,
		`{"stream":"S\"x","seq":7}`,
		`{"seq":7,"stream":"S"}`,
		`{"stream": "S", "seq": 9}`,
		`{"stream":"S","seq":18446744073709551616}`,
	}
	for _, f := range forms {
		got, err := bus.ParsePubAck([]byte(f))
		var want struct {
			*jetstream.PubAck
		}
		werr := json.Unmarshal([]byte(f), &want)
		if werr != nil {
			if err == nil {
				t.Errorf("%s: parsed as %+v, but encoding/json refuses it: %v", f, got, werr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want.PubAck) {
			t.Errorf("%s: got %+v, %v; want %+v", f, got, err, want.PubAck)
		}
	}
}

func TestParsePubAck_ErrorsAreAPIErrors(t *testing.T) {
	_, err := bus.ParsePubAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"STATUS","seq":0}`))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence || apiErr.Code != 400 {
		t.Fatalf("err = %v, want the API error 10071", err)
	}
	for _, bad := range []string{``, `{}`, `not json`, `{"stream":"","seq":3}`, `{"stream":"S","seq":}`} {
		if ack, err := bus.ParsePubAck([]byte(bad)); !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("%q: %+v, %v; want ErrInvalidJSAck", bad, ack, err)
		}
	}
}

// Against a real server: sequences, the duplicate window, an expected last
// sequence refused, an expected stream refused, and no stream at all.
func TestPublish_AgainstJetStream(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, js := n.Connect()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PUBTEST", Subjects: []string{"pubtest.>"}, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	msg := func(subj, id string) *nats.Msg {
		m := nats.NewMsg(subj)
		m.Data = []byte("x")
		if id != "" {
			m.Header.Set(bus.HeaderMsgID, id)
		}
		return m
	}
	pubs := []func(m *nats.Msg) (*jetstream.PubAck, error){
		func(m *nats.Msg) (*jetstream.PubAck, error) { return bus.Publish(ctx, nc, m) },
		func(m *nats.Msg) (*jetstream.PubAck, error) { return bus.PublishWithin(nc, m, 2*time.Second) },
	}
	var seq uint64
	for i, pub := range pubs {
		id := fmt.Sprintf("id-%d", i)
		ack, err := pub(msg("pubtest.a", id))
		seq++
		if err != nil || ack.Stream != "PUBTEST" || ack.Sequence != seq || ack.Duplicate {
			t.Fatalf("publisher %d: ack %+v, %v; want sequence %d", i, ack, err, seq)
		}
		again, err := pub(msg("pubtest.a", id))
		if err != nil || !again.Duplicate || again.Sequence != seq {
			t.Fatalf("publisher %d, same id again: %+v, %v; want a duplicate of %d", i, again, err, seq)
		}

		m := msg("pubtest.a", "")
		m.Header.Set(bus.HeaderExpectedLastSubjSeq, "999")
		_, err = pub(m)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
			t.Fatalf("publisher %d, wrong last sequence: %v, want API error 10071", i, err)
		}
		m = msg("pubtest.a", "")
		m.Header.Set(bus.HeaderExpectedStream, "OTHER")
		if _, err = pub(m); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10060 { // JSStreamNotMatchErr
			t.Fatalf("publisher %d, wrong stream: %v, want API error 10060", i, err)
		}
		start := time.Now()
		if _, err := pub(msg("nostream.a", "")); !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Fatalf("publisher %d, no stream: %v, want ErrNoStreamResponse", i, err)
		}
		// Tried three times, 250 ms apart, as the client does.
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Fatalf("publisher %d, no stream: gave up after %v, without the retries", i, d)
		}
	}
	// A deadline shorter than the retries ends them. Waiting out one retry
	// takes at least DefaultPubRetryWait, far past a 10 ms deadline: a
	// call that returns sooner did not wait, however loaded the machine.
	const deadline = 10 * time.Millisecond
	longest := jetstream.DefaultPubRetryWait - 10*time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	if _, err := bus.Publish(cctx, nc, msg("nostream.b", "")); err == nil {
		t.Fatal("no stream: no error")
	}
	if d := time.Since(start); d > longest {
		t.Fatalf("no stream, %v deadline: took %v, a retry's wait", deadline, d)
	}
	start = time.Now()
	if _, err := bus.PublishWithin(nc, msg("nostream.b", ""), deadline); err == nil {
		t.Fatal("no stream, within: no error")
	}
	if d := time.Since(start); d > longest {
		t.Fatalf("no stream, within %v: took %v, a retry's wait", deadline, d)
	}
}

// The server's usual acks are parsed without encoding/json: the ack and its
// stream name are all that is allocated.
func TestParsePubAck_UsualFormsAreCheap(t *testing.T) {
	for _, f := range []string{`{"stream":"DELIVERIES","seq":123456}`, `{"stream":"DELIVERIES","seq":123456,"duplicate": true}`} {
		data := []byte(f)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := bus.ParsePubAck(data); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("%s: %v allocations per parse, want at most 2", f, allocs)
		}
	}
}

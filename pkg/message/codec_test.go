package message

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// awkward are strings encoding/json treats specially: invalid UTF-8 (made
// U+FFFD), HTML characters and U+2028/2029 (escaped), control characters.
var awkward = []string{"", "plain", "a\xffb", "\xfe", "<script>&amp;</script>", "\u2028\u2029", "\x00\x1f\"\\/", "\b\f\n\r\t\x7f", "é漢字🙂", strings.Repeat("x", 2000)}

func sampleMessages(s string, b []byte, n int) []any {
	at := time.Date(2026, 11, 27, 13, 4, 5, 123456789, time.FixedZone("X", 3600))
	code := n
	return []any{
		&Delivery{Schema: SchemaDelivery, ID: "dlv_" + s, Namespace: s, Webhook: s, Job: s, EventID: s, RunID: s, Method: "POST",
			ContentType: s, Body: b, Header: map[string][]string{"B-" + s: {s, s}, "A": {s}}, Query: map[string][]string{s: {}, "z": {s}},
			Principal: s, Profile: s, ReceivedAt: at, SourceIP: s, ReplayOf: s},
		&RunRequest{Schema: SchemaRunRequest, ID: s, Namespace: s, Job: s, Webhook: s, DeliveryID: s, EventID: s,
			Args: map[string]string{s: s, "k": s}, Payload: b, ContentType: s, Header: map[string][]string{s: {s}},
			Method: s, Query: map[string][]string{s: {s, s}, "z": {}}, ReceivedAt: at, Source: s, QueuedAt: at.UTC(),
			Replay: n%2 == 0, Callback: &Callback{URL: s, SecretRef: s}},
		&RunRequest{Schema: SchemaRunRequest}, // zero values and omitempty (an older dispatcher's request has no method or query)
		&Run{Schema: SchemaRun, Kind: KindRun, ID: s, Namespace: s, Webhook: s, Job: s, DeliveryID: s, RunID: s, Status: s,
			Attempt: n, ExitCode: &code, QueuedAt: &at, StartedAt: &at, Output: s, Error: s, Args: map[string]string{s: s},
			WebhookPayload: s, WebhookEventID: s, WebhookReceivedAt: at, WebhookSource: s},
		&Run{Schema: SchemaRun}, // zero values and omitempty
	}
}

// checkCodec holds Marshal, Encode and Decode to encoding/json: the same
// bytes out, the same value back.
func checkCodec(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal differs from encoding/json:\n got %q\nwant %q", got, want)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, v); err != nil || buf.String() != string(want)+"\n" {
		t.Fatalf("Encode: %v %q", err, buf.String())
	}
	std := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := json.Unmarshal(want, std); err != nil {
		t.Fatal(err)
	}
	ours := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	var schema struct{ Schema string }
	_ = json.Unmarshal(want, &schema)
	if err := Decode(want, schema.Schema, ours); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(normalize(ours), normalize(std)) {
		t.Fatalf("Decode differs from encoding/json:\n got %+v\nwant %+v", ours, std)
	}
}

// normalize compares times by instant and location name, not by pointer.
func normalize(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestMarshal_SameBytesAsEncodingJSON(t *testing.T) {
	for i, s := range awkward {
		for _, v := range sampleMessages(s, []byte(s), i) {
			checkCodec(t, v)
		}
	}
}

func TestDecode_RefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, in := range []string{`{`, `[]`, `{"schema":1}`, `{"schema":"` + SchemaDelivery + `","body":"!!"}`,
		`{"schema":"` + SchemaDelivery + `","header":{"a":"b"}}`, `{"schema":"` + SchemaDelivery + `","receivedAt":"yesterday"}`,
		`{"schema":"` + SchemaDelivery + `"} x`, ``} {
		var std Delivery
		stdErr := json.Unmarshal([]byte(in), &std)
		var ours Delivery
		err := Decode([]byte(in), SchemaDelivery, &ours)
		if stdErr != nil && err == nil {
			t.Errorf("%q: encoding/json refuses it (%v), Decode took it", in, stdErr)
		}
	}
}

// FuzzCodec_MatchesEncodingJSON: for any field values, the fast codec
// writes what encoding/json writes and reads back what encoding/json reads.
func FuzzCodec_MatchesEncodingJSON(f *testing.F) {
	for i, s := range awkward {
		f.Add(s, []byte(s), i)
	}
	f.Fuzz(func(t *testing.T, s string, b []byte, n int) {
		if len(s)+len(b) > 8<<10 {
			// Longer values exercise nothing new and slow every execution
			// (each is encoded and decoded a dozen times over).
			t.Skip()
		}
		for _, v := range sampleMessages(s, b, n) {
			checkCodec(t, v)
		}
	})
}

// FuzzDecode_MatchesEncodingJSON: whatever arrives on a subject, Decode
// takes what encoding/json takes, to the same value, refuses what it
// refuses, and never panics.
func FuzzDecode_MatchesEncodingJSON(f *testing.F) {
	for _, v := range sampleMessages("x", []byte("{}"), 1) {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"hookrun.delivery.v1","header":{"a":[1]}}`))
	f.Add([]byte(`{"SCHEMA":"hookrun.run.v1","Kind":"run","exitCode":null,"schema":"hookrun.run.v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []struct {
			schema string
			std    any
			ours   any
		}{
			{SchemaDelivery, &Delivery{}, &Delivery{}},
			{SchemaRunRequest, &RunRequest{}, &RunRequest{}},
			{SchemaRun, &Run{}, &Run{}},
		} {
			stdErr := json.Unmarshal(data, c.std)
			err := Decode(data, c.schema, c.ours)
			if stdErr != nil {
				if err == nil {
					t.Fatalf("encoding/json refuses %q (%v), Decode took it", data, stdErr)
				}
				continue
			}
			var head struct{ Schema string }
			_ = json.Unmarshal(data, &head) // as Decode's check sees it
			if err != nil {
				if head.Schema != c.schema && strings.Contains(err.Error(), "schema") {
					continue // refused for its schema name, as it should be
				}
				t.Fatalf("encoding/json takes %q, Decode refuses it: %v", data, err)
			}
			if normalize(c.ours) != normalize(c.std) {
				t.Fatalf("%q decodes to\n%s\nwith encoding/json to\n%s", data, normalize(c.ours), normalize(c.std))
			}
		}
	})
}

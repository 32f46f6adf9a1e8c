package message

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSchemas_DescribeEveryField pins the JSON Schemas to the Go types: a
// field added to a message without its schema (or the reverse) fails here.
func TestSchemas_DescribeEveryField(t *testing.T) {
	for _, tc := range []struct {
		schema string
		v      any
	}{
		{SchemaDelivery, Delivery{}},
		{SchemaRunRequest, RunRequest{}},
		{SchemaRun, Run{}},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			raw, err := Schemas.ReadFile("schemas/" + tc.schema + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			var fields []string
			rt := reflect.TypeOf(tc.v)
			for i := 0; i < rt.NumField(); i++ {
				name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
				fields = append(fields, name)
				if _, ok := doc.Properties[name]; !ok {
					t.Errorf("field %q missing from schema", name)
				}
			}
			var props []string
			for p := range doc.Properties {
				props = append(props, p)
			}
			sort.Strings(props)
			for _, p := range props {
				if !contains(fields, p) {
					t.Errorf("schema property %q has no Go field", p)
				}
			}
			for _, r := range doc.Required {
				if !contains(fields, r) {
					t.Errorf("required %q has no Go field", r)
				}
			}
		})
	}
}

func TestDecode_RefusesOtherSchema(t *testing.T) {
	b, _ := json.Marshal(Delivery{Schema: SchemaDelivery, ID: "dlv_1"})
	var r RunRequest
	if err := Decode(b, SchemaRunRequest, &r); err == nil {
		t.Fatal("decoding a delivery as a run request succeeded")
	}
	var d Delivery
	if err := Decode(b, SchemaDelivery, &d); err != nil || d.ID != "dlv_1" {
		t.Fatalf("Decode = %v, %+v", err, d)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// Decode refuses a message of another schema, for each message type and
// for any other target.
func TestDecode_RefusesAnotherSchema(t *testing.T) {
	run := []byte(`{"schema":"` + SchemaRun + `","id":"run_1","status":"queued"}`)
	if err := Decode(run, SchemaDelivery, &Delivery{}); err == nil {
		t.Fatal("a run decoded as a delivery")
	}
	if err := Decode(run, SchemaRunRequest, &RunRequest{}); err == nil {
		t.Fatal("a run decoded as a run request")
	}
	var r Run
	if err := Decode(run, SchemaRun, &r); err != nil || r.ID != "run_1" || r.Status != "queued" {
		t.Fatalf("run: %+v %v", r, err)
	}
	var m map[string]any
	if err := Decode(run, SchemaDelivery, &m); err == nil {
		t.Fatal("a run decoded into a map as a delivery")
	}
	if err := Decode(run, SchemaRun, &m); err != nil || m["id"] != "run_1" {
		t.Fatalf("map: %v %v", m, err)
	}
	if err := Decode([]byte(`{"schema":`), SchemaRun, &r); err == nil {
		t.Fatal("truncated JSON decoded")
	}
}

func TestStatusPayload_CutsAtACharacterBoundary(t *testing.T) {
	small := []byte(`{"a":"é"}`)
	if got := StatusPayload(small); got != string(small) {
		t.Errorf("small body changed: %q", got)
	}
	// "é" is 2 bytes: one starting at the last byte within the bound is cut
	// in two at MaxStatusPayload.
	body := append(bytes.Repeat([]byte("x"), MaxStatusPayload-1), []byte("éxyz")...)
	got := StatusPayload(body)
	if len(got) != MaxStatusPayload-1 || !utf8.ValidString(got) {
		t.Errorf("cut at %d bytes, valid UTF-8 %v; want %d bytes, valid", len(got), utf8.ValidString(got), MaxStatusPayload-1)
	}
	// Not text: cut at the bound.
	bin := bytes.Repeat([]byte{0x80}, MaxStatusPayload+10)
	if got := StatusPayload(bin); len(got) != MaxStatusPayload {
		t.Errorf("binary body cut at %d bytes, want %d", len(got), MaxStatusPayload)
	}
}

func TestAnotherVersion_IsTheSameKindInAnotherVersion(t *testing.T) {
	for _, c := range []struct {
		got, want string
		another   bool
	}{
		{"hookrun.delivery.v2", SchemaDelivery, true},
		{SchemaDelivery, SchemaDelivery, false},
		{"hookrun.run.v1", SchemaDelivery, false},
		{"", SchemaDelivery, false},
		{"garbage", SchemaDelivery, false},
		{"hookrun.runrequest.v3", SchemaRunRequest, true},
	} {
		if got := AnotherVersion(c.got, c.want); got != c.another {
			t.Errorf("AnotherVersion(%q, %q) = %v, want %v", c.got, c.want, got, c.another)
		}
	}
	if got := SchemaOf("", []byte(`{"schema":"hookrun.delivery.v2"}`)); got != "hookrun.delivery.v2" {
		t.Errorf("SchemaOf without a header = %q", got)
	}
	if got := SchemaOf("h", []byte(`{"schema":"b"}`)); got != "h" {
		t.Errorf("SchemaOf with a header = %q, want the header's", got)
	}
}

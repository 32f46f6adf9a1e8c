package message

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
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

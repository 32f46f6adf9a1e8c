package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hookrun/hookrun/pkg/payload"
	"github.com/hookrun/hookrun/pkg/resource"
)

// TestExtractBodyKey_RemovesOnlyTheKeyMember pins the exact bytes left
// after the key member is taken out: everything else as sent.
func TestExtractBodyKey_RemovesOnlyTheKeyMember(t *testing.T) {
	for _, tt := range []struct {
		body, key, rest string
		err             error
	}{
		{body: `{"api_key":"K"}`, key: "K", rest: `{}`},
		{body: `{"api_key":"K","a":1}`, key: "K", rest: `{"a":1}`},
		{body: `{"a":1,"api_key":"K"}`, key: "K", rest: `{"a":1}`},
		{body: `{"a":1,"api_key":"K","b":[1,{"api_key":"nested"}]}`, key: "K", rest: `{"a":1,"b":[1,{"api_key":"nested"}]}`},
		{body: "{ \"api_key\" : \"K\" ,\n  \"a\": 1.50 }\n", key: "K", rest: "{ \"a\": 1.50 }\n"},
		{body: "{\n  \"a\": \"<&>\",\n  \"api_key\": \"K\"\n}", key: "K", rest: "{\n  \"a\": \"<&>\"\n}"},
		{body: `{"api\u005fkey":"K\u0021","z":"\u00e9"}`, key: "K!", rest: `{"z":"\u00e9"}`},
		{body: `{"a":"x\"api_key\":\"no","api_key":"K"}`, key: "K", rest: `{"a":"x\"api_key\":\"no"}`},
		{body: `{"a":"}","api_key":"K","b":"{"}`, key: "K", rest: `{"a":"}","b":"{"}`},
		{body: `{"Api_Key":"K"}`, key: "", rest: `{"Api_Key":"K"}`},
		{body: `{}`, key: "", rest: `{}`},
		{body: `{"a":null}`, key: "", rest: `{"a":null}`},
		{body: `{"api_key":1}`, err: errInvalidCredentials},
		{body: `{"api_key":null}`, err: errInvalidCredentials},
		{body: `{"api_key":{"k":"K"}}`, err: errInvalidCredentials},
		{body: `{"api_key":"K","api_key":"L"}`, err: errInvalidCredentials},
		{body: `{"api_key":"K","a":{},"api\u005fkey":"L"}`, err: errInvalidCredentials},
		{body: ``, err: errInvalidBody},
		{body: `null`, err: errInvalidBody},
		{body: `[{"api_key":"K"}]`, err: errInvalidBody},
		{body: `"api_key"`, err: errInvalidBody},
		{body: `{"api_key":"K"} {}`, err: errInvalidBody},
		{body: `{"api_key":"K",}`, err: errInvalidBody},
		{body: `api_key=K`, err: errInvalidBody},
		{body: `{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, err: errInvalidBody},
		// A UTF-8 byte order mark is read past, and kept.
		{body: bom + `{"api_key":"K","a":1}`, key: "K", rest: bom + `{"a":1}`},
		{body: bom + ` {"a":1, "api_key":"K"}`, key: "K", rest: bom + ` {"a":1}`},
		{body: bom + `{"a":1}`, key: "", rest: bom + `{"a":1}`},
		{body: bom, err: errInvalidBody},
		{body: bom + bom + `{"api_key":"K"}`, err: errInvalidBody},
		{body: `{"api_key":"K"}` + bom, err: errInvalidBody},
	} {
		key, rest, err := extractBodyKey([]byte(tt.body), "api_key")
		if !errors.Is(err, tt.err) {
			t.Errorf("%q: err %v, want %v", tt.body, err, tt.err)
			continue
		}
		if err == nil && (key != tt.key || string(rest) != tt.rest) {
			t.Errorf("%q: key %q rest %q, want %q %q", tt.body, key, rest, tt.key, tt.rest)
		}
	}
}

// bom is the UTF-8 byte order mark.
const bom = "\xEF\xBB\xBF"

// TestAuth_TakesBodyKeyAfterABOM: a JSON body that starts with a byte
// order mark (.NET senders) gives its key as any other, and is stored as
// sent minus the key member, the mark included.
func TestAuth_TakesBodyKeyAfterABOM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	key := e.apiKey(nil, nil, nil)
	w := e.webhook("body-keyed", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "api_key"}}})
	r := e.post(hookPath(w), bom+`{"event":"ticket.created","api_key":"`+key+`"}`, "Content-Type", "application/json")
	wantAccepted(t, r, 202)
	d := e.stored(r.Acc.DeliveryID)
	if want := bom + `{"event":"ticket.created"}`; string(d.Body) != want {
		t.Fatalf("stored body %q, want %q", d.Body, want)
	}
	if d.Header["Content-Length"] != nil || strings.Contains(string(e.storedMsg(r.Acc.DeliveryID).Data), key) {
		t.Fatalf("stored delivery holds the key or its length: %v", d.Header)
	}
	wantError(t, e.post(hookPath(w), bom+`["api_key"]`, "Content-Type", "application/json"), 400, "invalid_body")
}

// refMember is what encoding/json makes of a body: its top-level members
// in order, names unescaped, values raw.
type refMember struct {
	name string
	raw  json.RawMessage
}

// refMembers decodes body with encoding/json's token reader; ok is false
// when body is not one JSON object.
func refMembers(body []byte) ([]refMember, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []refMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		out = append(out, refMember{tok.(string), raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err == nil || !json.Valid(body) {
		return nil, false // something after the object
	}
	return out, true
}

// FuzzExtractBodyKey checks extractBodyKey against encoding/json: no
// panic; a body encoding/json cannot read as one object (past a byte order
// mark, which encoding/json does not skip) is invalid_body; otherwise the
// key is the member's string value as encoding/json decodes it, and the
// rest is the same mark, if any, then valid JSON holding exactly the other
// members, with their raw bytes unchanged and in order.
func FuzzExtractBodyKey(f *testing.F) {
	f.Add([]byte(`{"api_key":"hk_abc_def","a":1}`), "api_key")
	f.Add([]byte(`{"a":[1,2,{"api_key":"x"}], "test_key" : "K" }`), "test_key")
	f.Add([]byte(`{"api\u005fkey":"K\n","b":"\ud83d\ude00"}`), "api_key")
	f.Add([]byte("{\"a\":\"\xff\",\"api_key\":\"\xfe\"}"), "api_key")
	f.Add([]byte(`{"api_key":"K","api_key":"L"}`), "api_key")
	f.Add([]byte(`{"api_key":true}`), "api_key")
	f.Add([]byte(`[1,2]`), "api_key")
	f.Add([]byte(`{"":""}`), "")
	f.Add([]byte(` {} `), "k")
	f.Add([]byte(bom+`{"api_key":"K","a":1}`), "api_key")
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		orig := bytes.Clone(body)
		key, rest, err := extractBodyKey(body, name)
		mark := orig[:len(orig)-len(payload.TrimBOM(orig))]
		members, ok := refMembers(orig[len(mark):])
		if !ok {
			if !errors.Is(err, errInvalidBody) {
				t.Fatalf("%q: encoding/json refuses it, extractBodyKey says %v", orig, err)
			}
			return
		}
		if errors.Is(err, errInvalidBody) {
			t.Fatalf("%q: encoding/json reads an object, extractBodyKey says invalid", orig)
		}
		var hits []refMember
		var others []refMember
		for _, m := range members {
			if m.name == name {
				hits = append(hits, m)
			} else {
				others = append(others, m)
			}
		}
		var want string
		wantErr := len(hits) > 1
		if len(hits) == 1 {
			wantErr = json.Unmarshal(hits[0].raw, &want) != nil || hits[0].raw[0] != '"'
		}
		if wantErr {
			if !errors.Is(err, errInvalidCredentials) {
				t.Fatalf("%q name %q: err %v, want invalid_credentials", orig, name, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q name %q: unexpected %v", orig, name, err)
		}
		if !bytes.HasPrefix(rest, mark) {
			t.Fatalf("%q: rest %q lost the byte order mark", orig, rest)
		}
		if len(hits) == 0 {
			if key != "" || !bytes.Equal(rest, orig) {
				t.Fatalf("%q without %q: key %q rest %q, want the body unchanged", orig, name, key, rest)
			}
			return
		}
		if key != want {
			t.Fatalf("%q: key %q, encoding/json reads %q", orig, key, want)
		}
		got, ok := refMembers(rest[len(mark):])
		if !ok || len(got) != len(others) {
			t.Fatalf("%q: rest %q is not the other %d members", orig, rest, len(others))
		}
		for i := range got {
			if got[i].name != others[i].name || !bytes.Equal(got[i].raw, others[i].raw) {
				t.Fatalf("%q: rest %q changed member %d", orig, rest, i)
			}
		}
	})
}

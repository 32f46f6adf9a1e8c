package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

func testWebhook(auth resource.Auth) *resource.Webhook {
	w := &resource.Webhook{
		TypeMeta: resource.TypeMeta{APIVersion: resource.APIVersion, Kind: resource.KindWebhook},
		Metadata: resource.Meta{Name: "w"},
		Spec:     resource.WebhookSpec{Job: "j", Auth: auth},
	}
	if err := w.Validate(); err != nil {
		panic(err)
	}
	w.Status.EndpointPath = "/v1/hooks/ep_abc"
	if a := auth.APIKey; a != nil && a.In == "path" {
		w.Status.EndpointPath += "/{" + a.Name + "}"
	}
	return w
}

// Every signature profile: what send signs, the profile verifies.
func TestBuildDelivery_SignsForEveryProfile(t *testing.T) {
	now := time.Now()
	body := []byte(`{"ref":"refs/heads/main","id":"evt_body","event_id":"evt_body","type":"x"}`)
	for _, name := range signature.Names() {
		t.Run(name, func(t *testing.T) {
			p, _ := signature.Lookup(name)
			secret, err := p.GenerateSecret()
			if err != nil {
				t.Fatal(err)
			}
			w := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: name, SecretRef: "s"}})
			req, err := buildDelivery(context.Background(), "http://ingress", w, body, &sendOptions{secret: secret, eventID: "evt-42", contentType: "application/json"}, now)
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != "POST" || req.URL.String() != "http://ingress/v1/hooks/ep_abc" || req.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("request %s %s %v", req.Method, req.URL, req.Header)
			}
			sent, _ := io.ReadAll(req.Body)
			if _, err := p.Verify(signature.Request{Header: req.Header, Body: sent}, []string{secret}, now); err != nil {
				t.Fatalf("the profile does not verify what send signed: %v (headers %v)", err, req.Header)
			}
			if _, err := p.Verify(signature.Request{Header: req.Header, Body: sent}, []string{"another-secret-of-enough-length-000"}, now); err == nil {
				t.Fatal("verified with the wrong secret")
			}
		})
	}
}

func TestBuildDelivery_PlacesTheAPIKeyWhereTheWebhookWantsIt(t *testing.T) {
	const key = "hk_id_secret"
	cases := []struct {
		in, name string
		check    func(t *testing.T, url string, hdr map[string][]string, body string)
	}{
		{"header", "X-API-KEY", func(t *testing.T, u string, h map[string][]string, b string) {
			if h["X-Api-Key"][0] != key {
				t.Fatalf("header: %v", h)
			}
		}},
		{"header", "test-key", func(t *testing.T, u string, h map[string][]string, b string) {
			if h["Test-Key"][0] != key {
				t.Fatalf("header: %v", h)
			}
		}},
		{"query", "test_key", func(t *testing.T, u string, h map[string][]string, b string) {
			if u != "http://ingress/v1/hooks/ep_abc?test_key="+key {
				t.Fatalf("url %s", u)
			}
		}},
		{"path", "test_key", func(t *testing.T, u string, h map[string][]string, b string) {
			if u != "http://ingress/v1/hooks/ep_abc/"+key {
				t.Fatalf("url %s", u)
			}
		}},
		{"body", "test_key", func(t *testing.T, u string, h map[string][]string, b string) {
			var m map[string]any
			if json.Unmarshal([]byte(b), &m) != nil || m["test_key"] != key || m["message"] != "hi" {
				t.Fatalf("body %s", b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.in+"/"+tc.name, func(t *testing.T) {
			w := testWebhook(resource.Auth{APIKey: &resource.APIKeyAuth{In: tc.in, Name: tc.name}})
			req, err := buildDelivery(context.Background(), "http://ingress", w, []byte(`{"message":"hi"}`), &sendOptions{key: key}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(req.Body)
			tc.check(t, req.URL.String(), req.Header, string(b))
		})
	}
	// Body placement needs a JSON object.
	w := testWebhook(resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "k"}})
	if _, err := buildDelivery(context.Background(), "http://ingress", w, []byte(`[1]`), &sendOptions{key: key}, time.Now()); exitCode(err) != codeUsage {
		t.Fatalf("array body with a body key: %v", err)
	}
}

func TestBuildDelivery_RefusesWhatCannotBeSent(t *testing.T) {
	t.Setenv("HOOKRUN_API_KEY", "")
	t.Setenv("HOOKRUN_WEBHOOK_SECRET", "")
	none := testWebhook(resource.Auth{})
	signed := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "s"}})
	keyed := testWebhook(resource.Auth{APIKey: &resource.APIKeyAuth{}})
	getOnly := testWebhook(resource.Auth{})
	getOnly.Spec.Methods = []string{"GET"}
	cases := []struct {
		name string
		w    *resource.Webhook
		body string
		so   sendOptions
		msg  string
	}{
		{"signed without a secret", signed, "{}", sendOptions{}, "--secret"},
		{"keyed without a key", keyed, "{}", sendOptions{}, "--key"},
		{"event id without an idempotency header", none, "{}", sendOptions{eventID: "e"}, "spec.idempotencyHeader"},
		{"GET with a body", none, "{}", sendOptions{method: "get"}, "GET delivery has no body"},
		{"bad header", none, "", sendOptions{headers: []string{"nocolon"}}, "--header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildDelivery(context.Background(), "http://ingress", tc.w, []byte(tc.body), &tc.so, time.Now())
			if exitCode(err) != codeUsage || !strings.Contains(errMessage(err), tc.msg) {
				t.Fatalf("error %v, want a usage error about %q", err, tc.msg)
			}
		})
	}
	// A GET-only webhook is sent a GET without a body; an idempotency header carries --event-id.
	req, err := buildDelivery(context.Background(), "http://ingress", getOnly, nil, &sendOptions{}, time.Now())
	if err != nil || req.Method != "GET" || req.Body != nil {
		t.Fatalf("GET-only webhook: %v %v", req, err)
	}
	none.Spec.IdempotencyHeader = "X-Request-Id"
	req, err = buildDelivery(context.Background(), "http://ingress", none, []byte("{}"), &sendOptions{eventID: "e-1", headers: []string{"X-Extra: yes"}}, time.Now())
	if err != nil || req.Header.Get("X-Request-Id") != "e-1" || req.Header.Get("X-Extra") != "yes" {
		t.Fatalf("idempotency header: %v %v", req.Header, err)
	}
	// The secret also comes from HOOKRUN_WEBHOOK_SECRET.
	t.Setenv("HOOKRUN_WEBHOOK_SECRET", "from-env")
	if _, err := buildDelivery(context.Background(), "http://ingress", signed, []byte("{}"), &sendOptions{}, time.Now()); err != nil {
		t.Fatalf("secret from the environment: %v", err)
	}
}

func TestReadData_TextFileOrStdin(t *testing.T) {
	f := writeFile(t, t.TempDir(), "p.json", `{"a":1}`)
	for in, want := range map[string]string{`{"b":2}`: `{"b":2}`, "@" + f: `{"a":1}`, "@-": "from stdin", "": ""} {
		got, err := readData(in, strings.NewReader("from stdin"))
		if err != nil || string(got) != want {
			t.Errorf("readData(%q) = %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := readData("@/nonexistent/file", nil); err == nil {
		t.Error("missing file: want an error")
	}
}

// Slack's event id is the body's "event_id": send --event-id puts it there
// (before, Slack's Sign dropped it and every send was a new event); without
// --event-id the body is sent as given (slash commands carry none, and are
// named by their signature).
func TestBuildDelivery_GivesASlackBodyTheEventIDAskedFor(t *testing.T) {
	p, _ := signature.Lookup("slack")
	secret, err := p.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	w := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: "slack", SecretRef: "s"}})
	now := time.Now()
	for _, tc := range []struct{ body, eventID, wantID, wantBody string }{
		{`{"type":"event_callback"}`, "Ev1", "Ev1", `{"event_id":"Ev1","type":"event_callback"}`},
		{`{"type":"event_callback","event_id":"EvBody"}`, "Ev1", "EvBody", `{"type":"event_callback","event_id":"EvBody"}`},
		{`{"type":"event_callback"}`, "", "", `{"type":"event_callback"}`},
		{`command=/deploy&text=prod`, "", "", `command=/deploy&text=prod`},
	} {
		req, err := buildDelivery(context.Background(), "http://ingress", w, []byte(tc.body), &sendOptions{secret: secret, eventID: tc.eventID}, now)
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		sent, _ := io.ReadAll(req.Body)
		id, err := p.Verify(signature.Request{Header: req.Header, Body: sent}, []string{secret}, now)
		if tc.wantID == "" && strings.HasPrefix(id, "v0sig:") {
			id = "" // none in the body: the ingress names it by its signature
		}
		if err != nil || id != tc.wantID || string(sent) != tc.wantBody {
			t.Fatalf("%s with --event-id %q: sent %s, event id %q (err %v), want %s and %q", tc.body, tc.eventID, sent, id, err, tc.wantBody, tc.wantID)
		}
	}
	if _, err := buildDelivery(context.Background(), "http://ingress", w, []byte(`command=/deploy`), &sendOptions{secret: secret, eventID: "Ev1"}, now); exitCode(err) != codeUsage || !strings.Contains(errMessage(err), `"event_id"`) {
		t.Fatalf("--event-id with a form body: %v, want a usage error about event_id", err)
	}
}

// Stripe's event id is the body's top-level "id" (no header carries it):
// send puts --event-id, or a random id, there when the body has none, so
// the ingress does not answer missing_event_id.
func TestBuildDelivery_GivesAStripeBodyItsEventID(t *testing.T) {
	p, _ := signature.Lookup(stripeProfile)
	secret, err := p.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	w := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: stripeProfile, SecretRef: "s"}})
	now := time.Now()
	cases := []struct {
		name, body, eventID string
		wantID, wantBody    string // wantBody "": not checked
	}{
		{"id added from --event-id", `{"type":"invoice.paid","data":{"object":{"id":"in_1"}}}`, "evt_42", "evt_42", `{"id":"evt_42","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`},
		{"empty object", ` {} `, "evt_42", "evt_42", `{"id":"evt_42"}`},
		{"no body", ``, "evt_42", "evt_42", `{"id":"evt_42"}`},
		{"the body's id is kept", `{"id":"evt_body","type":"x"}`, "", "evt_body", `{"id":"evt_body","type":"x"}`},
		{"a random id by default", `{"type":"x"}`, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := buildDelivery(context.Background(), "http://ingress", w, []byte(tc.body), &sendOptions{secret: secret, eventID: tc.eventID, contentType: "application/json"}, now)
			if err != nil {
				t.Fatal(err)
			}
			sent, _ := io.ReadAll(req.Body)
			id, err := p.Verify(signature.Request{Header: req.Header, Body: sent}, []string{secret}, now)
			if err != nil {
				t.Fatalf("the ingress would refuse %s: %v", sent, err)
			}
			if tc.wantID == "" && !strings.HasPrefix(id, "evt_") || tc.wantID != "" && id != tc.wantID {
				t.Fatalf("event id %q, want %q (body %s)", id, tc.wantID, sent)
			}
			if tc.wantBody != "" && string(sent) != tc.wantBody {
				t.Fatalf("body %s, want %s", sent, tc.wantBody)
			}
		})
	}
	for _, body := range []string{`[1]`, `"text"`, `null`, `{"id":42}`, `{"id":""}`, `not json`} {
		if _, err := buildDelivery(context.Background(), "http://ingress", w, []byte(body), &sendOptions{secret: secret, eventID: "evt_1"}, now); exitCode(err) != codeUsage || !strings.Contains(errMessage(err), `"id"`) {
			t.Errorf("body %s: %v, want a usage error about the event id", body, err)
		}
	}
}

// An API key, event id or header no header can carry (a newline pasted
// with it) is a setting to fix (2), named, its value never printed: it used
// to fail only when sent, as "cannot reach the ingress" (5, retry later).
func TestCLI_SendRefusesAKeyNoHeaderCanCarry(t *testing.T) {
	f := newFakeAPI(t)
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j","methods":["POST"],"auth":{"apiKey":{"in":"header","name":"X-Api-Key"}}},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	for _, tc := range []struct {
		name, env string // HOOKRUN_API_KEY
		args      []string
		setting   string
	}{
		{"--key", "", []string{"--key", "hk_x\nSECRETPART"}, "--key"},
		{"HOOKRUN_API_KEY", "hk_x\rSECRETPART", nil, "HOOKRUN_API_KEY"},
		{"--event-id", "hk_x", []string{"--event-id", "e\n1"}, "--event-id"},
		{"--header", "hk_x", []string{"-H", "Authorization: Bearer x\nSECRETPART"}, `--header "Authorization"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOOKRUN_API_KEY", tc.env)
			r := f.execCLI(append([]string{"send", "w", "-d", "{}"}, tc.args...)...)
			if r.Code != codeUsage || !strings.Contains(r.Stderr, tc.setting) || strings.Contains(r.Stderr, "SECRETPART") {
				t.Fatalf("want exit %d naming %s, not its value, got %s", codeUsage, tc.setting, r)
			}
			if got := f.takeChanges(); len(got) > 0 {
				t.Fatalf("sent %v", got)
			}
		})
	}
	t.Setenv("HOOKRUN_API_KEY", "hk_x")
	if r := f.execCLI("send", "w", "-d", "{}"); r.Code != codeOK {
		t.Fatalf("a good key: %s", r)
	}
}

// A signed webhook that names its event id header (spec.idempotencyHeader,
// profiles whose id header is unsigned): send puts --event-id there, where
// the ingress reads it, not in the profile's own header.
func TestBuildDelivery_PutsTheEventIDInTheWebhooksIdempotencyHeader(t *testing.T) {
	now := time.Now()
	p, _ := signature.Lookup("generic")
	secret, err := p.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	w := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "s"}})
	w.Spec.IdempotencyHeader = "X-Request-Id"
	req, err := buildDelivery(context.Background(), "http://ingress", w, []byte(`{}`), &sendOptions{secret: secret, eventID: "req-7"}, now)
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := io.ReadAll(req.Body)
	ingressView, _ := signature.WithEventIDHeader(p, "X-Request-Id")
	id, err := ingressView.Verify(signature.Request{Header: req.Header, Body: sent}, []string{secret}, now)
	if err != nil || id != "req-7" || req.Header.Get("X-Event-Id") != "" {
		t.Fatalf("event id %q (err %v), X-Event-Id %q: want req-7 in X-Request-Id only", id, err, req.Header.Get("X-Event-Id"))
	}
}

// --header naming that header, without --event-id, is the event id, as a
// sender repeating its delivery id sends it: two sends, one event.
func TestBuildDelivery_AHeaderNamingTheIdempotencyHeaderIsTheEventID(t *testing.T) {
	now := time.Now()
	p, _ := signature.Lookup("generic")
	secret, err := p.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	w := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "s"}})
	w.Spec.IdempotencyHeader = "X-Request-Id"
	ingressView, _ := signature.WithEventIDHeader(p, "X-Request-Id")
	for range 2 {
		req, err := buildDelivery(context.Background(), "http://ingress", w, []byte(`{}`), &sendOptions{secret: secret, headers: []string{"x-request-id: r1"}}, now)
		if err != nil {
			t.Fatal(err)
		}
		sent, _ := io.ReadAll(req.Body)
		id, err := ingressView.Verify(signature.Request{Header: req.Header, Body: sent}, []string{secret}, now)
		if err != nil || id != "r1" || len(req.Header.Values("X-Request-Id")) != 1 {
			t.Fatalf("event id %q (err %v), X-Request-Id %q: want r1, once", id, err, req.Header.Values("X-Request-Id"))
		}
	}
}

// A --header naming the profile's own event id header (X-GitHub-Delivery,
// webhook-id, …) is the event id, as the webhook's spec.idempotencyHeader
// is: sent twice, the delivery is the same event, its header sent once.
func TestBuildDelivery_AHeaderNamingTheProfilesEventIDHeaderIsTheEventID(t *testing.T) {
	now := time.Now()
	for profile, header := range map[string]string{
		"generic":           "X-Event-Id",
		"github":            "x-github-delivery",
		"gitlab":            "Idempotency-Key",
		"shopify":           "X-Shopify-Webhook-Id",
		"standard-webhooks": "webhook-id",
	} {
		p, _ := signature.Lookup(profile)
		secret, err := p.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		w := testWebhook(resource.Auth{Signature: &resource.SignatureAuth{Profile: profile, SecretRef: "s"}})
		for range 2 {
			req, err := buildDelivery(context.Background(), "http://ingress", w, []byte(`{}`), &sendOptions{secret: secret, headers: []string{header + ": same-1"}}, now)
			if err != nil {
				t.Fatal(err)
			}
			sent, _ := io.ReadAll(req.Body)
			id, err := p.Verify(signature.Request{Header: req.Header, Body: sent}, []string{secret}, now)
			if err != nil || id != "same-1" || len(req.Header.Values(header)) != 1 {
				t.Fatalf("%s: event id %q (err %v), %s %q: want same-1, once", profile, id, err, header, req.Header.Values(header))
			}
		}
	}
}

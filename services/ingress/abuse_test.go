package ingress

// Bad input (issue 9): every abusive request gets its API.md answer, is
// not stored unless it is an ordinary delivery in disguise, and leaves the
// service ready. Slow headers, slow bodies and huge headers are in
// server_test.go; the body limit's exact edges in deliver_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// raw sends a request exactly as written (no client-side cleaning or
// validation of the target and headers) and returns the answer.
func (e *env) raw(method, target string, body []byte, headers ...string) reply {
	e.t.Helper()
	c := e.dial()
	defer c.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: ingress\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, len(body))
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := c.Write(b.Bytes()); err != nil {
		e.t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: rb}
	if resp.StatusCode < 300 {
		_ = json.Unmarshal(rb, &r.Acc)
	} else {
		var eb struct {
			Error *json.RawMessage `json:"error"`
		}
		if json.Unmarshal(rb, &eb) == nil && eb.Error != nil {
			_ = json.Unmarshal(*eb.Error, &r.Err)
		}
	}
	return r
}

// streamMsgs is the number of messages in DELIVERIES.
func (e *env) streamMsgs() uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := e.deliveries(ctx)
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// TestAbuse_PathTricksFindNoEndpoint: dot segments, encoded slashes and
// dots, doubled slashes and NULs never reach another route or another
// webhook: 404 endpoint_not_found (or, on a path-key webhook, an invalid
// key), nothing stored. An endpoint id with percent-encoded characters is
// the same id, so it reaches its own webhook and nothing else.
func TestAbuse_PathTricksFindNoEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("target", resource.WebhookSpec{})
	pw := e.webhook("path-keyed", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "path"}}})
	ep := w.Status.EndpointID
	for _, target := range []string{
		"/v1/hooks/../healthz",
		"/v1/hooks/../../readyz",
		"/v1/hooks/%2e%2e/readyz",
		"/v1/hooks/%2E%2E%2Fmetrics",
		"/v1/hooks/" + ep + "%2F..%2Fx",
		"/v1/hooks/" + ep + "/..",
		"/v1/hooks/" + ep + "/%2e%2e",
		"/v1/hooks/x/../" + ep,
		"/v1/hooks/./" + ep,
		"/v1/hooks//" + ep,
		"//v1/hooks/" + ep,
		"/v1/hooks/" + ep + "/a/b",
		"/v1/hooks/" + ep + "%00",
		"/v1/hooks/" + ep + "%2F",
		"/v1/hooks/%65" + ep[1:], // "e" percent-encoded
		"/v1/hooks/" + strings.ToUpper(ep),
		"/v1/hooks/" + ep + "?/../../healthz",
		"/v1/hooks",
		"/v1/hooks/",
	} {
		r := e.raw("POST", target, []byte("{}"))
		switch target {
		case "/v1/hooks/" + ep + "?/../../healthz": // the query is just a query
			wantAccepted(t, r, 202)
			continue
		case "/v1/hooks/%65" + ep[1:]: // %65 is "e": the same endpoint id
			wantAccepted(t, r, 202)
			continue
		}
		wantError(t, r, 404, "endpoint_not_found")
	}
	for _, key := range []string{"..", "%2e%2e", "hk_a%2Fb_c", "hk_a_b%2F..%2F..%2Fhealthz"} {
		wantError(t, e.raw("POST", hookPath(pw, key), []byte("{}")), 401, "invalid_credentials")
	}
	if n := len(e.storedFor(w)); n != 2 {
		t.Fatalf("%d deliveries stored, want only the one with a query and the encoded one", n)
	}
	if n := len(e.storedFor(pw)); n != 0 {
		t.Fatalf("%d deliveries stored on the path-key webhook", n)
	}
	e.requireReady()
}

// TestAbuse_SubjectTokensInNamesCannotInject: '.', '*' and '>' in endpoint
// ids are just unknown ids; in event ids they are data (the message id and
// the run id carry them, never a subject); and a webhook whose stored name
// holds them (hand-written config) publishes nothing.
func TestAbuse_SubjectTokensInNamesCannotInject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("tokens", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	for _, id := range []string{"ep.x", "*", ">", "ep_x.>", "%2A", "%3E", "ep_x.*.y"} {
		wantError(t, e.raw("POST", "/v1/hooks/"+id, []byte("{}")), 404, "endpoint_not_found")
	}
	for _, eventID := range []string{"evt.*.>", ">", "a.b.c", "hookrun.deliveries.default.other.dlv_x"} {
		r := e.post(hookPath(w), "{}", "Idempotency-Key", eventID)
		wantAccepted(t, r, 202)
		m := e.storedMsg(r.Acc.DeliveryID)
		var d struct {
			EventID string `json:"eventId"`
		}
		_ = json.Unmarshal(m.Data, &d)
		if m.Subject != bus.DeliverySubject("default", "tokens", r.Acc.DeliveryID) || d.EventID != eventID {
			t.Fatalf("event id %q stored on %s as %q", eventID, m.Subject, d.EventID)
		}
	}

	// A webhook stored by hand with a name that is not a subject token.
	evil := resource.Webhook{TypeMeta: resource.TypeMeta{APIVersion: resource.APIVersion, Kind: resource.KindWebhook},
		Metadata: resource.Meta{Name: "evil.*", Namespace: "default", UID: "uid-evil"},
		Spec:     resource.WebhookSpec{Job: "report", Methods: []string{"POST"}, MaxBodyBytes: 1 << 20},
		Status:   resource.WebhookStatus{EndpointID: "ep_evilendpointidevilendpointidev"}}
	b, _ := json.Marshal(evil)
	kv, err := e.js.KeyValue(context.Background(), bus.BucketWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "default.evil-hand-written", b); err != nil {
		t.Fatal(err)
	}
	before := e.streamMsgs()
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := e.post("/v1/hooks/"+evil.Status.EndpointID, "{}"); r.Err.Code != "job_not_runnable" {
			return fmt.Errorf("answer %d %s", r.Status, r.Body)
		}
		return nil
	})
	if after := e.streamMsgs(); after != before {
		t.Fatalf("a webhook named %q stored %d messages", evil.Metadata.Name, after-before)
	}
	e.requireReady()
}

// TestAbuse_InvalidUTF8: bytes that are not UTF-8 are stored as sent where
// they are data (body, other headers), refused where they would be
// silently rewritten (event ids), and never match an endpoint or a key.
func TestAbuse_InvalidUTF8(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("utf8", resource.WebhookSpec{IdempotencyHeader: "Idempotency-Key"})
	bk := e.webhook("utf8-body-key", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "api_key"}}})
	key := e.apiKey(nil, nil, nil)

	body := []byte("{\"a\":\"\xff\xfe\",\"b\":\"\xc3\x28\"}")
	r := e.raw("POST", hookPath(w)+"?q=%ff", body, "X-Bytes", "\xff\xfe")
	wantAccepted(t, r, 202)
	if d := e.stored(r.Acc.DeliveryID); !bytes.Equal(d.Body, body) {
		t.Fatalf("stored body %q, want %q", d.Body, body)
	}
	wantError(t, e.raw("POST", hookPath(w), []byte("{}"), "Idempotency-Key", "evt-\xff"), 400, "missing_event_id")
	wantError(t, e.raw("POST", hookPath(w), []byte("{}"), "Idempotency-Key", "evt\t1"), 400, "missing_event_id")
	wantError(t, e.raw("POST", "/v1/hooks/%ff%fe", []byte("{}")), 404, "endpoint_not_found")
	wantError(t, e.raw("POST", "/v1/hooks/ep_\xff", []byte("{}")), 404, "endpoint_not_found")

	wantError(t, e.raw("POST", hookPath(bk), []byte("{\"api_key\":\""+key[:10]+"\xff\"}")), 401, "invalid_credentials")
	withKey := []byte("{\"a\":\"\xff\",\"api_key\":\"" + key + "\"}")
	r = e.raw("POST", hookPath(bk), withKey)
	wantAccepted(t, r, 202)
	if d := e.stored(r.Acc.DeliveryID); !bytes.Equal(d.Body, []byte("{\"a\":\"\xff\"}")) {
		t.Fatalf("stored body %q: the rest of the body must be kept byte for byte", d.Body)
	}
	e.requireReady()
}

// TestAbuse_DeeplyNestedJSON: a plain webhook stores any body as opaque
// bytes; where the ingress must parse (key in the body) nesting beyond the
// JSON decoder's limit is 400 invalid_body, and deep but legal nesting works.
func TestAbuse_DeeplyNestedJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	plain := e.webhook("nested", resource.WebhookSpec{})
	bk := e.webhook("nested-key", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "api_key"}}})
	key := e.apiKey(nil, nil, nil)
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

	deep := nest(200_000)
	r := e.post(hookPath(plain), deep, "Content-Type", "application/json")
	wantAccepted(t, r, 202)
	if d := e.stored(r.Acc.DeliveryID); len(d.Body) != len(deep) {
		t.Fatalf("stored %d bytes, want %d", len(d.Body), len(deep))
	}
	wantError(t, e.post(hookPath(bk), `{"a":`+nest(20_000)+`,"api_key":"`+key+`"}`), 400, "invalid_body")
	wantError(t, e.post(hookPath(bk), deep), 400, "invalid_body")
	legal := `{"a":` + nest(5_000) + `,"api_key":"` + key + `"}`
	r = e.post(hookPath(bk), legal)
	wantAccepted(t, r, 202)
	if d := e.stored(r.Acc.DeliveryID); string(d.Body) != `{"a":`+nest(5_000)+`}` {
		t.Fatal("the key was not cleanly removed from a deeply nested body")
	}
	e.requireReady()
}

// TestAbuse_WrongContentTypes: multipart in any disguise is 415 before
// anything else is looked at; other types are the sender's business, and
// a key in the body is found whatever the declared type.
func TestAbuse_WrongContentTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	bk := e.webhook("ct-body-key", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{In: "body", Name: "api_key"}}})
	key := e.apiKey(nil, nil, nil)
	body := `{"api_key":"` + key + `"}`
	for _, ct := range []string{"multipart/form-data; boundary=x", "MULTIPART/mixed", "\tmultipart/alternative"} {
		wantError(t, e.raw("POST", hookPath(bk), []byte(body), "Content-Type", ct), 415, "unsupported_media_type")
	}
	for _, ct := range []string{"text/plain", "application/xml", "", "garbage;;;==", "application/json; charset=latin1"} {
		wantAccepted(t, e.raw("POST", hookPath(bk), []byte(body), "Content-Type", ct), 202)
	}
	wantError(t, e.raw("POST", hookPath(bk), []byte("<xml api_key=\""+key+"\"/>"), "Content-Type", "application/xml"), 400, "invalid_body")
	wantError(t, e.raw("POST", hookPath(bk), []byte("api_key="+key), "Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_body")
	e.requireReady()
}

// TestAbuse_BodyJustOverTheLimitLeavesServiceHealthy: limit+1 bytes,
// declared or chunked or lying about its length, is 413 and not stored.
func TestAbuse_BodyJustOverTheLimitLeavesServiceHealthy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("limit", resource.WebhookSpec{MaxBodyBytes: 512})
	over := bytes.Repeat([]byte("z"), 513)
	wantError(t, e.raw("POST", hookPath(w), over), 413, "payload_too_large")
	wantError(t, e.post(hookPath(w), chunked(over)), 413, "payload_too_large")
	// Declares 10 bytes, sends 513: only the declared 10 are the body; the
	// rest is a malformed next request the server refuses on its own.
	c := e.dial()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: ingress\r\nContent-Length: 10\r\n\r\n%s", hookPath(w), over)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("declared body: %d", resp.StatusCode)
	}
	if d := e.storedFor(w); len(d) != 1 || len(d[0].Body) != 10 {
		t.Fatalf("stored %d deliveries, want the one 10-byte body", len(d))
	}
	e.requireReady()
}

// TestAbuse_ReplayedSignaturesOutsideTolerance: a captured, correctly
// signed delivery replayed once its timestamp is older (or newer) than the
// tolerance is 401 timestamp_out_of_tolerance for every timestamped
// profile; replayed inside the tolerance it is a duplicate, not a new run.
func TestAbuse_ReplayedSignaturesOutsideTolerance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	for _, name := range signature.Names() {
		p, _ := signature.Lookup(name)
		if signature.Tolerance(p) == 0 {
			continue
		}
		secret, _ := p.GenerateSecret()
		e.secret("replay-"+name, secret, "", 0)
		w := e.webhook("replay-"+name, resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: name, SecretRef: "replay-" + name}}})
		body := profileBody("replay-" + name)
		capture := func(at time.Time) *http.Request {
			return signed(e.request("POST", hookPath(w), body), name, body, secret, "evt-replay", at)
		}
		for _, at := range []time.Time{time.Now().Add(-6 * time.Minute), time.Now().Add(-time.Hour), time.Now().Add(6 * time.Minute)} {
			wantError(t, e.do(capture(at)), 401, "timestamp_out_of_tolerance")
		}
		fresh := capture(time.Now().Add(-time.Minute))
		first := e.do(fresh)
		wantAccepted(t, first, 202)
		again := e.do(capture(time.Now().Add(-time.Minute)))
		wantAccepted(t, again, 202)
		if !again.Acc.Duplicate || again.Acc.ExecutionID != first.Acc.ExecutionID {
			t.Fatalf("%s: replay inside the tolerance %s, want duplicate of %s", name, again.Body, first.Body)
		}
	}
	e.requireReady()
}

// TestAbuse_ATimestampInMillisecondsIsNamed: an authentic delivery whose
// signed timestamp is in milliseconds gets the 401 with a hint that says
// so, not only "outside the tolerance".
func TestAbuse_ATimestampInMillisecondsIsNamed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	secret := "ms-secret-0123456789abcdef"
	e.secret("ms", secret, "", 0)
	w := e.webhook("ms", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "generic", SecretRef: "ms"}}})
	body := []byte(`{"a":1}`)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	r := e.post(hookPath(w), body, "X-Timestamp", ts, "X-Event-Id", "evt-ms", "X-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	wantError(t, r, 401, "timestamp_out_of_tolerance")
	if !strings.Contains(r.Err.Message, "milliseconds") {
		t.Fatalf("message %q does not say the timestamp looks like milliseconds", r.Err.Message)
	}
}

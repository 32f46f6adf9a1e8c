package keys

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/secretbox"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

const testToken = "test-admin-token"

// testAPI is a keys service on a real, embedded NATS, served over HTTP.
type testAPI struct {
	t    *testing.T
	URL  string
	nc   *nats.Conn
	js   jetstream.JetStream
	box  *secretbox.Box
	svc  *Service
	logs *testenv.Buffer
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	return newTestAPIOn(t, testenv.StartNATS(t))
}

// newTestAPIOn is newTestAPI on the NATS server n.
func newTestAPIOn(t *testing.T, n *testenv.NATS) *testAPI {
	t.Helper()
	nc, js := n.Connect()
	k, err := secretbox.ParseKey(secretbox.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(k)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := New(Config{AdminTokens: []string{"other-token", testToken}}, nc, js, box, service.NewHealth("keys"), log)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return &testAPI{t: t, URL: srv.URL, nc: nc, js: js, box: box, svc: svc, logs: logs}
}

// answer is one HTTP answer of the API.
type answer struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (a answer) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.Body, &m)
	return m
}

// ErrCode is error.code of an error body.
func (a answer) ErrCode() string {
	e, _ := a.JSON()["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// ErrMessage is error.message of an error body.
func (a answer) ErrMessage() string {
	e, _ := a.JSON()["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// ErrField is error.field of an error body ("" when it names none).
func (a answer) ErrField() string {
	e, _ := a.JSON()["error"].(map[string]any)
	s, _ := e["field"].(string)
	return s
}

// Result is the Hookrun-Result header of a PUT answer.
func (a answer) Result() string { return a.Header.Get(HeaderResult) }

// do calls the API with the admin token. body is JSON-encoded unless it is
// a string, which is sent as is.
func (a *testAPI) do(method, path string, body any) answer {
	a.t.Helper()
	return a.doAuth(method, path, body, "Bearer "+testToken)
}

func (a *testAPI) doAuth(method, path string, body any, auth string) answer {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.URL+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{Code: resp.StatusCode, Header: resp.Header, Body: b}
}

// must calls the API and fails the test unless the status is want.
func (a *testAPI) must(want int, method, path string, body any) answer {
	a.t.Helper()
	ans := a.do(method, path, body)
	if ans.Code != want {
		a.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, ans.Code, want, ans.Body)
	}
	return ans
}

// checkError fails the test unless ans is an error answer with status,
// code, and (when not empty) a message containing msg.
func checkError(t *testing.T, ans answer, status int, code, msg string) {
	t.Helper()
	if ans.Code != status || ans.ErrCode() != code || !strings.Contains(ans.ErrMessage(), msg) {
		t.Fatalf("HTTP %d %s, want %d %s with message containing %q", ans.Code, ans.Body, status, code, msg)
	}
}

func jobDoc(name string, spec map[string]any) map[string]any {
	if spec == nil {
		spec = map[string]any{"command": []string{"/bin/sh", "-c", "echo hi"}}
	}
	return map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Job", "metadata": map[string]any{"name": name}, "spec": spec}
}

// webhookDoc is a webhook document; a spec without "auth" gets the
// default written out (none), as a manifest should: one without any is
// warned about (TestWebhooks_WarnWhenAuthIsNotGiven).
func webhookDoc(name string, spec map[string]any) map[string]any {
	if _, ok := spec["auth"]; !ok && spec != nil {
		spec = maps.Clone(spec)
		spec["auth"] = map[string]any{"none": map[string]any{}}
	}
	return map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Webhook", "metadata": map[string]any{"name": name}, "spec": spec}
}

func secretDoc(name string, spec map[string]any) map[string]any {
	if spec == nil {
		spec = map[string]any{}
	}
	return map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Secret", "metadata": map[string]any{"name": name}, "spec": spec}
}

// path walks a decoded JSON value: path(m, "status", "endpointPath").
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestAPI_UnavailableCarriesRetryAfter: with NATS gone the API answers 503
// unavailable with Retry-After, as the ingress does.
func TestAPI_UnavailableCarriesRetryAfter(t *testing.T) {
	a := newTestAPI(t)
	a.nc.Close()
	r := a.do("GET", "/v1/jobs", nil)
	checkError(t, r, 503, "unavailable", "")
	if r.Header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q, want 5", r.Header.Get("Retry-After"))
	}
}

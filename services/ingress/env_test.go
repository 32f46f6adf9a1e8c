package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// env is one ingress under test, built as cmd/hookrun-ingress builds it, on
// its own embedded nats-server, serving on a random loopback port with the
// real http.Server (timeouts included). Its dedup store is the NATS KV one
// (hookrun dev's); newRedisEnv gives it the test Redis instead.
type env struct {
	t      testing.TB
	nats   *testenv.NATS
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    *testenv.Config
	redis  redis.UniversalClient // only with newRedisEnv
	cat    *catalog.Catalog
	in     *Ingress
	url    string
	client *http.Client
	logs   *testenv.Buffer
}

// newEnv starts an ingress; mods adjust its configuration before New.
func newEnv(t testing.TB, mods ...func(*Config)) *env { return startEnv(t, false, mods...) }

// newRedisEnv starts an ingress whose dedup store is the test Redis.
func newRedisEnv(t testing.TB, mods ...func(*Config)) *env { return startEnv(t, true, mods...) }

func startEnv(t testing.TB, withRedis bool, mods ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &testenv.Buffer{}}
	e.nats = testenv.StartNATS(t)
	e.nc, e.js = e.nats.Connect()
	e.cfg = testenv.NewConfig(t, e.js)
	var dd dedup.Store
	if withRedis {
		e.redis = testenv.Redis(t)
		dd = dedup.NewRedis(e.redis)
	} else {
		kv, err := e.js.KeyValue(context.Background(), bus.BucketDedup)
		if err != nil {
			t.Fatal(err)
		}
		dd = dedup.NewKV(kv)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	c := Config{Common: service.Common{HTTPAddr: "127.0.0.1:0"}, PublishTimeout: 2 * time.Second}
	for _, m := range mods {
		m(&c)
	}
	e.cat = catalog.New(e.js, e.cfg.Box, log)
	e.in = New(c, e.js, e.cat, dd, service.NewHealth("ingress"), log)

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- e.in.Run(ctx, func(a net.Addr) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	select {
	case a := <-addr:
		e.url = "http://" + a.String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ingress did not start listening")
	}
	select {
	case <-e.cat.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("catalog not loaded")
	}
	tr := &http.Transport{}
	e.client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return e
}

// stopNATS takes the nats-server down and waits until the ingress's
// connection has noticed.
func (e *env) stopNATS() {
	e.t.Helper()
	e.nats.Stop()
	testenv.Eventually(e.t, 5*time.Second, func() error {
		if e.nc.IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
}

// startNATS brings the nats-server back on the same port and store and
// waits until the ingress's connection is back. (A test that leaves NATS
// down pays catalog shutdown timeouts in its cleanup.)
func (e *env) startNATS() {
	e.t.Helper()
	e.nats.Start()
	testenv.Eventually(e.t, 10*time.Second, func() error {
		if !e.nc.IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
}

// job stores a runnable job in the default namespace and waits until the
// ingress sees it.
func (e *env) job(name string) *resource.Job {
	e.t.Helper()
	j := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: name}, Spec: resource.JobSpec{Command: []string{"/bin/true"}}})
	testenv.Eventually(e.t, 5*time.Second, func() error {
		if _, ok := e.cat.Job(j.Metadata.Namespace, name); !ok {
			return errors.New("job not in the catalog yet")
		}
		return nil
	})
	return j
}

// webhook stores a webhook (its job "report" unless spec names one) and
// waits until the ingress serves exactly this version of it.
func (e *env) webhook(name string, spec resource.WebhookSpec) *resource.Webhook {
	e.t.Helper()
	if spec.Job == "" {
		spec.Job = "report"
	}
	return e.putWebhook(resource.Webhook{Metadata: resource.Meta{Name: name}, Spec: spec})
}

// putWebhook stores w as given (a new endpoint id unless w has one) and
// waits for it.
func (e *env) putWebhook(w resource.Webhook) *resource.Webhook {
	e.t.Helper()
	stored := e.cfg.Webhook(w)
	e.waitWebhook(stored)
	return stored
}

func (e *env) waitWebhook(w *resource.Webhook) {
	e.t.Helper()
	want, _ := json.Marshal(w.Spec)
	testenv.Eventually(e.t, 5*time.Second, func() error {
		got, ok := e.cat.WebhookByEndpoint(w.Status.EndpointID)
		if !ok {
			return fmt.Errorf("endpoint of %s not in the catalog yet", w.Metadata.Name)
		}
		if b, _ := json.Marshal(got.Spec); !bytes.Equal(b, want) || got.Metadata.UID != w.Metadata.UID {
			return fmt.Errorf("catalog holds an older %s", w.Metadata.Name)
		}
		return nil
	})
}

// apiKey stores an API key and waits until the ingress sees it.
func (e *env) apiKey(webhooks, jobs []string, expiresAt *time.Time) string {
	e.t.Helper()
	key, k := e.cfg.APIKey("test-key", webhooks, jobs, expiresAt)
	testenv.Eventually(e.t, 5*time.Second, func() error {
		if _, ok := e.cat.Key(k.ID); !ok {
			return errors.New("key not in the catalog yet")
		}
		return nil
	})
	return key
}

// secret stores a signing secret and waits until the ingress holds exactly
// these values (current first, then previous while in grace).
func (e *env) secret(name, value, previous string, grace time.Duration) {
	e.t.Helper()
	e.cfg.Secret(resource.DefaultNamespace, name, value, previous, grace)
	want := []string{value}
	if previous != "" && grace > 0 {
		want = append(want, previous)
	}
	testenv.Eventually(e.t, 5*time.Second, func() error {
		got, err := e.cat.SecretValues(resource.DefaultNamespace, name, time.Now())
		if err != nil {
			return err
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			return errors.New("catalog holds an older secret")
		}
		return nil
	})
}

// reply is a decoded answer of the ingress.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	Acc    accepted
	Err    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
}

// do sends req to the ingress and decodes the answer.
func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(b, &r.Acc); err != nil {
			e.t.Fatalf("%s %s: %d with body %q: %v", req.Method, req.URL.Path, resp.StatusCode, b, err)
		}
	} else if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var eb struct {
			Error *json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
			e.t.Fatalf("%s %s: %d with body %q: not an API error", req.Method, req.URL.Path, resp.StatusCode, b)
		}
		_ = json.Unmarshal(*eb.Error, &r.Err)
	}
	return r
}

// request builds a request to path on the ingress; body may be nil, a
// string, []byte or an io.Reader (sent chunked); headers go in pairs.
func (e *env) request(method, path string, body any, headers ...string) *http.Request {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		e.t.Fatalf("body of type %T", body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// post is a POST of body to path with headers in pairs.
func (e *env) post(path string, body any, headers ...string) reply {
	e.t.Helper()
	return e.do(e.request(http.MethodPost, path, body, headers...))
}

// deliveries is the DELIVERIES stream.
func (e *env) deliveries(ctx context.Context) jetstream.Stream {
	e.t.Helper()
	s, err := e.js.Stream(ctx, bus.StreamDeliveries)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// storedMsg returns the raw message of a delivery in DELIVERIES.
func (e *env) storedMsg(deliveryID string) *jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := e.deliveries(ctx)
	m, err := s.GetLastMsgForSubject(ctx, bus.DeliveryByIDFilter(deliveryID))
	if err != nil {
		e.t.Fatalf("delivery %s not stored: %v", deliveryID, err)
	}
	return m
}

// stored returns a delivery as stored in DELIVERIES.
func (e *env) stored(deliveryID string) message.Delivery {
	e.t.Helper()
	var d message.Delivery
	if err := message.Decode(e.storedMsg(deliveryID).Data, message.SchemaDelivery, &d); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// storedFor returns every delivery of a webhook in DELIVERIES, oldest first.
func (e *env) storedFor(w *resource.Webhook) []message.Delivery {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.js.OrderedConsumer(ctx, bus.StreamDeliveries, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.DeliverySubject(w.Metadata.Namespace, w.Metadata.Name, "*")},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []message.Delivery
	for n := int(info.NumPending); len(out) < n; {
		batch, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		for m := range batch.Messages() {
			var d message.Delivery
			if err := message.Decode(m.Data(), message.SchemaDelivery, &d); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, d)
		}
		if err := batch.Error(); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// get fetches a path of the ingress and returns status and body.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// requireReady fails the test unless /readyz answers 200: after abuse the
// service must still be healthy.
func (e *env) requireReady() {
	e.t.Helper()
	if code, body := e.get("/readyz"); code != http.StatusOK {
		e.t.Fatalf("/readyz = %d %s", code, body)
	}
}

// wantAccepted fails unless r is a success answer with status code.
func wantAccepted(t *testing.T, r reply, code int) {
	t.Helper()
	if r.Status != code || !r.Acc.Accepted || !r.Acc.Received || r.Acc.Status != message.StatusQueued ||
		r.Acc.DeliveryID == "" || r.Acc.ExecutionID == "" || r.Acc.EventID == "" {
		t.Fatalf("answer %d %s, want %d accepted", r.Status, r.Body, code)
	}
}

// wantError fails unless r is the API error status/code.
func wantError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.Err.Code != code || r.Err.Message == "" {
		t.Fatalf("answer %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}

// hookPath is the delivery path of a webhook, with extra path segments.
func hookPath(w *resource.Webhook, extra ...string) string {
	p := "/v1/hooks/" + w.Status.EndpointID
	for _, x := range extra {
		p += "/" + x
	}
	return p
}

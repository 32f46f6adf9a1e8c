package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
)

// A redirect in front of the API or the ingress (http → https) is an error
// naming where it points: Go's client followed a 301 to a PUT, DELETE or
// POST with a bodiless GET, and apply, delete and send reported success
// having changed nothing.
func TestCLI_ARedirectIsAnErrorNotAGETFollowed(t *testing.T) {
	f := newFakeAPI(t)
	var mu sync.Mutex
	var followed []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		followed = append(followed, r.Method+" "+r.URL.Path)
		mu.Unlock()
		writeJSON(w, 200, map[string]any{})
	}))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(redirect.Close)
	manifest := writeFile(t, t.TempDir(), "j.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: j}\nspec: {command: [/bin/true]}\n")
	for _, args := range [][]string{{"apply", "-f", manifest}, {"delete", "job", "j"}, {"get", "jobs"}} {
		r := runCLI(append(args, "--api-url", redirect.URL, "--token", "tok")...)
		if r.Code != codeUnavailable || !strings.Contains(r.Stderr, "a redirect to "+target.URL) || !strings.Contains(r.Stderr, "--api-url") {
			t.Errorf("%v through a redirect: want exit %d naming where it points, got %s", args, codeUnavailable, r)
		}
	}
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j"},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	r := runCLI("send", "w", "-d", `{"a":1}`, "--api-url", f.URL, "--ingress", redirect.URL, "--token", "tok")
	if r.Code != codeUnavailable || !strings.Contains(r.Stderr, "--ingress") {
		t.Errorf("send through a redirect: want exit %d naming --ingress, got %s", codeUnavailable, r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(followed) > 0 {
		t.Fatalf("the redirects were followed: %v", followed)
	}
}

// The ingress' answers that are not a refusal of what was sent: a 429
// says when to retry (5, not 4), and a 404 that is not its own
// endpoint_not_found means --ingress points elsewhere (5, at once, not
// after 3 s of retries, nor 3 "not found").
func TestCLI_SendTellsARateLimitAndAForeign404(t *testing.T) {
	f := newFakeAPI(t)
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j"},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter)
		code   int
		says   string
		within time.Duration
	}{
		{"429", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "10")
			writeJSON(w, 429, map[string]any{"error": map[string]string{"code": "rate_limited", "message": "too many deliveries"}})
		}, codeUnavailable, "retry after 10s", time.Second},
		{"a proxy's 404", func(w http.ResponseWriter) { http.NotFound(w, nil) }, codeUnavailable, "is --ingress the ingress?", time.Second},
		{"the ingress' 404", func(w http.ResponseWriter) {
			writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "endpoint_not_found", "message": "endpoint not found"}})
		}, codeNotFound, "endpoint_not_found", 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.answer(w) }))
			t.Cleanup(ingress.Close)
			start := time.Now()
			r := runCLI("send", "w", "-d", `{}`, "--api-url", f.URL, "--ingress", ingress.URL, "--token", "tok")
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.says) || time.Since(start) > tc.within {
				t.Fatalf("want exit %d saying %q within %s, got %s after %s", tc.code, tc.says, tc.within, r, time.Since(start))
			}
		})
	}
}

// --help shows the URLs HOOKRUN_API_URL and HOOKRUN_INGRESS_URL give as
// defaults with their credentials masked, as error messages do.
func TestCLI_HelpMasksTheURLsCredentials(t *testing.T) {
	t.Setenv("HOOKRUN_API_URL", "https://admin:s3cretPW@api.example.com/?token=abc123")
	t.Setenv("HOOKRUN_INGRESS_URL", "https://u:ingressPW@in.example.com")
	r := runCLI("get", "--help")
	if r.Code != codeOK || strings.Contains(r.Stdout, "s3cretPW") || strings.Contains(r.Stdout, "abc123") || strings.Contains(r.Stdout, "ingressPW") || !strings.Contains(r.Stdout, "api.example.com") {
		t.Fatalf("--help: %s", r)
	}
	// bench's --redis default is REDIS_URL.
	t.Setenv("REDIS_URL", "redis://:redisPW@cache.example.com:6379/0")
	if r := runCLI("bench", "--help"); r.Code != codeOK || strings.Contains(r.Stdout, "redisPW") || !strings.Contains(r.Stdout, "cache.example.com") {
		t.Fatalf("bench --help: %s", r)
	}
}

// A command that takes no arguments, given one, says what to do instead of
// cobra's `unknown command`.
func TestCLI_AnArgumentWhereNoneIsTakenSaysWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "examples/janus.yaml"}, "hookrun apply -f FILE"},
		{[]string{"runs", "list", "run_x"}, "hookrun get run RUN"},
		{[]string{"keys", "list", "ci"}, "hookrun get key NAME"},
		{[]string{"replay", "--failed", "dlv_x"}, "hookrun replay DELIVERY, without --failed"},
	} {
		r := runCLI(append(tc.args, "--api-url", "http://127.0.0.1:1", "--token", "tok")...)
		if r.Code != codeUsage || !strings.Contains(r.Stderr, tc.want) || strings.Contains(r.Stderr, "unknown command") {
			t.Errorf("%v: %s", tc.args, r)
		}
	}
}

// What may be a credential is not echoed in an error: a --header without
// its colon, a whole API key given where its id is wanted (it is taken for
// its id).
func TestCLI_ErrorsDoNotEchoCredentials(t *testing.T) {
	f := newFakeAPI(t)
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j"},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	r := f.execCLI("send", "w", "-d", `{}`, "-H", "Authorization Bearer sk_live_SUPERSECRET")
	if r.Code != codeUsage || strings.Contains(r.Stderr, "SUPERSECRET") || strings.Contains(r.Stderr, "Bearer") || !strings.Contains(r.Stderr, "Authorization") {
		t.Fatalf("-H without a colon: %s", r)
	}
	f.keys = append(f.keys, keyInfo{ID: "abc234", Name: "ci", Namespace: "default"})
	r = f.execCLI("keys", "delete", "hk_abc234_SECRETPARTOFTHEKEY")
	if r.Code != codeOK || strings.Contains(r.Stdout+r.Stderr, "SECRETPART") || fmt.Sprint(f.takeChanges()) != "[delete abc234]" {
		t.Fatalf("keys delete with the whole key: %s", r)
	}
	// A key whose name looks like a whole key is that key, never the one
	// whose id or name its middle part is.
	f.keys = append(f.keys, keyInfo{ID: "cccc3333", Name: "hk_ci_deploy", Namespace: "default"}, keyInfo{ID: "dddd4444", Name: "ci", Namespace: "default"})
	r = f.execCLI("keys", "delete", "hk_ci_deploy")
	if r.Code != codeOK || fmt.Sprint(f.takeChanges()) != "[delete cccc3333]" {
		t.Fatalf("keys delete of a key named like a whole key: %s", r)
	}
	r = f.execCLI("keys", "delete", "hk_nokey2_SECRETPARTOFTHEKEY")
	if r.Code != codeNotFound || strings.Contains(r.Stderr, "SECRETPART") || !strings.Contains(r.Stderr, "nokey2") {
		t.Fatalf("keys delete of a key that is not there: %s", r)
	}
}

// sseServer is the fake API (returned) in front of which the runs' event
// streams are given by events, the n-th stream (from 0) of any run; its
// URL is returned too.
func sseServer(t *testing.T, events func(n int, w http.ResponseWriter)) (*fakeAPI, string) {
	f := newFakeAPI(t)
	back, _ := url.Parse(f.URL)
	var mu sync.Mutex
	n := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/runs/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		events(i, w)
	})
	mux.Handle("/", httputil.NewSingleHostReverseProxy(back))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// A watch whose stream a proxy cuts again and again, each time after news
// came (a new output line), follows the run to its end: only breaks in a
// row without news count. Streams that only replay what was printed
// already end the watch.
func TestCLI_WatchGoesOnWhileTheStreamsBringNews(t *testing.T) {
	old := streamRetryWait
	streamRetryWait = 5 * time.Millisecond
	t.Cleanup(func() { streamRetryWait = old })
	_, front := sseServer(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: status\ndata: {\"id\":\"run_prod\",\"status\":\"running\",\"attempt\":1}\n\n")
		for i := 0; i <= n; i++ { // the replay, then one line more
			fmt.Fprintf(w, "event: output\ndata: \"line %d\"\n\n", i)
		}
		if n == 3*maxStreamFailures {
			fmt.Fprint(w, "event: status\ndata: {\"id\":\"run_prod\",\"status\":\"succeeded\",\"attempt\":1,\"exitCode\":0}\n\n")
		}
	})
	r := runCLI("runs", "watch", "run_prod", "-n", "prod", "--api-url", front, "--token", "tok")
	if r.Code != codeOK || !strings.Contains(r.Stdout, "succeeded") || !strings.Contains(r.Stdout, fmt.Sprintf("line %d", 3*maxStreamFailures)) {
		t.Fatalf("a watch over streams cut after news: %s", r)
	}
	_, replay := sseServer(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: status\ndata: {\"id\":\"run_prod\",\"status\":\"running\",\"attempt\":1}\n\nevent: output\ndata: \"same\"\n\n")
	})
	if r := runCLI("runs", "watch", "run_prod", "-n", "prod", "--api-url", replay, "--token", "tok"); r.Code != codeUnavailable || !strings.Contains(r.Stderr, "keeps ending before the run") {
		t.Fatalf("a watch over streams that only replay: %s", r)
	}
}

// send --wait whose delivery the ingress accepted but whose run it cannot
// follow (the keys API gone) is 7, not 5 ("retry later" would have a
// script send the delivery again), and says how to follow it; --timeout 0
// is no timeout, as for runs watch.
func TestCLI_SendWaitAfterAcceptanceNeverSaysRetry(t *testing.T) {
	old := streamRetryWait
	streamRetryWait = time.Millisecond
	t.Cleanup(func() { streamRetryWait = old })
	w := testWebhook(resource.Auth{None: &struct{}{}})
	b, _ := json.Marshal(w)
	down, front := sseServer(t, func(n int, w http.ResponseWriter) {
		writeJSON(w, 503, map[string]any{"error": map[string]string{"code": "unavailable", "message": "NATS is down"}})
	})
	down.webhooks["default/w"] = string(b)
	r := runCLI("send", "w", "-d", `{}`, "--wait", "--api-url", front, "--ingress", down.URL, "--token", "tok")
	if r.Code != codeNotFollowed || !strings.Contains(r.Stderr, "Do not send it again") || !strings.Contains(r.Stderr, "hookrun runs watch run_prod") {
		t.Fatalf("send --wait with the API gone after the 202: %s", r)
	}
	// --timeout passing while the run goes on: the delivery is in all
	// the same (it was 1, "sending again fails the same way").
	slow, slowFront := sseServer(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: status\ndata: {\"id\":\"run_prod\",\"status\":\"running\",\"attempt\":1}\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(3 * time.Second)
	})
	slow.webhooks["default/w"] = string(b)
	if r := runCLI("send", "w", "-d", `{}`, "--wait", "--timeout", "1s", "--api-url", slowFront, "--ingress", slow.URL, "--token", "tok"); r.Code != codeNotFollowed || !strings.Contains(r.Stderr, "Do not send it again") {
		t.Fatalf("send --wait past its --timeout: %s", r)
	}
	w.Metadata.Namespace = "prod"
	b, _ = json.Marshal(w)
	f := newFakeAPI(t)
	f.webhooks["prod/w"] = string(b)
	if r := f.execCLI("send", "w", "-d", `{}`, "--wait", "--timeout", "0", "-n", "prod"); r.Code != codeOK || !strings.Contains(r.Stdout, "succeeded") {
		t.Fatalf("send --wait --timeout 0: %s", r)
	}
}

// get key NAME -o json|yaml prints one key, an object: a name two keys
// share is refused there (exit 4, naming their ids), not answered with a
// list in the object's place; the table lists both.
func TestCLI_GetKeyOfASharedNameAsJSONIsRefused(t *testing.T) {
	f := newFakeAPI(t)
	f.keys = append(f.keys, keyInfo{ID: "key_everywhere", Name: "deploy", Namespace: "*"})
	r := f.execCLI("get", "key", "deploy", "-o", "json")
	if r.Code != codeRefused || !strings.Contains(r.Stderr, "key_default, key_everywhere") || r.Stdout != "" {
		t.Fatalf("-o json of a shared name: %s", r)
	}
	r = f.execCLI("get", "key", "deploy")
	if r.Code != codeOK || !strings.Contains(r.Stdout, "key_default") || !strings.Contains(r.Stdout, "key_everywhere") {
		t.Fatalf("the table of a shared name: %s", r)
	}
	r = f.execCLI("get", "key", "key_everywhere", "-o", "json")
	if r.Code != codeOK || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "{") {
		t.Fatalf("-o json by id: %s", r)
	}
}

// A wrong admin token says where the right one is.
func TestCLI_AWrongTokenSaysWhereTheTokenIs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "a valid admin token is required: Authorization: Bearer <token>"}})
	}))
	defer srv.Close()
	r := runCLI("get", "jobs", "--api-url", srv.URL, "--token", "wrong")
	if r.Code != codeRefused || !strings.Contains(r.Stderr, "HOOKRUN_ADMIN_TOKEN") || strings.Contains(r.Stderr, "wrong") {
		t.Fatalf("a wrong token: %s", r)
	}
}

// replay given a run id says it takes a delivery id, and where to find it.
func TestCLI_ReplayOfARunIDSaysItTakesADeliveryID(t *testing.T) {
	f := newFakeAPI(t)
	r := f.execCLI("replay", "run_prod")
	if r.Code != codeNotFound || !strings.Contains(r.Stderr, "replay takes a delivery id (dlv_…): hookrun get run run_prod -o yaml") {
		t.Fatalf("replay of a run id: %s", r)
	}
}

// send --data @FILE of a file that cannot be read is a usage error (2):
// exit 1 means the webhook cannot run.
func TestCLI_SendOfAnUnreadableDataFileIsAUsageError(t *testing.T) {
	f := newFakeAPI(t)
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j"},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	r := f.execCLI("send", "w", "--data", "@"+t.TempDir()+"/missing.json")
	if r.Code != codeUsage || !strings.Contains(r.Stderr, "missing.json") {
		t.Fatalf("send --data @missing: %s", r)
	}
}

// -o json prints the answer and one line end, not the answer's own line
// end and another (a blank line).
func TestCLI_JSONOutputEndsWithOneLineEnd(t *testing.T) {
	f := newFakeAPI(t)
	f.webhooks["default/w"] = `{"metadata":{"name":"w","namespace":"default"},"spec":{"job":"j"},"status":{"endpointPath":"/v1/hooks/ep_w"}}`
	for _, args := range [][]string{{"send", "w", "-d", "{}", "-o", "json"}, {"replay", "dlv_prod", "-n", "prod", "-o", "json"}} {
		r := f.execCLI(args...)
		if r.Code != codeOK || !strings.HasSuffix(r.Stdout, "}\n") || strings.HasSuffix(r.Stdout, "\n\n") {
			t.Fatalf("%v: %q (%s)", args, r.Stdout, r)
		}
	}
}

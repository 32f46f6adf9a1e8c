package executor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// redirector answers every request with a 307 to target, and counts them.
func redirector(t *testing.T, target string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		http.Redirect(w, req, target, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// An HTTP job follows a redirect on its own host, never to another one: the
// job's headers (credentials) and the run's output stay between the job and
// the host it names. A callback follows none.
func TestExecutor_RedirectsStayOnTheJobsHost(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "cb-secret", cbSecret, "", 0)
	e.start(nil)
	elsewhere := newRecorder(t, 0, 200)

	// Same host: followed.
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("moved here")) })
	same := httptest.NewServer(mux)
	t.Cleanup(same.Close)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-same"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{URL: same.URL + "/old"}}})
	r := e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "same-host redirect", r.Status, message.StatusSucceeded)
	want(t, "output", r.Output, "moved here")

	// Another host: the redirect is the answer.
	away, _ := redirector(t, elsewhere.srv.URL+"/internal")
	job = e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-away"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{
		URL: away.URL + "/job", Headers: map[string]string{"X-Api-Key": "internal-token"},
	}}})
	r = e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "cross-host redirect", r.Status, message.StatusFailed)
	want(t, "error", r.Error, "HTTP 307")

	// A callback's redirect is a failed attempt, not followed.
	// Its second attempt shows the first failed: followed, the redirect
	// would have reached the other host, which answers 200.
	cb, attempts := redirector(t, elsewhere.srv.URL+"/cb")
	ok := e.script("cb-redirect", `true`)
	rr := e.submit(ok, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URL: cb.URL + "/results", SecretRef: "cb-secret"}
	})
	e.final(rr, 10*time.Second)
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := attempts.Load(); n < 2 {
			return fmt.Errorf("%d callback attempts reached the callback's host, want 2", n)
		}
		return nil
	})
	want(t, "requests that reached the other host", len(elsewhere.got()), 0)
}

// A value of the delivery goes into an HTTP job's JSON body through json,
// which quotes it: a payload cannot add or override fields.
func TestExecutor_HTTPBodyTemplateJSONQuotesValues(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	srv := newRecorder(t, 0, 200)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-json"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{
		URL: srv.srv.URL, Body: `{"text":{{ json .body.msg }},"role":"user"}`,
	}}})
	hostile := `hi","role":"admin","x":"`
	payload, _ := json.Marshal(map[string]string{"msg": hostile})
	r := e.final(e.submit(job, string(payload)), 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	var got map[string]string
	if err := json.Unmarshal(srv.got()[0].body, &got); err != nil {
		t.Fatalf("body %q: %v", srv.got()[0].body, err)
	}
	want(t, "text", got["text"], hostile)
	want(t, "role", got["role"], "user")
}

// An HTTP job's body template sees the delivery as argument templates do
// (.header and the header function included), and its output is bounded:
// a template ranging over a sender's data cannot make a request, or the
// executor's memory, as large as it likes.
func TestExecutor_HTTPBodyTemplateSeesHeadersAndIsBounded(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	srv := newRecorder(t, 0, 200)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-hdr"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{
		URL: srv.srv.URL, Body: `{"event":{{ json (header "X-Github-Event") }},"also":{{ json (index .header "X-Github-Event") }},"webhook":{{ json .webhook }}}`,
	}}})
	r := e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "body", string(srv.got()[0].body), `{"event":"push","also":"push","webhook":"hook"}`)

	big := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-big"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{
		URL: srv.srv.URL, Body: `{{ range .body.xs }}{{ range $.body.xs }}{{ $.body.pad }}{{ end }}{{ end }}`,
	}}})
	xs := make([]int, 40)
	payload, _ := json.Marshal(map[string]any{"xs": xs, "pad": strings.Repeat("p", 1000)})
	r = e.final(e.submit(big, string(payload)), 10*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "over 1048576 bytes") {
		t.Fatalf("error %q, want the body bound", r.Error)
	}
	want(t, "requests", len(srv.got()), 1)
}

func TestPublicAddress(t *testing.T) {
	for ip, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860:4860::8888": true, "93.184.216.34": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.1.1": false, "0.0.0.0": false, "224.0.0.1": false,
		"::1": false, "fe80::1": false, "fc00::1": false, "::": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false,
		// Cloud services at public-looking addresses, reserved ranges.
		"192.0.0.192": false, "168.63.129.16": false, "198.18.0.1": false, "240.0.0.1": false,
		"0.1.2.3": false, "255.255.255.255": false, "2001:db8::1": false, "fe80::1%eth0": false,
		// IPv4 through IPv6: judged by the IPv4 address.
		"64:ff9b::a00:5": false, "64:ff9b::808:808": true, "2002:a00:1::": false, "2002:808:808::1": true,
		"2001::1": false,
		// The older forms of an IPv4 address in IPv6.
		"::127.0.0.1": false, "::10.0.0.1": false, "::ffff:0:169.254.169.254": false, "::ffff:0:10.1.2.3": false,
		"::8.8.8.8": true, "::ffff:0:8.8.8.8": true,
	} {
		if got := publicAddress(netip.MustParseAddr(ip)); got != want {
			t.Errorf("publicAddress(%s) = %v, want %v", ip, got, want)
		}
	}
}

// With HOOKRUN_DENY_PRIVATE_EGRESS an HTTP job or a callback aimed at a
// non-public address (here a receiver on 127.0.0.1) is refused at
// connect time: nothing reaches it, and the run says why.
func TestExecutor_DenyPrivateEgressRefusesLoopback(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.DenyPrivateEgress = true
	e.start(nil)
	internal := newRecorder(t, 0, 200)

	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-internal"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{URL: internal.srv.URL + "/admin"}}})
	r := e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "not a public address") {
		t.Fatalf("error %q: want it to say the address is not public", r.Error)
	}

	ok := e.script("cb-internal", `true`)
	rr := e.submit(ok, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URL: internal.srv.URL + "/results"}
	})
	e.final(rr, 10*time.Second)
	time.Sleep(time.Second) // past a first attempt and its 200 ms backoff
	if n := len(internal.got()); n != 0 {
		t.Fatalf("%d requests reached the receiver on 127.0.0.1", n)
	}
}

// Through a proxy the check would see the proxy's address alone: the
// setting and a proxy together stop start-up.
func TestConfigFromEnv_DenyPrivateEgressRefusesAProxy(t *testing.T) {
	t.Setenv("HOOKRUN_DENY_PRIVATE_EGRESS", "true")
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(v, "")
	}
	if c, err := ConfigFromEnv(); err != nil || !c.DenyPrivateEgress {
		t.Fatalf("without a proxy: %v, %v", c.DenyPrivateEgress, err)
	}
	t.Setenv("HTTPS_PROXY", "http://proxy.internal:3128")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "HOOKRUN_DENY_PRIVATE_EGRESS with HTTPS_PROXY set") {
		t.Fatalf("with a proxy: %v", err)
	}
}

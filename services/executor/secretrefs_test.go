package executor

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A job's credentials come from secrets when the run starts: a command
// job's spec.secretEnv variables, an HTTP job's spec.http.secretHeaders
// (with their prefix). A secret that is not there fails the run, naming
// the secret, never a value.
func TestExecutor_SecretEnvAndSecretHeadersCarryTheSecretsValues(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "deploy-token", "tok-3f9a", "", 0)
	e.cfg.Secret("default", "api-token", "api-77c1", "", 0)
	e.start(nil)

	cmd := e.script("secret-env", `echo "$DEPLOY_TOKEN" > "$OUT/secret-env"`, func(j *resource.Job) {
		j.Spec.SecretEnv = map[string]string{"DEPLOY_TOKEN": "deploy-token"}
	})
	want(t, "command status", e.final(e.submit(cmd, `{}`), 10*time.Second).Status, message.StatusSucceeded)
	want(t, "DEPLOY_TOKEN", e.readFile("secret-env"), "tok-3f9a")

	srv := newRecorder(t, 0, 204)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "secret-headers"}, Spec: resource.JobSpec{
		HTTP: &resource.HTTPAction{URL: srv.srv.URL + "/hook", SecretHeaders: map[string]resource.SecretHeader{
			"Authorization": {SecretRef: "api-token", Prefix: "Bearer "},
			"X-Api-Key":     {SecretRef: "api-token"},
		}},
	}})
	want(t, "HTTP status", e.final(e.submit(job, `{}`), 10*time.Second).Status, message.StatusSucceeded)
	reqs := srv.got()
	want(t, "requests", len(reqs), 1)
	want(t, "Authorization", reqs[0].header.Get("Authorization"), "Bearer api-77c1")
	want(t, "X-Api-Key", reqs[0].header.Get("X-Api-Key"), "api-77c1")

	for _, j := range []*resource.Job{
		e.script("secret-env-missing", "true", func(j *resource.Job) { j.Spec.SecretEnv = map[string]string{"TOKEN": "gone"} }),
		e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "secret-header-missing"}, Spec: resource.JobSpec{
			HTTP: &resource.HTTPAction{URL: srv.srv.URL + "/hook", SecretHeaders: map[string]resource.SecretHeader{"Authorization": {SecretRef: "gone"}}},
		}}),
	} {
		r := e.final(e.submit(j, `{}`), 10*time.Second)
		if r.Status != message.StatusFailed || !strings.Contains(r.Error, "secret gone") {
			t.Errorf("%s with a missing secret: %s %q, want failed naming the secret", j.Metadata.Name, r.Status, r.Error)
		}
	}
	want(t, "requests after the missing secret", len(srv.got()), 1)
}

// A job's secret values are masked in what it outputs (an echoed
// environment, a receiver's answer quoting the request), live lines,
// snapshot and stored output alike.
func TestExecutor_SecretValuesAreMaskedInOutput(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "deploy-token", "tok-3f9a-77b2", "", 0)
	e.cfg.Secret("default", "api-token", "api-77c1-0e4d", "", 0)
	e.start(nil)
	cmd := e.script("echo-secret", `echo "token=$DEPLOY_TOKEN"; echo "short=ab"`, func(j *resource.Job) {
		j.Spec.SecretEnv = map[string]string{"DEPLOY_TOKEN": "deploy-token"}
	})
	r := e.final(e.submit(cmd, `{}`), 10*time.Second)
	want(t, "command output", r.Output, "token=***\nshort=ab\n")

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "you sent %s", req.Header.Get("Authorization"))
	}))
	t.Cleanup(echo.Close)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "echo-header"}, Spec: resource.JobSpec{
		HTTP: &resource.HTTPAction{URL: echo.URL, SecretHeaders: map[string]resource.SecretHeader{"Authorization": {SecretRef: "api-token", Prefix: "Bearer "}}},
	}})
	r = e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "HTTP output", r.Output, "you sent Bearer ***")
}

func TestMask_ReplacesEachLineOfEachSecretLongestFirst(t *testing.T) {
	secrets := maskable("abcdef-123456", "abcdef", "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n-----END KEY-----", "ab")
	got := string(mask([]byte("x abcdef-123456 y abcdef z ab MIIEpAIBAAKCAQEA"), secrets))
	if got != "x *** y *** z ab ***" {
		t.Fatalf("mask = %q", got)
	}
}

func TestTail_MasksSecretsInLiveLinesAndTheTail(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, _ := n.Connect()
	sub, err := nc.SubscribeSync("out.test")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTail(1024, nc, "out.test", 1, "dlv")
	tl.secrets = maskable("s3cret-value")
	fmt.Fprint(tl, "a s3cret-value b\n")
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "live line", string(m.Data), "a *** b\n")
	snap, _ := tl.Published()
	want(t, "snapshot", snap, "a *** b\n")
	want(t, "tail", tl.String(), "a *** b\n")
}

// A secret that a long line's piece boundary would cut is moved whole into
// the next piece: each piece is masked apart.
func TestTail_NoPieceOfALongLineEndsInsideASecret(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, _ := n.Connect()
	sub, err := nc.SubscribeSync("out.long")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTail(1<<16, nc, "out.long", 1, "dlv")
	tl.secrets = maskable("tok-3f9a-77b2-SECRET")
	line := strings.Repeat("x", maxLine-8) + "tok-3f9a-77b2-SECRET tail\n"
	fmt.Fprint(tl, line)
	var live string
	for {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data), "SECRET") {
			t.Fatalf("a live piece holds part of the secret: %q", string(m.Data)[max(0, len(m.Data)-40):])
		}
		live += string(m.Data)
		if strings.HasSuffix(live, "\n") {
			break
		}
	}
	want(t, "live line", live, strings.Repeat("x", maxLine-8)+"*** tail\n")
	want(t, "tail", tl.String(), live)
}

func TestMask_OverlapsAndMultiLineValues(t *testing.T) {
	if got := string(mask([]byte("abcdefghijkl"), maskable("abcdefgh", "ghijkl"))); got != "***" {
		t.Errorf("overlapping secrets: %q, want ***", got)
	}
	kubeconfig := "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: eyJhbGciOiJSUzI1NiIsImtpZCI6\n"
	out := "apiVersion: v1\nkind: Config\nusers: 3 active\ntoken: eyJhbGciOiJSUzI1NiIsImtpZCI6\n"
	want(t, "kubeconfig", string(mask([]byte(out), maskable(kubeconfig))), "apiVersion: v1\nkind: Config\nusers: 3 active\n***\n")
}

// A callback URL that is itself a credential (a Slack incoming webhook)
// comes from a secret when the callback is sent: the run's record names
// the secret, and a secret that is gone fails the callback naming it.
func TestExecutor_CallbackURLFromASecret(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		paths = append(paths, req.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	e.cfg.Secret("default", "slack-url", srv.URL+"/services/T000/B000/XSECRETPATH", "", 0)
	run := e.start(nil)
	job := e.script("reported-to-slack", `echo hello`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URLSecretRef: "slack-url"}
	})
	r := e.final(rr, 10*time.Second)
	if r.Callback == nil || r.Callback.URL != "" || r.Callback.URLSecretRef != "slack-url" {
		t.Fatalf("the run's record holds callback %+v, want the secret's name only", r.Callback)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(paths) != 1 || paths[0] != "/services/T000/B000/XSECRETPATH" {
			return fmt.Errorf("callbacks to %v, want one to the secret's URL", paths)
		}
		return nil
	})

	u, err := run.x.callbackURL("default", &message.Callback{URLSecretRef: "gone"})
	if err == nil || !strings.Contains(err.Error(), "secret gone") {
		t.Fatalf("a URL secret that is gone: %q, %v; want an error naming it", u, err)
	}
	e.cfg.Secret("default", "not-a-url", "XSECRETVALUE", "", 0)
	testenv.Eventually(t, 5*time.Second, func() error {
		_, err := run.x.callbackURL("default", &message.Callback{URLSecretRef: "not-a-url"})
		if err == nil || strings.Contains(err.Error(), "XSECRETVALUE") || !strings.Contains(err.Error(), "not-a-url") {
			return fmt.Errorf("a secret that is no URL: %v; want an error naming the secret, not its value", err)
		}
		return nil
	})
}

// An HTTP job's URL can be a secret's value (a Slack incoming webhook):
// the request goes there, its value is masked in the answer kept as
// output, and a secret that is missing or holds no URL fails the run
// naming the secret, never quoting its value.
func TestExecutor_HTTPJobURLFromASecret(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "posted to http://%s%s; path %s; token %s; %s", req.Host, req.URL.RequestURI(), req.URL.Path,
			req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:], req.URL.Query().Get("key"))
	}))
	t.Cleanup(echo.Close)
	hook := echo.URL + "/services/T000/B000/XXXXsecret42?key=Qk7-hex-0a1b"
	e.cfg.Secret("default", "slack-url", " "+hook+"\n", "", 0)
	e.cfg.Secret("default", "not-a-url", "xoxb-12345-not-a-url", "", 0)
	e.start(nil)

	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "url-from-secret"}, Spec: resource.JobSpec{
		HTTP: &resource.HTTPAction{URLSecretRef: "slack-url"},
	}})
	r := e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "output", r.Output, "posted to ***; path ***; token ***; ***")

	for ref, msg := range map[string]string{"gone": "secret gone", "not-a-url": "secret not-a-url does not hold an absolute http or https URL"} {
		j := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "url-" + ref}, Spec: resource.JobSpec{
			HTTP: &resource.HTTPAction{URLSecretRef: ref},
		}})
		r := e.final(e.submit(j, `{}`), 10*time.Second)
		if r.Status != message.StatusFailed || !strings.Contains(r.Error, msg) || strings.Contains(r.Error, "xoxb") {
			t.Errorf("URL from secret %s: %s %q, want failed with %q", ref, r.Status, r.Error, msg)
		}
	}
}

// Output cut short keeps no part of a secret the cut went through: the
// kept tail of a long output starts inside one, or an HTTP answer's kept
// first bytes end inside one.
func TestTail_ASecretCutByTheTailsStartIsMasked(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, _ := n.Connect()
	tl := newTail(24, nc, "out.cut", 1, "dlv")
	tl.secrets = maskable("S3CR3T-TOKEN-abcdefghijklmnop")
	fmt.Fprint(tl, "token S3CR3T-TOKEN-abcdefghijklmnop end\n")
	for what, got := range map[string]string{"tail": tl.String(), "snapshot": func() string { s, _ := tl.Published(); return s }()} {
		if strings.Contains(got, "ijklmnop") || !strings.HasSuffix(got, "*** end\n") {
			t.Errorf("%s = %q: want the part of the secret it starts with masked", what, got)
		}
	}
}

func TestMaskCut_MasksThePartOfASecretAtACut(t *testing.T) {
	secrets := maskable("S3CR3T-TOKEN-abcdefghijklmnop", "other-secret-1")
	for _, tc := range []struct {
		in          string
		front, back bool
		want        string
	}{
		{"efghijklmnop then other-secret-1 and more", true, false, "*** then *** and more"},
		{"the answer quoted S3CR3T-TOK", false, true, "the answer quoted ***"},
		{"nop, the rest", false, true, "nop, the rest"},                         // the end is no secret's start
		{"efghijklmnop at the start", false, true, "efghijklmnop at the start"}, // front not cut
		{"MNOP", true, false, "MNOP"},
		{"jklmnopS3CR", true, true, "******"},
		{"mnop", true, true, "***"},
	} {
		if got := string(maskCut([]byte(tc.in), nil, nil, secrets, tc.front, tc.back)); got != tc.want {
			t.Errorf("maskCut(%q, front %v, back %v) = %q, want %q", tc.in, tc.front, tc.back, got, tc.want)
		}
	}
}

// An HTTP job's answer cut at MaxOutput inside a secret keeps none of it.
func TestExecutor_HTTPAnswerCutInsideASecretIsMasked(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.MaxOutput = 40
	e.cfg.Secret("default", "api-token", "api-77c1-0e4d-SECRET-PART", "", 0)
	e.start(nil)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "%s you sent %s", strings.Repeat("x", 20), req.Header.Get("Authorization"))
	}))
	t.Cleanup(echo.Close)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "echo-cut"}, Spec: resource.JobSpec{
		HTTP: &resource.HTTPAction{URL: echo.URL, SecretHeaders: map[string]resource.SecretHeader{"Authorization": {SecretRef: "api-token", Prefix: "Bearer "}}},
	}})
	r := e.final(e.submit(job, `{}`), 10*time.Second)
	want(t, "HTTP output", r.Output, strings.Repeat("x", 20)+" you sent Bearer ***\n[…response truncated…]\n")
}

// What of a URL secret is masked: the tokens in it, not its words.
func TestURLSecretParts_MaskTheTokensNotTheWords(t *testing.T) {
	parts := urlSecretParts("https://hooks.example.com/services/T000/B000/XXXXsecret42?key=Qk7-hex-0a1b&mode=incoming")
	for _, want := range []string{"XXXXsecret42", "Qk7-hex-0a1b", "/services/T000/B000/XXXXsecret42"} {
		if !slices.Contains(parts, want) {
			t.Errorf("parts %q lack %q", parts, want)
		}
	}
	for _, word := range []string{"services", "T000", "incoming", "hooks.example.com"} {
		if slices.Contains(maskable(parts...), word) {
			t.Errorf("parts %q mask the word %q", parts, word)
		}
	}
}

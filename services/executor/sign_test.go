package executor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// Only a Standard Webhooks secret (whsec_…) adds their headers: a hex
// secret, as the other profiles generate, is base64 too but is not one.
// An HTTP job's own webhook-id is replaced: it would not be what was
// signed, and no receiver could verify the request.
func TestSign_StandardWebhooksHeadersOnlyForTheirSecrets(t *testing.T) {
	now := time.Now()
	hex := strings.Repeat("0123456789abcdef", 4)
	h := http.Header{}
	Sign(h, []byte(`{}`), hex, "run_1", now)
	if h.Get(HeaderSignature) == "" || h.Get("Webhook-Signature") != "" {
		t.Fatalf("hex secret: %v", h)
	}
	h = http.Header{"Webhook-Id": {"the-job's-own"}}
	Sign(h, []byte(`{}`), cbSecret, "run_1", now)
	if !strings.HasPrefix(h.Get("Webhook-Signature"), "v1,") || h.Get("Webhook-Timestamp") == "" || h.Get("Webhook-Id") != "run_1" {
		t.Fatalf("whsec secret: %v", h)
	}
}

// While a signing secret is rotated, each Standard Webhooks value valid
// signs (webhook-signature "v1,… v1,…"), so a receiver still holding the
// previous value verifies, as one that took the new value does; the
// Hookrun signature is the current value's.
func TestSignAll_EveryValueInItsGraceSigns(t *testing.T) {
	p, _ := signature.Lookup("standard-webhooks")
	current, _ := p.GenerateSecret()
	previous, _ := p.GenerateSecret()
	now := time.Now()
	body := []byte(`{"type":"run.succeeded"}`)
	h := http.Header{}
	SignAll(h, body, []string{current, previous}, "run_1.dlv_1.succeeded", now)
	if n := len(strings.Fields(h.Get("Webhook-Signature"))); n != 2 {
		t.Fatalf("webhook-signature %q: want 2 signatures", h.Get("Webhook-Signature"))
	}
	for name, s := range map[string]string{"current": current, "previous": previous} {
		if id, err := p.Verify(signature.Request{Header: h, Body: body}, []string{s}, now); err != nil || id != "run_1.dlv_1.succeeded" {
			t.Errorf("a receiver holding the %s value: %q, %v", name, id, err)
		}
	}
	m := hmac.New(sha256.New, []byte(current))
	m.Write(body)
	if got := h.Get(HeaderSignature); got != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("X-Hookrun-Signature %q is not the current value's", got)
	}
}

// A callback's body is not HTML-escaped: output holding <, > or & is sent
// as it is, not six times its size (the record was fitted to its bounds
// unescaped), and signed as sent.
func TestExecutor_CallbackBodyIsNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "cb-secret", cbSecret, "", 0)
	srv := newRecorder(t, 0, 200)
	e.start(nil)
	job := e.script("html", `echo '<b>&amp;</b>'`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URL: srv.srv.URL + "/results", SecretRef: "cb-secret"}
	})
	e.final(rr, 10*time.Second)
	var reqs []received
	for deadline := time.Now().Add(10 * time.Second); len(reqs) < 1 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		reqs = srv.got()
	}
	if len(reqs) != 1 {
		t.Fatalf("%d callbacks", len(reqs))
	}
	checkSignature(t, reqs[0], cbSecret)
	if !strings.Contains(string(reqs[0].body), `"output":"<b>&amp;</b>\n"`) {
		t.Fatalf("callback body %s: want the output as printed", reqs[0].body)
	}
}

// A receiver's 410 Gone ends the callback at once (no day of retries);
// its Retry-After on a 429 is waited for when longer than the backoff.
func TestExecutor_CallbackHonoursGoneAndRetryAfter(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	gone := newRecorder(t, 0, http.StatusGone, 200)
	throttling := newRecorder(t, 0, http.StatusTooManyRequests, 200)
	throttling.retryAfter = "2"
	e.start(nil)
	job := e.script("cb", `true`)
	for _, srv := range []*recorder{gone, throttling} {
		rr := e.submit(job, "{}", func(rr *message.RunRequest) {
			rr.Callback = &message.Callback{URL: srv.srv.URL + "/results"}
		})
		e.final(rr, 10*time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(throttling.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	reqs := throttling.got()
	if len(reqs) != 2 {
		t.Fatalf("throttling receiver: %d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 2*time.Second {
		t.Fatalf("retried %s after a 429 with Retry-After: 2 (backoff %s)", gap, e.conf.CallbackBackoff[0])
	}
	// The gone receiver's retry would have come after 200 ms.
	if n := len(gone.got()); n != 1 {
		t.Fatalf("receiver answering 410: %d requests, want 1", n)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "0": 0, "-5": 0, "soon": 0, "120": 2 * time.Minute, " 7 ": 7 * time.Second,
		"99999999": maxRetryAfter, "Sun, 29 Nov 2026 12:01:00 GMT": time.Minute,
		"Sun, 29 Nov 2026 11:00:00 GMT": 0, "Mon, 30 Nov 2026 12:00:00 GMT": maxRetryAfter,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// A callback goes where its webhook's spec.callback says at each attempt:
// a URL changed since the run was queued takes its retries; a webhook
// disabled, deleted (or deleted and made again), or whose callback was
// removed sends none, those waiting for a retry included. Whether the
// executor's catalog has the webhook or only the bucket's leader does (a
// webhook made a moment ago), the same.
func TestExecutor_ACallbackFollowsItsWebhook(t *testing.T) {
	t.Parallel()
	for _, misses := range []bool{false, true} {
		t.Run(fmt.Sprintf("catalogMisses=%v", misses), func(t *testing.T) {
			t.Parallel()
			testCallbackFollowsItsWebhook(t, misses)
		})
	}
}

func testCallbackFollowsItsWebhook(t *testing.T, catalogMisses bool) {
	e := newXEnv(t)
	ok := newRecorder(t, 0, 200)
	failing := newRecorder(t, 0, 500)
	run := e.startWith(e.nc, e.js, func(c *Config) {
		c.CallbackBackoff = []time.Duration{1500 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
	}, func(x *Executor) { x.catalogMisses = catalogMisses })
	job := e.script("cb-follows", `true`)
	hook := func(name, url string, mod func(*resource.Webhook)) *resource.Webhook {
		w := resource.Webhook{Metadata: resource.Meta{Name: name}, Spec: resource.WebhookSpec{
			Job: job.Metadata.Name, Auth: resource.Auth{None: &struct{}{}}, Callback: &resource.Callback{URL: url + "/" + name},
		}}
		if mod != nil {
			mod(&w)
		}
		return e.cfg.Webhook(w)
	}
	live := hook("live", ok.srv.URL, nil)
	quiet := hook("quiet", ok.srv.URL, func(w *resource.Webhook) { w.Spec.Disabled = true })
	// "again" was deleted and made again after its predecessor's run:
	// the run (its id derived from the predecessor's uid) is not its.
	again := hook("again", ok.srv.URL, nil)
	predecessor := *again
	predecessor.Metadata.UID = ident.NewUID()
	// "gone" was deleted: no record at all.
	gone := resource.Webhook{Metadata: resource.Meta{Name: "gone", Namespace: "default", UID: ident.NewUID()}}
	// "moved" and "removed" fail their first attempt, then change.
	moved := hook("moved", failing.srv.URL, nil)
	removed := hook("removed", failing.srv.URL, nil)
	inCatalog := func(name string, check func(*resource.Webhook) bool) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			if w, ok := run.x.cat.Webhook("default", name); !ok || !check(w) {
				return fmt.Errorf("the executor's catalog lacks webhook %s as stored", name)
			}
			return nil
		})
	}
	for _, n := range []string{"live", "quiet", "again", "moved", "removed"} {
		inCatalog(n, func(*resource.Webhook) bool { return true })
	}
	for _, w := range []*resource.Webhook{quiet, live, &predecessor, &gone, moved, removed} {
		rr := e.submit(job, "{}", from(w), func(rr *message.RunRequest) {
			rr.Callback = &message.Callback{URL: ok.srv.URL + "/bound-" + w.Metadata.Name}
		})
		e.final(rr, 10*time.Second)
	}
	sentTo := func(r *recorder, name string) (n int) {
		for _, q := range r.got() {
			var body CallbackBody
			_ = json.Unmarshal(q.body, &body)
			if body.Run.Webhook == name {
				n++
			}
		}
		return n
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if sentTo(failing, "moved") == 0 || sentTo(failing, "removed") == 0 {
			return errors.New("moved's and removed's first attempts have not come")
		}
		return nil
	})
	m := *moved
	m.Spec.Callback = &resource.Callback{URL: ok.srv.URL + "/moved-here"}
	e.cfg.Webhook(m)
	r := *removed
	r.Spec.Callback = nil
	e.cfg.Webhook(r)
	// Both changes are in the catalog well before the retries, due 1.5 s
	// after the first attempts.
	inCatalog("moved", func(w *resource.Webhook) bool { return w.Spec.Callback.URL == m.Spec.Callback.URL })
	inCatalog("removed", func(w *resource.Webhook) bool { return w.Spec.Callback == nil })
	testenv.Eventually(t, 10*time.Second, func() error {
		if sentTo(ok, "moved") == 0 {
			return errors.New("moved's retry has not come to its new URL")
		}
		return nil
	})
	time.Sleep(time.Second) // removed's retries were due meanwhile
	if n := sentTo(failing, "removed"); n != 1 {
		t.Errorf("removed's callback was attempted %d times, want once (before its callback was removed)", n)
	}
	if n := sentTo(failing, "moved"); n != 1 {
		t.Errorf("moved's callback was attempted %d times at its old URL, want once (before its URL changed)", n)
	}
	want(t, "live's callbacks", sentTo(ok, "live"), 1)
	for _, q := range ok.got() {
		var body CallbackBody
		_ = json.Unmarshal(q.body, &body)
		switch body.Run.Webhook {
		case "quiet", "again", "gone", "removed":
			t.Errorf("a callback of webhook %s was sent: %s", body.Run.Webhook, q.body)
		case "moved":
			want(t, "moved's callback's path", q.path, "/moved-here")
		case "live":
			want(t, "live's callback's path", q.path, "/live")
		}
	}
	if v, _ := counter(t, "hookrun_executor_callbacks_total", map[string]string{"outcome": "dropped"}); v < 4 {
		t.Errorf("hookrun_executor_callbacks_total{outcome=dropped} = %v, want at least this test's 4", v)
	}
}

// A 410 Gone from a URL the callback no longer goes to (the secret holding
// its URL was rotated while the receiver answered) is no reason to give
// up: the callback is retried at the new URL.
func TestExecutor_AGoneFromAMovedCallbackURLIsRetriedThere(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	old := newRecorder(t, 1500*time.Millisecond, http.StatusGone)
	moved := newRecorder(t, 0, 200)
	e.cfg.Secret("default", "cb-url", old.srv.URL+"/results", "", 0)
	e.start(func(c *Config) { c.CallbackBackoff = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond} })
	job := e.script("cb-moved", `true`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URLSecretRef: "cb-url"}
	})
	e.final(rr, 10*time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if len(old.got()) == 0 {
			return errors.New("the callback has not reached its first URL")
		}
		return nil
	})
	// The receiver holds its answer; the URL moves meanwhile.
	e.cfg.Secret("default", "cb-url", moved.srv.URL+"/results", "", 0)
	testenv.Eventually(t, 10*time.Second, func() error {
		if len(moved.got()) == 0 {
			return errors.New("the callback was not retried at its new URL after the old one answered 410")
		}
		return nil
	})
	if n := len(old.got()); n != 1 {
		t.Fatalf("the old URL got %d requests, want 1", n)
	}
}

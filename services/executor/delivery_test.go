package executor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// received is one request a test server got.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
	path   string
}

// recorder is an httptest server that answers with the statuses in
// answers, one per request (the last one repeats), after delay.
type recorder struct {
	mu         sync.Mutex
	reqs       []received
	answers    []int
	delay      time.Duration
	srv        *httptest.Server
	retryAfter string // sent with a 429 answer
}

func newRecorder(t *testing.T, delay time.Duration, answers ...int) *recorder {
	r := &recorder{answers: answers, delay: delay}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{at: time.Now(), header: req.Header.Clone(), body: body, path: req.URL.Path})
		code := r.answers[min(len(r.reqs), len(r.answers))-1]
		r.mu.Unlock()
		select {
		case <-time.After(r.delay):
		case <-req.Context().Done():
			return
		}
		if code == http.StatusTooManyRequests && r.retryAfter != "" {
			w.Header().Set("Retry-After", r.retryAfter)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("answer " + strconv.Itoa(code)))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// cbSecret is a Standard Webhooks secret, as a Secret of that format
// generates: callbacks signed with it carry both signatures.
const cbSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// checkSignature verifies X-Hookrun-Signature as a receiver would.
func checkSignature(t *testing.T, q received, secret string) {
	t.Helper()
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(q.body)
	wantSig := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := q.header.Get(HeaderSignature); !hmac.Equal([]byte(got), []byte(wantSig)) {
		t.Fatalf("%s = %q, want %q", HeaderSignature, got, wantSig)
	}
	ts, err := strconv.ParseInt(q.header.Get(HeaderTimestamp), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)) > time.Minute {
		t.Fatalf("%s = %q, want a recent unix time", HeaderTimestamp, q.header.Get(HeaderTimestamp))
	}
	// With a Standard Webhooks secret, also signed as Standard Webhooks,
	// over id, timestamp and body: a receiver using their libraries
	// verifies it, and an altered timestamp (a replay made to look fresh)
	// fails. Other secrets cannot be used by those libraries: no such header.
	if !signature.IsStandardSecret(secret) {
		if v := q.header.Get("Webhook-Signature"); v != "" {
			t.Fatalf("Webhook-Signature %q with a secret Standard Webhooks cannot use", v)
		}
		return
	}
	sw, _ := signature.Lookup("standard-webhooks")
	id, err := sw.Verify(signature.Request{Header: q.header, Body: q.body}, []string{secret}, time.Now())
	if err != nil || id != q.header.Get(HeaderID) {
		t.Fatalf("Standard Webhooks signature: id %q, %v (headers %v)", id, err, q.header)
	}
	replay := q.header.Clone()
	replay.Set("Webhook-Timestamp", strconv.FormatInt(time.Now().Unix()+1, 10))
	if _, err := sw.Verify(signature.Request{Header: replay, Body: q.body}, []string{secret}, time.Now()); err == nil {
		t.Fatal("the Standard Webhooks signature does not cover the timestamp")
	}
}

// A failed HTTP job's error names the scheme and host it called, never the
// path or query, where credentials live (an API key in the query, the token
// in the path of a Slack incoming webhook): the error is in the run's
// status, which API readers and callback receivers get.
func TestExecutor_HTTPJobErrorHidesTheURLsPathAndQuery(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the request fails to connect
	e := newXEnv(t)
	e.start(nil)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-refused"}, Spec: resource.JobSpec{
		HTTP: &resource.HTTPAction{URL: "http://" + addr + "/services/T000/B000/XSECRETPATH?api_key=QSECRET"},
	}})
	rr := e.submit(job, "{}")
	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	if strings.Contains(r.Error, "SECRET") || !strings.Contains(r.Error, "http://"+addr) {
		t.Fatalf("error %q: want the host, not the path or query", r.Error)
	}
}

func TestExecutor_HTTPJobs(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "job-secret", "job-signing-key", "", 0)
	e.start(nil)
	cases := []struct {
		name     string
		answer   int
		delay    time.Duration
		body     string // the job's body template
		status   string
		wantBody string
	}{
		{name: "2xx-succeeds", answer: 204, status: message.StatusSucceeded, wantBody: `{"topic":"robots"}`},
		{name: "non-2xx-fails", answer: 502, status: message.StatusFailed, wantBody: `{"topic":"robots"}`},
		{name: "timeout", answer: 200, delay: 5 * time.Second, status: message.StatusTimedOut, wantBody: `{"topic":"robots"}`},
		{name: "body-template", answer: 200, body: `{"text":"{{ .args.topic }} from {{ .body.topic }}","run":"{{ .run }}"}`, status: message.StatusSucceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newRecorder(t, c.delay, c.answer)
			job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-" + c.name}, Spec: resource.JobSpec{
				HTTP:    &resource.HTTPAction{URL: srv.srv.URL + "/hook", Headers: map[string]string{"X-Team": "infra"}, Body: c.body, SecretRef: "job-secret"},
				Timeout: resource.Duration(500 * time.Millisecond),
			}})
			rr := e.submit(job, `{"topic":"robots"}`, func(rr *message.RunRequest) { rr.Args = map[string]string{"topic": "AI"} })
			r := e.final(rr, 10*time.Second)
			want(t, "status", r.Status, c.status)
			reqs := srv.got()
			want(t, "requests", len(reqs), 1)
			q := reqs[0]
			checkSignature(t, q, "job-signing-key")
			want(t, "X-Team", q.header.Get("X-Team"), "infra")
			want(t, "X-Hookrun-Run", q.header.Get("X-Hookrun-Run"), rr.ID)
			want(t, "X-Hookrun-Attempt", q.header.Get("X-Hookrun-Attempt"), "1")
			// The id receivers dedup by names the delivery: a later
			// delivery of the event runs again under the same run id.
			want(t, "X-Hookrun-Id", q.header.Get(HeaderID), rr.ID+"."+rr.DeliveryID)
			wantBody := c.wantBody
			if c.body != "" {
				wantBody = `{"text":"AI from robots","run":"` + rr.ID + `"}`
			}
			want(t, "body", string(q.body), wantBody)
			switch c.status {
			case message.StatusFailed:
				want(t, "exit code", *r.ExitCode, c.answer)
				want(t, "error", r.Error, "HTTP 502")
				want(t, "output", r.Output, "answer 502")
			case message.StatusTimedOut:
				if !strings.Contains(r.Error, "timed out after 500ms") {
					t.Fatalf("error %q", r.Error)
				}
			}
		})
	}
}

func TestExecutor_CallbackSignedAndRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "cb-secret", cbSecret, "", 0)
	srv := newRecorder(t, 0, 500, 503, 200)
	e.start(nil)
	job := e.script("reported", `echo hello`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URL: srv.srv.URL + "/results", SecretRef: "cb-secret"}
	})
	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded) // stored before any callback answered

	var reqs []received
	deadline := time.Now().Add(10 * time.Second)
	for len(reqs) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		reqs = srv.got()
	}
	want(t, "callback attempts", len(reqs), 3)
	for i, q := range reqs {
		checkSignature(t, q, cbSecret)
		// Per run, delivery (a run id is reused by a later delivery of
		// the event) and status.
		want(t, "id header", q.header.Get(HeaderID), rr.ID+"."+rr.DeliveryID+"."+message.StatusSucceeded)
		var body CallbackBody
		if err := json.Unmarshal(q.body, &body); err != nil {
			t.Fatal(err)
		}
		want(t, "type", body.Type, "run.succeeded")
		want(t, "run", body.Run.ID, rr.ID)
		want(t, "output", body.Run.Output, "hello\n")
		if i > 0 {
			gap, backoff := q.at.Sub(reqs[i-1].at), e.conf.CallbackBackoff[i-1]
			if gap < backoff {
				t.Fatalf("retry %d after %s, backoff %s", i, gap, backoff)
			}
		}
	}
	time.Sleep(600 * time.Millisecond)
	want(t, "requests after success", len(srv.got()), 3)
}

func TestExecutor_CallbackGivenUpAfterLastBackoff(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	srv := newRecorder(t, 0, 500)
	e.start(func(c *Config) { c.CallbackBackoff = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond} })
	job := e.script("unheard", `true`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: srv.srv.URL} })
	want(t, "status", e.final(rr, 10*time.Second).Status, message.StatusSucceeded)
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	want(t, "attempts", len(srv.got()), 3)
	if srv.got()[0].header.Get(HeaderSignature) != "" {
		t.Fatal("a callback without a secret cannot be signed")
	}
}

// A receiver that never answers takes at most half the senders: another
// receiver's callback goes out at once, not after the hung ones time out.
func TestExecutor_HangingCallbackReceiverDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	hung := newRecorder(t, time.Hour, 200)
	fast := newRecorder(t, 0, 200)
	e.start(func(c *Config) {
		c.CallbackConcurrency, c.CallbackTimeout = 2, 3*time.Second
		c.CallbackBackoff = []time.Duration{time.Minute}
	})
	job := e.script("reported", `true`)
	for range 6 {
		e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: hung.srv.URL} })
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if len(hung.got()) == 0 {
			return errors.New("no callback reached the hung receiver yet")
		}
		return nil
	})
	rr := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: fast.srv.URL} })
	r := e.final(rr, 10*time.Second)
	testenv.Eventually(t, 15*time.Second, func() error {
		if len(fast.got()) == 0 {
			return errors.New("no callback at the healthy receiver yet")
		}
		return nil
	})
	if gap := fast.got()[0].at.Sub(*r.FinishedAt); gap > 2500*time.Millisecond {
		t.Fatalf("the healthy receiver's callback came %s after its run finished: queued behind the hung receiver's (timeout 3s)", gap)
	}
}

// However many callbacks wait for a receiver that hangs, another
// receiver's callback goes out at once: a host has at most a quarter of the
// waiting callbacks, the rest of its callbacks are retried later, as if it
// had refused them.
func TestExecutor_ManyCallbacksToAHangingReceiverDoNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	hung := newRecorder(t, time.Hour, 200)
	fast := newRecorder(t, 0, 200)
	e.start(func(c *Config) {
		c.CallbackConcurrency, c.CallbackTimeout = 2, time.Second // 128 waiting at most, 32 per host
		c.CallbackBackoff = []time.Duration{time.Hour}
	})
	ctx := context.Background()
	now := time.Now().UTC()
	final := func(id, url string) {
		r := &message.Run{Kind: message.KindRun, ID: id, Namespace: "default", Job: "j", DeliveryID: "d-" + id,
			Status: message.StatusSucceeded, FinishedAt: &now, Callback: &message.Callback{URL: url}}
		if err := runstatus.Publish(ctx, e.js, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 150 {
		final(fmt.Sprintf("hung-%03d", i), hung.srv.URL)
	}
	stored := time.Now()
	final("healthy", fast.srv.URL)
	testenv.Eventually(t, 30*time.Second, func() error {
		if len(fast.got()) == 0 {
			return errors.New("no callback at the healthy receiver yet")
		}
		return nil
	})
	if gap := fast.got()[0].at.Sub(stored); gap > 2500*time.Millisecond {
		t.Fatalf("the healthy receiver's callback came %s after its status was stored: queued behind the hung receiver's", gap)
	}
}

// An HTTP job's answer longer than the output bound is kept to its first
// MaxOutput bytes, marked as cut, as a command's output is.
func TestExecutor_HTTPJobLongAnswerIsMarkedTruncated(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.MaxOutput = 100
	e.start(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("a", 150)))
	}))
	t.Cleanup(srv.Close)
	job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "http-long"}, Spec: resource.JobSpec{HTTP: &resource.HTTPAction{URL: srv.URL}}})
	r := e.final(e.submit(job, "{}"), 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "output", r.Output, strings.Repeat("a", 100)+"\n[…response truncated…]\n")
}

// An executor stopped while it sends a callback hands it back: that is not
// one of the callback's attempts, however many times executors stop while
// its receiver is slow (a rolling deploy), so the receiver still gets
// every attempt after them, and then it is given up.
func TestExecutor_CallbacksHandedBackAtShutdownKeepTheirAttempts(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	const handBacks = 8
	var mu sync.Mutex
	requests := 0
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body) // so that the server sees the executor hang up
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		arrived <- struct{}{}
		if n <= handBacks { // held until the executor stops
			select {
			case <-req.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	got := func() int {
		mu.Lock()
		defer mu.Unlock()
		return requests
	}
	backoff := func(c *Config) { c.CallbackBackoff = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond} }
	x := e.start(backoff)
	job := e.script("slow-receiver", `true`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: srv.URL} })
	want(t, "status", e.final(rr, 10*time.Second).Status, message.StatusSucceeded)
	for i := range handBacks {
		select {
		case <-arrived:
		case <-time.After(30 * time.Second): // an executor's start on a loaded machine (CI) took over 10 s
			t.Fatalf("callback %d did not arrive (%d requests)", i+1, got())
		}
		x.stop()
		x = e.start(backoff)
	}
	deadline := time.Now().Add(30 * time.Second)
	for got() < handBacks+3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	// The 3 attempts of a 2-step backoff, after the hand-backs, and no more.
	want(t, "requests", got(), handBacks+3)
}

package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/runstatus"
	"github.com/hookrun/hookrun/pkg/service"
	"github.com/hookrun/hookrun/pkg/testenv"
)

func def(s string) *string { return &s }

// parseEnv splits `env -0` output.
func parseEnv(b []byte) map[string]string {
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			out[k] = v
		}
	}
	return out
}

// Not parallel: it sets the executor's own environment (t.Setenv).
func TestExecutor_EnvironmentIsTheJobInputContractOnly(t *testing.T) {
	t.Setenv("HOOKRUN_SECRET_KEY", "executor-secret-key")
	t.Setenv("HOOKRUN_NATS_PASSWORD", "executor-nats-password")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "executor-aws")
	e := newXEnv(t)
	e.start(nil)
	payload := "{\"topic\":\"robots\",\n\"n\":1}"
	cases := []struct {
		prefix string
		// allowed lists what a job may see beside the contract, all but
		// what the shell itself adds.
	}{{"HOOKRUN"}, {"JANUS"}}
	for _, c := range cases {
		t.Run(c.prefix, func(t *testing.T) {
			name := "env-" + strings.ToLower(c.prefix)
			job := e.script(name, `env -0 > "$OUT/`+name+`.env"; pwd > "$OUT/`+name+`.pwd"; echo "payload: $`+c.prefix+`_ARG_WEBHOOK_PAYLOAD"`, func(j *resource.Job) {
				j.Spec.EnvPrefix = c.prefix
				j.Spec.Args = []resource.Arg{{Name: "topic", Value: "{{ .body.topic }}"}, {Name: "dry-run", Default: def("yes")}}
			})
			rr := e.submit(job, payload, func(rr *message.RunRequest) {
				rr.Args = map[string]string{"topic": "robots", "dry-run": "yes"}
			})
			r := e.final(rr, 15*time.Second)
			want(t, "status", r.Status, message.StatusSucceeded)
			want(t, "exit code", *r.ExitCode, 0)
			if !strings.Contains(r.Output, "payload: "+payload) {
				t.Fatalf("output %q should hold the payload from $%s_ARG_WEBHOOK_PAYLOAD", r.Output, c.prefix)
			}
			b, err := os.ReadFile(filepath.Join(e.out, name+".env"))
			if err != nil {
				t.Fatal(err)
			}
			env := parseEnv(b)
			p := c.prefix + "_"
			headers, _ := json.Marshal(rr.Header)
			wantEnv := map[string]string{
				p + "ARG_TOPIC":           "robots",
				p + "ARG_DRY_RUN":         "yes",
				p + "ARG_WEBHOOK_PAYLOAD": payload,
				p + "WEBHOOK_EVENT_ID":    rr.EventID,
				p + "WEBHOOK_RECEIVED_AT": rr.ReceivedAt.UTC().Format(time.RFC3339Nano),
				p + "WEBHOOK_SOURCE":      "github",
				p + "WEBHOOK_HEADERS":     string(headers),
				p + "WEBHOOK_NAME":        "hook",
				p + "WEBHOOK_DELIVERY_ID": rr.DeliveryID,
				p + "JOB_NAME":            name,
				p + "RUN_ID":              rr.ID,
				p + "RUN_ATTEMPT":         "1",
				"OUT":                     e.out,
			}
			for k, v := range wantEnv {
				if env[k] != v {
					t.Errorf("%s = %q, want %q", k, env[k], v)
				}
			}
			file := env[p+"WEBHOOK_PAYLOAD_FILE"]
			if file == "" || !strings.HasPrefix(file, e.conf.WorkDir) {
				t.Fatalf("%sWEBHOOK_PAYLOAD_FILE = %q, want a file in the run's directory", p, file)
			}
			// Nothing of the executor's own environment but PATH.
			shell := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "PWD": true, "OLDPWD": true, "SHLVL": true, "_": true, "OUT": true}
			for k, v := range env {
				if strings.Contains(v, "executor-") {
					t.Errorf("the executor's environment leaked: %s=%s", k, v)
				}
				if !shell[k] && !strings.HasPrefix(k, p) {
					t.Errorf("unexpected variable %s", k)
				}
			}
			// A fresh working directory, removed after the run.
			dir := strings.TrimSpace(mustRead(t, filepath.Join(e.out, name+".pwd")))
			if filepath.Dir(dir) != e.conf.WorkDir || env["HOME"] != dir || filepath.Dir(file) != dir {
				t.Fatalf("working directory %q, HOME %q, payload file %q: want one fresh directory in %s", dir, env["HOME"], file, e.conf.WorkDir)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("working directory %s still exists after the run (%v)", dir, err)
			}
		})
	}
	want(t, "run directories left", len(runDirs(t, e.conf.WorkDir)), 0)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExecutor_PayloadOutsideEnvironmentLimitsIsOnlyInTheFile(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("big", `if [ -z "${HOOKRUN_ARG_WEBHOOK_PAYLOAD+x}" ]; then echo "env: absent"; else echo "env: present"; fi
sha256sum < "$HOOKRUN_WEBHOOK_PAYLOAD_FILE"`)
	cases := []struct {
		name    string
		payload string
		inEnv   bool
	}{
		{"200KiB", strings.Repeat("0123456789abcdef", 200<<10/16), false},
		{"just-under-128KiB", strings.Repeat("x", maxEnvPayload-len("HOOKRUN_ARG_WEBHOOK_PAYLOAD=")), true},
		{"one-byte-more", strings.Repeat("x", maxEnvPayload-len("HOOKRUN_ARG_WEBHOOK_PAYLOAD=")+1), false},
		{"binary-with-NUL", "a\x00b", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rr := e.submit(job, c.payload)
			r := e.final(rr, 15*time.Second)
			want(t, "status", r.Status, message.StatusSucceeded)
			sum := sha256.Sum256([]byte(c.payload))
			if !strings.Contains(r.Output, hex.EncodeToString(sum[:])) {
				t.Fatalf("the payload file does not hold the payload: %q", r.Output)
			}
			wantEnv := "env: absent"
			if c.inEnv {
				wantEnv = "env: present"
			}
			if !strings.Contains(r.Output, wantEnv) {
				t.Fatalf("output %q, want %q", r.Output, wantEnv)
			}
		})
	}
}

// Headers are the sender's to choose, up to the ingress' limit: too large
// for one variable, they go to a file instead of failing the start.
func TestExecutor_HeadersOutsideEnvironmentLimitsAreInAFile(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("headers", `if [ -n "${HOOKRUN_WEBHOOK_HEADERS+x}" ]; then printf %s "$HOOKRUN_WEBHOOK_HEADERS" > "$OUT/$HOOKRUN_RUN_ID.env"; fi
if [ -n "${HOOKRUN_WEBHOOK_HEADERS_FILE+x}" ]; then cat "$HOOKRUN_WEBHOOK_HEADERS_FILE" > "$OUT/$HOOKRUN_RUN_ID.file"; fi`)
	for _, c := range []struct {
		name  string
		value string
		inEnv bool
	}{
		// 30,000 '<' fit in a variable as they are; escaped as \u003c
		// (180,000 bytes) they would not.
		{"angle-brackets", strings.Repeat("<", 30000), true},
		// Within the ingress' 64 KiB of headers, bytes that are not UTF-8
		// become U+FFFD in JSON, three bytes each: past one variable's 128 KiB.
		{"not-utf8", strings.Repeat("\xff", 60000), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rr := e.submit(job, "{}", func(rr *message.RunRequest) {
				rr.Header = map[string][]string{"X-Big": {c.value}, "X-Other": {"1"}}
			})
			r := e.final(rr, 15*time.Second)
			want(t, "status", r.Status, message.StatusSucceeded)
			var got map[string][]string
			where := rr.ID + ".file"
			if c.inEnv {
				where = rr.ID + ".env"
			}
			if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(e.out, where))), &got); err != nil {
				t.Fatalf("headers in %s: %v", where, err)
			}
			if got["X-Big"][0] != strings.ToValidUTF8(c.value, "\uFFFD") && got["X-Big"][0] != strings.Repeat("\uFFFD", len(c.value)) || got["X-Other"][0] != "1" {
				t.Fatalf("headers in %s are not the delivery's", where)
			}
			other := rr.ID + ".env"
			if c.inEnv {
				other = rr.ID + ".file"
			}
			if _, err := os.Stat(filepath.Join(e.out, other)); !os.IsNotExist(err) {
				t.Fatalf("headers both in the environment and in a file (%v)", err)
			}
		})
	}
	want(t, "run directories left", len(runDirs(t, e.conf.WorkDir)), 0)
}

func TestExecutor_TimeoutKillsTheWholeProcessGroup(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	// A background grandchild, and one that ignores SIGTERM so that only
	// the SIGKILL after KillGrace ends it.
	job := e.script("slow", `sleep 300 & echo $! > "$OUT/bg.pid"
sh -c 'trap "" TERM; echo $$ > "$OUT/stubborn.pid"; exec sleep 301' &
sleep 302`, func(j *resource.Job) { j.Spec.Timeout = resource.Duration(time.Second) })
	start := time.Now()
	rr := e.submit(job, "{}")
	bg, stubborn := e.pidOf("bg.pid"), e.pidOf("stubborn.pid")
	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusTimedOut)
	if !strings.Contains(r.Error, "timed out after 1s") {
		t.Fatalf("error %q should say it timed out", r.Error)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("the run took %s to time out", took)
	}
	waitGone(t, bg, "background grandchild")
	waitGone(t, stubborn, "grandchild ignoring SIGTERM")
	want(t, "run directories left", len(runDirs(t, e.conf.WorkDir)), 0)
}

func TestExecutor_LeftoverBackgroundProcessDoesNotFailOrOutliveTheRun(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("daemon", `sleep 300 & echo $! > "$OUT/daemon.pid"; echo started`)
	rr := e.submit(job, "{}")
	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "output", strings.TrimSpace(r.Output), "started")
	waitGone(t, e.pidOf("daemon.pid"), "background process")
}

func TestExecutor_FailedRunKeepsExitCodeAndOutputTail(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.MaxOutput = 1024
	e.start(nil)
	job := e.script("chatty", `i=1; while [ $i -le 3000 ]; do echo "line $i"; i=$((i+1)); done; echo "to stderr" >&2; exit 3`)
	lines := make(chan string, 4096)
	sub, err := e.nc.Subscribe(bus.OutputSubject("*"), func(m *nats.Msg) { lines <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	rr := e.submit(job, "{}")
	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "exit code", *r.ExitCode, 3)
	want(t, "error", r.Error, "exit status 3")
	if !strings.HasPrefix(r.Output, "[…output truncated…]\n") || !strings.HasSuffix(r.Output, "line 3000\nto stderr\n") {
		t.Fatalf("output should be the marked tail, got %q", r.Output)
	}
	if n := len(r.Output) - len("[…output truncated…]\n"); n > 1024 {
		t.Fatalf("tail of %d bytes, bound 1024", n)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if len(lines) < 3001 {
			return fmt.Errorf("%d live lines", len(lines))
		}
		return nil
	})
	want(t, "first live line", <-lines, "line 1\n")
}

func TestExecutor_ConcurrencyLimitHoldsAcrossExecutors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		executors   int
		perInstance int
		concurrency int
		runs        int
		wantMax     int
	}{
		{"job-limit-across-two-executors", 2, 8, 2, 20, 2},
		{"per-instance-cap", 1, 1, 3, 6, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			job := e.script("limited", `date +%s%N > "$OUT/$HOOKRUN_RUN_ID.start"; sleep 0.2; date +%s%N > "$OUT/$HOOKRUN_RUN_ID.end"`,
				func(j *resource.Job) { j.Spec.Concurrency = c.concurrency })
			var rrs []message.RunRequest
			for range c.runs {
				rrs = append(rrs, e.submit(job, "{}"))
			}
			for range c.executors {
				e.start(func(cf *Config) { cf.MaxConcurrent = c.perInstance })
			}
			type edge struct {
				at    int64
				delta int
			}
			var edges []edge
			for _, rr := range rrs {
				want(t, "status", e.final(rr, 30*time.Second).Status, message.StatusSucceeded)
				s, _ := strconv.ParseInt(e.readFile(rr.ID+".start"), 10, 64)
				en, _ := strconv.ParseInt(e.readFile(rr.ID+".end"), 10, 64)
				edges = append(edges, edge{s, +1}, edge{en, -1})
			}
			sort.Slice(edges, func(i, j int) bool {
				if edges[i].at != edges[j].at {
					return edges[i].at < edges[j].at
				}
				return edges[i].delta < edges[j].delta // an end before a start at the same instant
			})
			cur, peak := 0, 0
			for _, ed := range edges {
				cur += ed.delta
				peak = max(peak, cur)
			}
			if peak > c.wantMax {
				t.Fatalf("%d runs overlapped, limit %d", peak, c.wantMax)
			}
			if peak < c.wantMax {
				t.Logf("peak overlap %d (limit %d)", peak, c.wantMax)
			}
		})
	}
}

func TestExecutor_RetriesWithBackoff(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	t.Run("succeeds-on-third-attempt", func(t *testing.T) {
		job := e.script("flaky", `date +%s%N >> "$OUT/flaky.attempts"; [ "$HOOKRUN_RUN_ATTEMPT" -ge 3 ]`, func(j *resource.Job) {
			j.Spec.Retries, j.Spec.RetryBackoff = 2, resource.Duration(200*time.Millisecond)
		})
		rr := e.submit(job, "{}")
		r := e.final(rr, 15*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 3)
		var at []int64
		for _, l := range strings.Fields(mustRead(t, filepath.Join(e.out, "flaky.attempts"))) {
			n, _ := strconv.ParseInt(l, 10, 64)
			at = append(at, n)
		}
		want(t, "attempts run", len(at), 3)
		if gap := time.Duration(at[1] - at[0]); gap < 200*time.Millisecond {
			t.Fatalf("first retry after %s, backoff 200ms", gap)
		}
		if gap := time.Duration(at[2] - at[1]); gap < 400*time.Millisecond {
			t.Fatalf("second retry after %s, backoff doubled to 400ms", gap)
		}
		retries := 0
		for _, h := range e.history(rr) {
			if h.Status == message.StatusQueued && h.Attempt > 0 {
				retries++
				if !strings.Contains(h.Error, "retrying in") {
					t.Fatalf("retry status without its reason: %q", h.Error)
				}
			}
		}
		want(t, "retry statuses", retries, 2)
		want(t, "final statuses", finals(e.history(rr)), 1)
	})
	t.Run("gives-up-after-retries", func(t *testing.T) {
		job := e.script("broken", `exit 7`, func(j *resource.Job) {
			j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(100*time.Millisecond)
		})
		rr := e.submit(job, "{}")
		r := e.final(rr, 15*time.Second)
		want(t, "status", r.Status, message.StatusFailed)
		want(t, "attempt", r.Attempt, 2)
		want(t, "exit code", *r.ExitCode, 7)
	})
	t.Run("no-retries-by-default", func(t *testing.T) {
		job := e.script("once", `echo x >> "$OUT/once.attempts"; exit 1`)
		rr := e.submit(job, "{}")
		want(t, "status", e.final(rr, 15*time.Second).Status, message.StatusFailed)
		time.Sleep(300 * time.Millisecond)
		want(t, "attempts", strings.Count(mustRead(t, filepath.Join(e.out, "once.attempts")), "x"), 1)
	})
}

func TestExecutor_CancelRunningRun(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("long", `sleep 300 & echo $! > "$OUT/long.pid"; wait`)
	rr := e.submit(job, "{}")
	e.waitStatus(rr, message.StatusRunning, 1)
	pid := e.pidOf("long.pid")
	e.cancelRun(rr, false)
	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusCancelled)
	waitGone(t, pid, "cancelled run's process")
	want(t, "final statuses", finals(e.history(rr)), 1)
}

func TestExecutor_CancelQueuedRunNeverStarts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// keysStoredStatus: keys found the run queued and stored its
		// cancelled status itself.
		keysStoredStatus bool
	}{{"status-stored-by-keys", true}, {"mark-only", false}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			job := e.script("queued", `touch "$OUT/ran"`)
			rr := e.submit(job, "{}")
			e.cancelRun(rr, c.keysStoredStatus)
			e.start(nil)
			r := e.final(rr, 10*time.Second)
			want(t, "status", r.Status, message.StatusCancelled)
			// The request leaves RUNS (acked) without running.
			e.waitRunsAcked()

			if _, err := os.Stat(filepath.Join(e.out, "ran")); err == nil {
				t.Fatal("a cancelled queued run was started")
			}
			want(t, "final statuses", finals(e.history(rr)), 1)
		})
	}
}

// A run id is the event's: a later delivery of a cancelled event (sent
// again after its dedup window) runs under the same id while the earlier
// run's cancel mark is still in the bucket. The mark names the delivery it
// cancelled: the later delivery's run is not cancelled by it.
func TestExecutor_CancelMarkOfAnEarlierDeliveryDoesNotCancelALaterOne(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("again", `touch "$OUT/ran-$HOOKRUN_WEBHOOK_DELIVERY_ID"`)
	first := e.submit(job, "{}")
	e.cancelRun(first, true)
	e.start(nil)
	want(t, "first delivery", e.final(first, 10*time.Second).Status, message.StatusCancelled)

	second := e.submit(job, "{}", func(rr *message.RunRequest) { rr.ID, rr.EventID = first.ID, first.EventID })
	testenv.Eventually(t, 10*time.Second, func() error {
		r, err := runstatus.Get(context.Background(), e.js, second.ID)
		if err != nil || r.DeliveryID != second.DeliveryID || !message.Final(r.Status) {
			return fmt.Errorf("second delivery's run: %+v, %v", r, err)
		}
		if r.Status != message.StatusSucceeded {
			t.Fatalf("second delivery's run ended %s (%s), want succeeded: the earlier cancel applied to it", r.Status, r.Error)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(e.out, "ran-"+second.DeliveryID)); err != nil {
		t.Fatalf("the second delivery's run did not run: %v", err)
	}

}

func TestExecutor_ShutdownLetsRunsFinishThenHandsThemBack(t *testing.T) {
	t.Parallel()
	t.Run("finishes-within-grace", func(t *testing.T) {
		t.Parallel()
		e := newXEnv(t)
		x := e.start(func(c *Config) { c.ShutdownGrace = 5 * time.Second })
		job := e.script("short", `sleep 0.5; echo done`)
		rr := e.submit(job, "{}")
		e.waitStatus(rr, message.StatusRunning, 1)
		x.stop()
		r := e.final(rr, time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 1)
	})
	t.Run("handed-back-after-grace", func(t *testing.T) {
		t.Parallel()
		e := newXEnv(t)
		x := e.start(func(c *Config) { c.ShutdownGrace = 300 * time.Millisecond })
		job := e.script("long", `if [ "$HOOKRUN_RUN_ATTEMPT" = 1 ]; then sleep 300; fi; echo "attempt $HOOKRUN_RUN_ATTEMPT"`)
		rr := e.submit(job, "{}")
		e.waitStatus(rr, message.StatusRunning, 1)
		stopped := time.Now()
		x.stop()
		if took := time.Since(stopped); took > 3*time.Second {
			t.Fatalf("shutdown took %s with a 300ms grace", took)
		}
		e.start(nil)
		r := e.final(rr, 10*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 2)
		want(t, "final statuses", finals(e.history(rr)), 1)
	})
}

func TestExecutor_LongRunKeepsItsClaimWithInProgressAcks(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.AckWait = time.Second
	e.start(nil)
	e.start(nil) // would take the run, were it redelivered
	job := e.script("steady", `echo start >> "$OUT/steady.starts"; sleep 2.5`)
	rr := e.submit(job, "{}")
	r := e.final(rr, 10*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 1)
	want(t, "starts", strings.Count(mustRead(t, filepath.Join(e.out, "steady.starts")), "start"), 1)
}

// A run redelivered while this executor still handles it (its in-progress
// acks lost, as when its NATS node is cut off from the cluster) is not run
// a second time beside the first: the redelivery waits, then finds the run
// ended and only acks.
func TestExecutor_RedeliveryOfARunStillHandledHereDoesNotRunItTwice(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	job := e.script("once", `echo "$HOOKRUN_RUN_ATTEMPT" >> "$OUT/ledger"; sleep 1`)
	log := testLogger(t)
	cat := catalog.New(e.js, e.cfg.Box, log)
	x := New(e.conf, e.nc, e.js, cat, service.NewHealth("executor"), log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cat.Run(ctx) }()
	<-cat.Ready()

	// A consumer whose AckWait is far shorter than the executor's keep-alive
	// period: the first delivery comes again while it is being handled.
	cons, err := e.js.CreateOrUpdateConsumer(ctx, bus.StreamRuns, jetstream.ConsumerConfig{
		Durable: "redelivery-test", FilterSubject: bus.RunSubject(job.Metadata.Namespace, job.Metadata.Name),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rr := e.submit(job, "{}")
	fetch := func() jetstream.Msg {
		t.Helper()
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			return m
		}
		t.Fatalf("no delivery: %v", b.Error())
		return nil
	}
	first := fetch()
	done := make(chan struct{})
	go func() { defer close(done); x.handle(ctx, first) }()
	e.waitStatus(rr, message.StatusRunning, 1)
	second := fetch()
	if md, _ := second.Metadata(); md == nil || md.NumDelivered < 2 {
		t.Fatalf("second fetch is not a redelivery: %+v", md)
	}
	x.handle(ctx, second)
	<-done

	want(t, "executions (ledger)", e.readFile("ledger"), "1")
	r := e.final(rr, 5*time.Second)
	want(t, "status", r.Status, message.StatusSucceeded)
	want(t, "attempt", r.Attempt, 1)
	want(t, "final statuses", finals(e.history(rr)), 1)
}

// A job's stdin is /dev/null, read-only, for every run alike: reading it
// ends at once, writing to it fails, and runs side by side share nothing
// through it.
func TestExecutor_StdinIsAnEmptyReadOnlyDevNull(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("stdin", `n=$(cat | wc -c); echo "read $n bytes"; if echo x >&0 2>/dev/null; then echo "stdin writable"; fi; readlink /proc/self/fd/0`)
	var rrs []message.RunRequest
	for i := 0; i < 4; i++ {
		rrs = append(rrs, e.submit(job, "{}"))
	}
	for _, rr := range rrs {
		r := e.final(rr, 15*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "output", strings.TrimSpace(r.Output), "read 0 bytes\n/dev/null")
	}
}

// A failed run waiting out its retry backoff is not running: it must not
// hold its job's only slot (concurrency 1), so the job's next run goes
// first. The retry is a message scheduled in RUNS, not an unacked one.
func TestExecutor_RetryBackoffDoesNotHoldTheJobsSlot(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("serial", `date +%s%N >> "$OUT/serial.$HOOKRUN_WEBHOOK_EVENT_ID"; [ "$HOOKRUN_WEBHOOK_EVENT_ID" != first ] || [ "$HOOKRUN_RUN_ATTEMPT" -ge 2 ]`, func(j *resource.Job) {
		j.Spec.Concurrency = 1
		j.Spec.Retries, j.Spec.RetryBackoff = 1, resource.Duration(3*time.Second)
	})
	first := e.submit(job, "{}", func(rr *message.RunRequest) { rr.EventID = "first" })
	e.waitStatus(first, message.StatusQueued, 1) // attempt 1 failed; its retry waits 3 s
	second := e.submit(job, "{}", func(rr *message.RunRequest) { rr.EventID = "second" })
	r2 := e.final(second, 15*time.Second)
	want(t, "second run", r2.Status, message.StatusSucceeded)
	r1 := e.final(first, 15*time.Second)
	want(t, "first run", r1.Status, message.StatusSucceeded)
	want(t, "first run's attempt", r1.Attempt, 2)
	if !r2.FinishedAt.Before(*r1.StartedAt) {
		t.Fatalf("the second run finished at %s, after the first run's retry started at %s: the retry held the job's slot", r2.FinishedAt, r1.StartedAt)
	}
	var starts []int64
	for _, l := range strings.Fields(mustRead(t, filepath.Join(e.out, "serial.first"))) {
		n, _ := strconv.ParseInt(l, 10, 64)
		starts = append(starts, n)
	}
	want(t, "attempts of the first run", len(starts), 2)
	if gap := time.Duration(starts[1] - starts[0]); gap < 3*time.Second {
		t.Fatalf("retry after %s, before its 3s backoff", gap)
	}
	want(t, "final statuses", finals(e.history(first)), 1)
}

// The ack of a request whose retry was scheduled is lost: JetStream
// redelivers the request while the scheduled copy runs the next attempt,
// on another executor (the executor holding a run defers its own
// redeliveries). The redelivered request must see that the copy owns the
// run, not run the attempt after it beside it. Ten runs on two executors:
// about half the redeliveries land on the other one.
// A retry copy whose own next retry cannot be scheduled (here the
// scheduling publish is a duplicate, as after a time-out NATS had stored)
// holds that retry as an unacked message, and when it comes back it runs
// the next attempt: the run ends, after every attempt, instead of staying
// queued with no request left to run it.
func TestExecutor_RetryCopyWhoseNextRetryCannotBeScheduledStillEnds(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	ledger := filepath.Join(e.out, "held.ledger")
	job := e.script("held", `echo "$HOOKRUN_RUN_ATTEMPT" >> "`+ledger+`"; exit 1`, func(j *resource.Job) {
		j.Spec.Retries, j.Spec.RetryBackoff = 3, resource.Duration(200*time.Millisecond)
	})
	rr := e.submit(job, "{}")
	m := nats.NewMsg(bus.RetryScheduleSubject("other-run"))
	m.Data = []byte("x")
	if _, err := e.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(retryMsgID(rr.ID, rr.DeliveryID, 3)), jetstream.WithExpectStream(bus.StreamRetries)); err != nil {
		t.Fatal(err)
	}
	r := e.final(rr, 30*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	want(t, "attempt", r.Attempt, 4)
	want(t, "attempts run", strings.Join(strings.Fields(mustRead(t, ledger)), ","), "1,2,3,4")
	want(t, "final statuses", finals(e.history(rr)), 1)
}

func TestExecutor_RetryCopyAndRedeliveredOriginalRunOnce(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.conf.AckWait = 2 * time.Second
	ledger := filepath.Join(e.out, "owned.ledger")
	job := e.script("owned", `echo "$HOOKRUN_RUN_ID $HOOKRUN_RUN_ATTEMPT" >> "`+ledger+`"; [ "$HOOKRUN_RUN_ATTEMPT" -ge 2 ] && sleep 3`, func(j *resource.Job) {
		j.Spec.Concurrency = 32
		j.Spec.Retries, j.Spec.RetryBackoff = 2, resource.Duration(500*time.Millisecond)
	})
	for range 2 {
		nc, js := e.connect()
		e.startWith(nc, js, nil, func(x *Executor) { x.loseRetryAck = true })
	}
	var rrs []message.RunRequest
	for range 10 {
		rrs = append(rrs, e.submit(job, "{}"))
	}
	for _, rr := range rrs {
		r := e.final(rr, 30*time.Second)
		want(t, "status", r.Status, message.StatusSucceeded)
		want(t, "attempt", r.Attempt, 2)
	}
	time.Sleep(3 * time.Second) // a second run of attempt 2 or 3 would have started by now
	seen := readLedger(t, ledger)
	for _, rr := range rrs {
		if atts := seen[rr.ID]; len(atts) != 2 {
			t.Errorf("%s ran %d times (attempts %v), want attempts 1 and 2", rr.ID, len(atts), atts)
		}
		want(t, "final statuses", finals(e.history(rr)), 1)
	}
}

// A process a command moved out of its process group (setsid) does not
// outlive the run: it carries the run's markers, and the executor kills
// it within a few seconds of the run's end, timed out or not.
func TestExecutor_ProcessThatLeftItsGroupDoesNotOutliveTheRun(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	for _, c := range []struct {
		name, script string
		timeout      time.Duration
		status       string
	}{
		{"escapes-then-exits", `setsid sleep 300 & echo $! > "$OUT/escaped-exits.pid"`, 0, message.StatusSucceeded},
		{"escapes-then-times-out", `setsid sleep 300 & echo $! > "$OUT/escaped-times-out.pid"; sleep 60`, 500 * time.Millisecond, message.StatusTimedOut},
	} {
		job := e.script(c.name, c.script, func(j *resource.Job) {
			if c.timeout > 0 {
				j.Spec.Timeout = resource.Duration(c.timeout)
			}
		})
		rr := e.submit(job, "{}")
		want(t, c.name+" status", e.final(rr, 10*time.Second).Status, c.status)
		pidFile := map[string]string{"escapes-then-exits": "escaped-exits.pid", "escapes-then-times-out": "escaped-times-out.pid"}[c.name]
		pid := e.pidOf(pidFile)
		waitGone(t, pid, c.name+": the process that left its group")
	}
}

// A later delivery of an event runs again under the same run id, as attempt
// 1 again, often within seconds of the earlier run's end: the search for
// the earlier run's leftover processes does not take the later run's
// processes for them (the markers include the delivery).
func TestExecutor_LeftoverSearchSparesALaterDeliverysRunUnderTheSameID(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	job := e.script("same-id", `sleep 2.5; echo done`)
	first := e.submit(job, "{}", func(rr *message.RunRequest) {})
	want(t, "first", e.final(first, 10*time.Second).Status, message.StatusSucceeded)
	second := e.submit(job, "{}", func(rr *message.RunRequest) { rr.ID, rr.EventID = first.ID, first.EventID })
	testenv.Eventually(t, 15*time.Second, func() error {
		r, err := runstatus.Get(context.Background(), e.js, second.ID)
		if err != nil || r.DeliveryID != second.DeliveryID || !message.Final(r.Status) {
			return fmt.Errorf("second delivery's run: %+v, %v", r, err)
		}
		if r.Status != message.StatusSucceeded {
			t.Fatalf("second delivery's run ended %s (%s): killed as the first one's leftover?", r.Status, r.Error)
		}
		return nil
	})
}

// A run request a later release wrote (another schema version, during a
// rolling upgrade) waits in RUNS for an executor that reads it; bytes that
// are no run request at all are terminated.
func TestExecutor_RunRequestOfAnotherSchemaVersionWaitsCorruptOneIsTerminated(t *testing.T) {
	e := newXEnv(t)
	job := e.script("upgrading", "true")
	e.start(nil)
	for _, m := range []struct{ schema, data string }{
		{"hookrun.runrequest.v2", `{"schema":"hookrun.runrequest.v2","id":["a new shape"]}`},
		{message.SchemaRunRequest, `not json`},
	} {
		msg := nats.NewMsg(bus.RunSubject(job.Metadata.Namespace, job.Metadata.Name))
		msg.Data = []byte(m.data)
		msg.Header.Set(bus.HeaderSchema, m.schema)
		if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	want(t, "a later run", e.final(e.submit(job, `{}`), 10*time.Second).Status, message.StatusSucceeded)
	e.waitRunsLeft(1, "the v2 one only waits")
}

// A cancel that comes as a failing attempt ends (keys read "running", so it
// stored only its mark and sent its message, which found the command gone)
// ends the run cancelled at once. It was scheduled for its retry, and shown
// queued until the retry was due (here an hour) to be found cancelled.
func TestExecutor_CancelAsAFailingAttemptEndsDoesNotWaitForTheRetry(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		message bool // the cancel message came too, or only the mark
	}{{"mark and message", true}, {"mark only", false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			var run atomic.Pointer[message.RunRequest]
			e.startWith(e.nc, e.js, nil, func(x *Executor) {
				x.beforeFinal = func(string) {
					rr := run.Load()
					kv, err := e.js.KeyValue(context.Background(), bus.BucketCancels)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := kv.Put(context.Background(), rr.ID, bus.CancelMark(rr.DeliveryID, time.Now())); err != nil {
						t.Error(err)
					}
					if c.message {
						_ = e.nc.Publish(bus.CancelSubject(rr.ID), []byte(rr.ID))
						time.Sleep(300 * time.Millisecond) // the message reaches the run
					}
				}
			})
			job := e.script("failcancel", `exit 3`, func(j *resource.Job) {
				j.Spec.Retries, j.Spec.RetryBackoff = 2, resource.Duration(time.Hour)
			})
			rr := e.submit(job, "{}")
			run.Store(&rr)
			r := e.final(rr, 15*time.Second)
			want(t, "status", r.Status, message.StatusCancelled)
			want(t, "attempt", r.Attempt, 1)
			hist := e.history(rr)
			want(t, "final statuses", finals(hist), 1)
			// With the message, the attempt's end is cancelled at once;
			// with the mark only, the retry's queued is stored first.
			waited := 0
			for _, h := range hist {
				if h.Status == message.StatusQueued && h.RetryAt != nil {
					waited++
				}
			}
			want(t, "statuses waiting for a retry", waited, map[bool]int{true: 0, false: 1}[c.message])
		})
	}
}

// A run whose arguments and variables together pass what Linux starts a
// program with, even without the payload and headers variables, fails
// saying so, rather than with exec's "argument list too long".
func TestExecutor_ARunTooLargeToStartSaysWhy(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.start(nil)
	big := strings.Repeat("v", 60<<10)
	job := e.script("toolarge", `echo ran`, func(j *resource.Job) {
		for i := range 40 {
			j.Spec.Args = append(j.Spec.Args, resource.Arg{Name: fmt.Sprintf("a%d", i)})
		}
	})
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Args = map[string]string{}
		for i := range 40 {
			rr.Args[fmt.Sprintf("a%d", i)] = big
		}
	})
	r := e.final(rr, 15*time.Second)
	want(t, "status", r.Status, message.StatusFailed)
	if !strings.Contains(r.Error, "even without the payload and headers variables") {
		t.Fatalf("error %q; want why it could not start", r.Error)
	}
}

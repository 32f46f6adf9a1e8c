package executor

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// echoFirstLine listens on a port of its own and answers every connection
// with the first line it read (the request line, which holds the URL's
// path and query): Go's client quotes it back in its error, as a broken
// or hostile receiver can make it do.
func echoFirstLine(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return l.Addr().String()
}

// An HTTP job's URL from a secret does not reach the run's stored error
// through Go's error quoting what the receiver sent back (`malformed HTTP
// status code "/hooks/<token>"`): the error is masked as the output is. Nor
// does a callback's URL from a secret reach the executor's log so.
func TestExecutor_ErrorQuotingASecretURLIsMasked(t *testing.T) {
	t.Parallel()
	addr := echoFirstLine(t)
	const jobToken, callbackToken = "T0k3nS3cr3t", "Cb7T0k3nZq"

	t.Run("http-job", func(t *testing.T) {
		t.Parallel()
		e := newXEnv(t)
		e.cfg.Secret("default", "hook-url", "http://"+addr+"/hooks/"+jobToken, "", 0)
		e.start(nil)
		job := e.cfg.Job(resource.Job{Metadata: resource.Meta{Name: "echoes-its-url"}, Spec: resource.JobSpec{
			HTTP: &resource.HTTPAction{URLSecretRef: "hook-url"},
		}})
		r := e.final(e.submit(job, `{}`), 10*time.Second)
		want(t, "status", r.Status, message.StatusFailed)
		if !strings.Contains(r.Error, "malformed HTTP") {
			t.Fatalf("error %q: the receiver's answer did not fail the request as it should", r.Error)
		}
		if strings.Contains(r.Error, jobToken) || strings.Contains(r.Error, "/hooks/") {
			t.Errorf("the run's error quotes the URL's secret path: %q", r.Error)
		}
	})

	t.Run("callback", func(t *testing.T) {
		t.Parallel()
		e := newXEnv(t)
		e.cfg.Secret("default", "cb-url", "http://"+addr+"/cb/"+callbackToken, "", 0)
		logs := &testWriter{w: &bytes.Buffer{}}
		e.startWith(e.nc, e.js, func(c *Config) {
			c.CallbackBackoff = []time.Duration{100 * time.Millisecond}
		}, func(x *Executor) {
			x.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
		job := e.script("reported", `true`)
		rr := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URLSecretRef: "cb-url"} })
		want(t, "status", e.final(rr, 10*time.Second).Status, message.StatusSucceeded)
		var log string
		testenv.Eventually(t, 10*time.Second, func() error {
			logs.mu.Lock()
			log = logs.w.(*bytes.Buffer).String()
			logs.mu.Unlock()
			if !strings.Contains(log, "callback given up") {
				return fmt.Errorf("the callback is not given up yet; log:\n%s", log)
			}
			return nil
		})
		if !strings.Contains(log, "malformed HTTP") {
			t.Fatalf("the callback did not fail on the receiver's answer; log:\n%s", log)
		}
		if strings.Contains(log, callbackToken) {
			t.Errorf("the log quotes the callback URL's secret path:\n%s", log)
		}
	})
}

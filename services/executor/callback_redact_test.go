package executor

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// A failing callback is logged at every attempt naming only its receiver
// (scheme, host and port): the password in the URL's userinfo and the token
// in its query are credentials of the receiver, and Go's own errors quote
// the URL with them (a parse error even with the password).
func TestExecutor_CallbackErrorsLogNoCredentials(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: the callback is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	secrets := []string{"pa55", "t0k3nQ", "p4thS3cret", "cbuser"}
	for _, tc := range []struct {
		name, url, names string
	}{
		{"refused", "http://cbuser:pa55word@" + refused + "/cb/p4thS3cret?token=t0k3nQ", "http://" + refused},
		{"unparseable", "http://cbuser:pa55word@127.0.0.1:notaport/cb/p4thS3cret?token=t0k3nQ", "the callback URL"},
		// Read as host "cbuser" and port "pa55", which Go's reason quotes.
		{"slash-in-password", "http://cbuser:pa55/word@" + refused + "/cb/p4thS3cret?token=t0k3nQ", "the callback URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newXEnv(t)
			logs := &testWriter{w: &bytes.Buffer{}}
			// Info, not the test logger's Warn: a retried callback is
			// logged at Info.
			e.startWith(e.nc, e.js, func(c *Config) {
				c.CallbackBackoff = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}
			}, func(x *Executor) {
				x.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			})
			job := e.script("reported", `true`)
			rr := e.submit(job, "{}", func(rr *message.RunRequest) { rr.Callback = &message.Callback{URL: tc.url} })
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
			for _, secret := range secrets {
				if strings.Contains(log, secret) {
					t.Errorf("the log holds %q of the callback URL:\n%s", secret, log)
				}
			}
			if !strings.Contains(log, tc.names) {
				t.Errorf("the log does not name the receiver as %q:\n%s", tc.names, log)
			}
		})
	}
}

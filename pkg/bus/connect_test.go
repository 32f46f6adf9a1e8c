package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/embednats"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// stateLog records the OnState calls of a connection.
type stateLog struct {
	mu    sync.Mutex
	calls []bool
}

func (l *stateLog) on(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, up)
}

// last is the state reported last, and whether any was.
func (l *stateLog) last() (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		return false, false
	}
	return l.calls[len(l.calls)-1], true
}

// A service started while NATS is down must say so at once: its
// hookrun_nats_connected has to exist (at 0) for HookrunNATSDisconnected to
// fire, and the client's handlers only run once a connect succeeds.
func TestConnect_ReportsTheStateWhenNATSIsDownAtStart(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t)
	n.Stop()
	var l stateLog
	nc, err := bus.Connect(bus.ConnectOptions{URL: n.URL, Name: "test", OnState: l.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if up, reported := l.last(); !reported || up {
		t.Fatalf("after Connect with NATS down: reported %v (any: %v), want false", up, reported)
	}

	n.Start()
	testenv.Eventually(t, 10*time.Second, func() error {
		if up, _ := l.last(); !up {
			return errors.New("NATS is back but the last state reported is not connected")
		}
		return nil
	})
}

// The user of a URL's userinfo (nats://ingress:PW@host, no separate
// user) names the reply inbox as a separate user does: deploy/nats/
// users.conf lets each service subscribe to _INBOX_<user> only, and with
// _INBOX. every request of the service timed out. A token
// (nats://TOKEN@host) is no user: it must not show in every reply subject.
func TestConnect_TakesTheInboxUserFromTheURL(t *testing.T) {
	t.Parallel()
	n := testenv.StartSecuredNATS(t)
	withUser := strings.Replace(n.URL, "nats://", "nats://ingress:"+n.Users["ingress"]+"@", 1)
	for _, o := range []bus.ConnectOptions{
		{URL: withUser},
		{URL: withUser, User: "ingress"},
		{URL: n.URL, User: "ingress", Password: n.Users["ingress"]},
	} {
		nc, err := bus.Connect(o)
		if err != nil {
			t.Fatal(err)
		}
		if inbox := nc.NewRespInbox(); !strings.HasPrefix(inbox, bus.InboxPrefix("ingress")+".") {
			t.Errorf("user %q in the URL, %q apart: reply inbox %s", "ingress", o.User, inbox)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = js.AccountInfo(ctx) // a request: its reply comes to the inbox
		cancel()
		nc.Close()
		if err != nil {
			t.Errorf("a request as ingress (user %q apart): %v", o.User, err)
		}
	}
	if v := n.Violations(); len(v) > 0 {
		t.Fatalf("permission violations: %q", v)
	}

	// Two users: which one's inbox would be a guess.
	if nc, err := bus.Connect(bus.ConnectOptions{URL: withUser, User: "dispatcher"}); err == nil {
		nc.Close()
		t.Error("a URL of user ingress with user dispatcher apart was accepted")
	} else if strings.Contains(err.Error(), n.Users["ingress"]) {
		t.Errorf("the error holds the password: %v", err)
	}

	open := testenv.StartNATS(t) // no authentication: a token is ignored
	nc, err := bus.Connect(bus.ConnectOptions{URL: strings.Replace(open.URL, "nats://", "nats://s3cr3tTOKEN@", 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if inbox := nc.NewRespInbox(); strings.Contains(inbox, "s3cr3t") {
		t.Errorf("a token named the reply inbox: %s", inbox)
	}
}

// The client's asynchronous errors (here the permission violation an
// operator's runbook looks for) are JSON lines of the service's log, not
// text nats.go prints to stderr; the connection's URL is logged without
// its password.
func TestConnect_LogsErrorsAsJSON(t *testing.T) {
	t.Parallel()
	n := testenv.StartSecuredNATS(t)
	var logs testenv.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil)).With("service", "ingress")
	url := strings.Replace(n.URL, "nats://", "nats://ingress:"+n.Users["ingress"]+"@", 1)
	nc, err := bus.Connect(bus.ConnectOptions{URL: url, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("hookrun.runs.>"); err != nil { // not the ingress' to read
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var l struct{ Level, Msg, Service, Err string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Level == "ERROR" && l.Service == "ingress" &&
				strings.Contains(l.Err, "nats: permissions violation") && strings.Contains(l.Err, `"hookrun.runs.>"`) {
				return nil
			}
		}
		return fmt.Errorf("no JSON line of the permission violation in:\n%s", logs.String())
	})
	// The same error again at once is not logged again (an outage
	// repeats a consumer's errors every few seconds, for each one).
	for range 5 {
		if _, err := nc.SubscribeSync("hookrun.runs.>"); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.Flush()
	time.Sleep(500 * time.Millisecond)
	if c := strings.Count(logs.String(), `"hookrun.runs.>`); c != 1 {
		t.Errorf("the same error logged %d times within 10 s, want once", c)
	}
	got := logs.String()
	if strings.Contains(got, n.Users["ingress"]) || !strings.Contains(got, `"msg":"connected to NATS"`) || !strings.Contains(got, "nats://ingress:xxxxx@") {
		t.Errorf("want the connection logged with its user, not its password:\n%s", got)
	}
}

// A password the server refuses (rotated on the server before the service,
// the runbook's first step) is retried like any other failure, and the
// service connects once the two agree. nats.go closes a connection for
// good after a second refusal unless told otherwise: the service stayed
// not ready until restarted by hand.
func TestConnect_RetriesARefusedPassword(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "nats.conf")
	users := func(pw string) {
		if err := os.WriteFile(conf, []byte(`authorization { users = [{user: svc, password: "`+pw+`"}] }`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users("old-password")
	n := testenv.StartNATSWith(t, embednats.Options{ConfigFile: conf})
	var logs testenv.Buffer
	nc, err := bus.Connect(bus.ConnectOptions{URL: n.URL, Name: "test", User: "svc", Password: "new-password", Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	time.Sleep(2 * time.Second) // several refusals, 250 ms apart
	if nc.IsClosed() {
		t.Fatal("the connection was closed after its password was refused")
	}
	// Why it does not connect is logged, once for now (no connect has
	// succeeded yet, so no other handler hears of it).
	if got := logs.String(); strings.Count(got, "cannot connect to NATS") != 1 || !strings.Contains(strings.ToLower(got), "authorization violation") || strings.Contains(got, "new-password") {
		t.Errorf("want one line saying the password is refused, without it:\n%s", got)
	}
	n.Stop()
	users("new-password")
	n.Start()
	testenv.Eventually(t, 10*time.Second, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected with the password the server now takes (closed: %v)", nc.IsClosed())
		}
		return nil
	})
}

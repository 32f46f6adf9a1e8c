package bus

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookrun/hookrun/pkg/redact"
)

// ConnectOptions configure Connect.
type ConnectOptions struct {
	// URL is one NATS URL or several, comma-separated. A URL's userinfo
	// (nats://USER:PASSWORD@host) authenticates before User and Password,
	// as nats.go reads it.
	URL string
	// User and Password authenticate when the URL has no userinfo.
	User     string
	Password string
	Name     string
	// OnState is called with true on (re)connect and false on disconnect.
	OnState func(connected bool)
	// Log, when set, gets the client's asynchronous errors (a permission
	// violation, a slow consumer), its connections and its disconnections
	// as structured lines. Without it nats.go prints the errors to stderr
	// as text, which a JSON log pipeline cannot read.
	Log *slog.Logger
}

// errorLogEvery is how often, at most, one kind of asynchronous NATS
// error is logged.
const errorLogEvery = 10 * time.Second

// InboxPrefix is the reply inbox prefix of a service connected as user.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// Connect dials NATS and retries forever in the background: a service starts
// (not ready) when NATS is down and becomes ready when it comes.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	user, err := connectUser(o)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1), // publishes fail fast while disconnected instead of buffering
		// A password refused (rotated on the server first, as the
		// runbook's step one does) is retried like any other failure:
		// nats.go otherwise closes the connection for good after the
		// second refusal, and the service stayed not ready until
		// restarted by hand.
		nats.IgnoreAuthErrorAbort(),
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if user != "" {
		// Replies come to this user's own inbox prefix: the per-service
		// users of deploy/nats/users.conf may subscribe to theirs only.
		opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(user)))
	}
	// Each report reads the connection's state when it runs, under a lock,
	// rather than trusting the event that triggered it: the handlers run on
	// the client's callback goroutine and the report after Connect on this
	// one, so they may interleave, and the last one must say what is true.
	var mu sync.Mutex
	report := func(nc *nats.Conn) {
		if o.OnState == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		o.OnState(nc.IsConnected())
	}
	connected := func(event string) nats.ConnHandler {
		return func(nc *nats.Conn) {
			report(nc)
			if o.Log != nil {
				o.Log.Info(event, "url", redact.URL(nc.ConnectedUrl()))
			}
		}
	}
	opts = append(opts,
		nats.ConnectHandler(connected("connected to NATS")),
		nats.ReconnectHandler(connected("reconnected to NATS")),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			report(nc)
			// No error: the connection is being closed (a drain at
			// shutdown), not lost.
			if o.Log != nil && err != nil {
				o.Log.Warn("disconnected from NATS; reconnecting", "err", err.Error())
			}
		}),
	)
	if o.Log != nil {
		// The same error comes again and again while NATS is away (a
		// consumer's heartbeats missed every few seconds, for each one):
		// each kind is logged at once, then at most every 10 s with the
		// number left out, so an outage does not bury the log.
		lim := newErrorLimiter()
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			suppressed, ok := lim.allow(err.Error() + " " + subject)
			if !ok {
				return
			}
			attrs := []any{"err", err.Error()}
			if subject != "" {
				attrs = append(attrs, "subject", subject)
			}
			if suppressed > 0 {
				attrs = append(attrs, "suppressed", suppressed)
			}
			o.Log.Error("NATS error", attrs...)
		}),
			// A connect that fails before any succeeded (a refused
			// password at start-up) reaches no other handler.
			nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
				if suppressed, ok := lim.allow("connect " + err.Error()); ok {
					attrs := []any{"err", redact.URLs(err.Error())}
					if suppressed > 0 {
						attrs = append(attrs, "suppressed", suppressed)
					}
					o.Log.Warn("cannot connect to NATS; retrying", attrs...)
				}
			}))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact.URLs(o.URL), err) // its credentials hidden
	}
	// With RetryOnFailedConnect a first connect that fails returns a
	// connection still trying, and no handler runs until it succeeds: the
	// state is reported now, so "not connected" exists (and alerts) from
	// the start.
	report(nc)
	return nc, nil
}

// connectUser is the user a connection authenticates as, whose inbox
// prefix it takes: the user of the URL's userinfo, which nats.go prefers,
// else o.User. A URL user and an o.User that differ are refused: the
// inbox prefix would be the wrong one's, and every request time out.
func connectUser(o ConnectOptions) (string, error) {
	u := urlUser(o.URL)
	switch {
	case u == "":
		return o.User, nil
	case o.User == "" || o.User == u:
		return u, nil
	default:
		return "", fmt.Errorf("NATS user %q differs from the user %q of the URL %s: give the user once", o.User, u, redact.URLs(o.URL))
	}
}

// urlUser is the user of the first URL of urls (comma-separated, as
// nats.go splits them) whose userinfo has a password; "" when none has.
// A userinfo without a password is a token (nats://TOKEN@host), no user:
// it must not become an inbox prefix, which every subject would show.
func urlUser(urls string) string {
	for _, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok && u.User.Username() != "" {
			return u.User.Username()
		}
	}
	return ""
}

// errorLimiter lets one line of each kind of error through at once, then at
// most one every errorLogEvery, counting those it holds back. It forgets
// kinds not seen for errorLogEvery once it holds many: error texts can name
// per-run subjects, and must not pile up for the life of the process.
type errorLimiter struct {
	mu    sync.Mutex
	kinds map[string]*errorKind
}

type errorKind struct {
	last time.Time
	held int
}

func newErrorLimiter() *errorLimiter { return &errorLimiter{kinds: map[string]*errorKind{}} }

// maxErrorKinds is how many kinds errorLimiter holds before forgetting the
// quiet ones.
const maxErrorKinds = 256

// allow reports whether an error of kind k may be logged now, and how many
// of its kind were held back since the last one logged.
func (l *errorLimiter) allow(k string) (held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	e := l.kinds[k]
	if e != nil && now.Sub(e.last) < errorLogEvery {
		e.held++
		return 0, false
	}
	if e == nil {
		if len(l.kinds) >= maxErrorKinds {
			for kk, v := range l.kinds {
				if now.Sub(v.last) >= errorLogEvery {
					delete(l.kinds, kk)
				}
			}
		}
		e = &errorKind{}
		l.kinds[k] = e
	}
	held, e.held, e.last = e.held, 0, now
	return held, true
}

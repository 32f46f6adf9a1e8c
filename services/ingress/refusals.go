package ingress

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// refusalLogEvery is how often a refusal of one webhook with one code is
// logged at most: a sender retrying with a wrong key, or a scanner on
// unknown endpoints, must not fill the log. The lines between are counted
// ("suppressed") in the next one, and all of them in
// hookrun_ingress_requests_total.
const refusalLogEvery = 10 * time.Second

// maxRefusalKeys bounds the refusals remembered: webhooks × codes.
const maxRefusalKeys = 10000

// refusalLog logs refused deliveries (4xx) so that an operator told to
// "check the logs" (Jac Cloud's troubleshooting) finds why a sender's calls
// fail: the webhook, the code, the message the sender got, its address.
// Never the URL (an endpoint id is a secret URL's credential, a path key a
// key) nor anything the sender sent.
type refusalLog struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[refusalKey]*refusalSeen
}

type refusalKey struct{ webhook, code string }

type refusalSeen struct {
	at         time.Time // when its last line was logged
	suppressed int       // refusals since, not logged
}

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{log: log, now: time.Now, seen: map[refusalKey]*refusalSeen{}}
}

// refused notes one refusal, and logs it unless one of its webhook and
// code was logged within refusalLogEvery.
func (r *refusalLog) refused(webhook string, e *apiError, method, sourceIP string) {
	suppressed, ok := r.due(webhook, e.Code)
	if !ok {
		return
	}
	level := slog.LevelInfo
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		level = slog.LevelWarn
	}
	r.log.Log(context.Background(), level, "delivery refused", "webhook", webhook, "status", e.Status, "code", e.Code,
		"message", e.Message, "method", method, "source_ip", sourceIP, "suppressed", suppressed)
}

// due reports whether a line of webhook and kind is due (none logged
// within refusalLogEvery), and how many were suppressed since the last.
// The publish paths use it too: while JetStream is away every delivery
// fails alike, thousands a second.
func (r *refusalLog) due(webhook, kind string) (suppressed int, ok bool) {
	now := r.now()
	k := refusalKey{webhook, kind}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, found := r.seen[k]
	if found && now.Sub(s.at) < refusalLogEvery {
		s.suppressed++
		return 0, false
	}
	if found {
		suppressed, s.at, s.suppressed = s.suppressed, now, 0
		return suppressed, true
	}
	if len(r.seen) >= maxRefusalKeys {
		for k, s := range r.seen {
			if now.Sub(s.at) >= refusalLogEvery {
				delete(r.seen, k)
			}
		}
	}
	if len(r.seen) >= maxRefusalKeys {
		// Full of recent ones: the rest share one line per window,
		// rather than each getting one (a flood is when it fills).
		k = refusalKey{"*", "*"}
		if s, found := r.seen[k]; found {
			if now.Sub(s.at) < refusalLogEvery {
				s.suppressed++
				return 0, false
			}
			suppressed, s.at, s.suppressed = s.suppressed, now, 0
			return suppressed, true
		}
	}
	r.seen[k] = &refusalSeen{at: now}
	return 0, true
}

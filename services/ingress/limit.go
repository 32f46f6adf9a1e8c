package ingress

import (
	"context"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/dedup"
	"github.com/hookrun/hookrun/pkg/resource"
)

// limiter is a webhook's token bucket with the settings it was built from,
// so a configuration change replaces it.
type limiter struct {
	perSecond float64
	burst     int
	l         *rate.Limiter
}

// bucket returns the webhook's token bucket (per ingress instance), nil
// when it has no rate limit.
func (in *Ingress) bucket(w *resource.Webhook) *limiter {
	rl := w.Spec.RateLimit
	if rl == nil {
		return nil
	}
	key := bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name)
	v, found := in.limiters.Load(key)
	l, _ := v.(*limiter)
	if !found || l.perSecond != rl.PerSecond || l.burst != rl.Burst {
		l = &limiter{perSecond: rl.PerSecond, burst: rl.Burst, l: rate.NewLimiter(rate.Limit(rl.PerSecond), max(rl.Burst, 1))}
		in.limiters.Store(key, l)
	}
	return l
}

// hasToken reports whether the webhook's bucket holds a token, without
// spending it: the cheap refusal before the body is read. When it does
// not, wait is how many whole seconds until one is back, for Retry-After.
func (in *Ingress) hasToken(w *resource.Webhook) (ok bool, wait int) {
	l := in.bucket(w)
	if l == nil {
		return true, 0
	}
	return l.check(l.l.Tokens() >= 1)
}

// spendToken takes a token from the webhook's bucket; it runs only once
// the sender is authenticated. It can still refuse: concurrent requests
// may all have seen the last token.
func (in *Ingress) spendToken(w *resource.Webhook) (ok bool, wait int) {
	l := in.bucket(w)
	if l == nil {
		return true, 0
	}
	return l.check(l.l.Allow())
}

func (l *limiter) check(ok bool) (bool, int) {
	if ok {
		return true, 0
	}
	missing := 1 - l.l.Tokens()
	// At most a day: a tiny perSecond would make it overflow the int.
	return false, int(min(math.Ceil(missing/l.perSecond), maxRetryAfter))
}

// maxRetryAfter bounds the seconds a rate-limited sender is asked to wait.
const maxRetryAfter = 24 * 60 * 60

// claimedElsewhere reads the answer of the read-only look-up of the
// dispatcher's dedup claim (lookupBatcher.start): the event was claimed by
// another delivery. The dispatcher stays the authority; this only makes the
// answer's duplicate flag right for retries that come after JetStream's
// duplicate window. It never holds up an answer for long: a slow or absent
// Redis means "not seen".
func claimedElsewhere(r lookupRes, deliveryID string) bool {
	return r.err == nil && r.found && !dedup.IsOwner(r.owner, deliveryID)
}

// dedupLookupTimeout bounds the wait for the read-only dedup look-up.
const dedupLookupTimeout = 50 * time.Millisecond

// lookupCommandTimeout bounds a batch's look-up command itself.
const lookupCommandTimeout = time.Second

// recordedError is the last lastError this instance wrote for a webhook.
type recordedError struct {
	msg string
	at  time.Time
}

// errorRecordInterval is how often the same lastError is rewritten: a
// misconfigured webhook under load must not turn every request into a KV
// write.
const errorRecordInterval = 5 * time.Second

// recordError writes msg as the webhook's status.lastError, where the keys
// service shows it; the sender only gets the generic job_not_runnable.
func (in *Ingress) recordError(w *resource.Webhook, msg string) {
	key := bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name)
	now := time.Now()
	if v, ok := in.lastErrors.Load(key); ok {
		if r := v.(recordedError); r.msg == msg && now.Sub(r.at) < errorRecordInterval {
			return
		}
	}
	in.lastErrors.Store(key, recordedError{msg: msg, at: now})
	label := w.Metadata.Namespace + "/" + w.Metadata.Name // as every other log names it
	in.log.Warn("webhook cannot trigger its job", "webhook", label, "reason", msg)
	if !in.js.Conn().IsConnected() {
		return // a KV write now would only hold the answer up; the next interval retries
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := in.status.Error(ctx, w.Metadata.Namespace, w.Metadata.Name, w.Metadata.UID, msg); err != nil {
		in.log.Warn("cannot record webhook lastError", "webhook", label, "err", err)
	}
}

package ingress

import "sync/atomic"

// pendingBodies bounds the bytes of authenticated deliveries' bodies the
// ingress holds while it stores them (HOOKRUN_MAX_PENDING_BYTES). That is
// one publish round trip when JetStream is well and up to handleWithin
// when it stalls: without a bound, a stall with many senders fills the
// ingress' memory (each body is held twice, as read and encoded) until the
// kernel kills it. Past the bound a delivery is refused 503 with
// Retry-After and its body dropped at once; nothing is accepted that is
// not stored. Stripe and Svix senders retry a 503; GitHub does not (its
// delivery is redelivered by hand), so operators watch
// hookrun_ingress_overloaded_total. Bodies still arriving are not counted: a sender that
// declares a large body and trickles it would hold the bound for others;
// their memory grows with what arrives (readBody) and ReadTimeout ends it.
type pendingBodies struct {
	max  int64 // 0: no bound
	used atomic.Int64
}

// take reserves n bytes. It refuses only when other bodies are held: one
// body alone is always let through, even over the bound (its webhook's
// size limit, not this, decides whether it is too large).
func (p *pendingBodies) take(n int64) bool {
	if n == 0 {
		return true
	}
	for {
		u := p.used.Load()
		if p.max > 0 && u > 0 && u+n > p.max {
			return false
		}
		if p.used.CompareAndSwap(u, u+n) {
			mPendingBodyBytes.Add(float64(n))
			return true
		}
	}
}

// give returns n reserved bytes.
func (p *pendingBodies) give(n int64) {
	if n != 0 {
		p.used.Add(-n)
		mPendingBodyBytes.Sub(float64(n))
	}
}

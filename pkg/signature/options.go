package signature

import "time"

// DefaultTolerance is how far a signed timestamp may be from the receiver's
// clock, in either direction, before a timestamped profile rejects it. Five
// minutes is what Stripe, Slack and Standard Webhooks document.
const DefaultTolerance = 5 * time.Minute

// timestamped is implemented by profiles whose signature covers a timestamp.
type timestamped interface {
	Profile
	tolerance() time.Duration
	withTolerance(d time.Duration) Profile
}

// MaxTolerance bounds a webhook's timestamp tolerance (the providers use
// minutes). It also keeps twice it, which replay checks compute, far from
// overflowing a time.Duration.
const MaxTolerance = 24 * time.Hour

// WithTolerance returns a copy of p that accepts signed timestamps up to d
// (at most MaxTolerance) away from now in either direction; it is how a
// webhook overrides the default. Profiles without a signed timestamp
// (github, shopify, gitlab), and any d <= 0, return p unchanged: the skew
// check can be widened, not turned off.
//
// Replay protection rests on the tolerance and the dedup window together: a
// tolerance longer than the webhook's dedup window lets a captured delivery
// be replayed once its event id has been forgotten.
func WithTolerance(p Profile, d time.Duration) Profile {
	if d <= 0 {
		return p
	}
	// A webhook stored before the keys service bounded it gets the bound
	// here too: no tolerance holds a delivery signed a day ago.
	d = min(d, MaxTolerance)
	if t, ok := p.(timestamped); ok {
		return t.withTolerance(d)
	}
	return p
}

// Tolerance returns the timestamp tolerance p applies, or 0 when p's
// signature covers no timestamp.
func Tolerance(p Profile) time.Duration {
	if t, ok := p.(timestamped); ok {
		return t.tolerance()
	}
	return 0
}

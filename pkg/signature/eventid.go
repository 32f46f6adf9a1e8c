package signature

// eventIDSourcer is implemented by every registered profile: it names where
// the profile takes a delivery's event id from.
type eventIDSourcer interface {
	eventIDSource() string
}

// EventIDSource describes, for a message to a sender, where p takes the
// event id from: "the X-Event-Id header" for generic, "the event's \"id\"
// field in the JSON body" for stripe, and so on. It returns "" for a
// profile that does not say.
func EventIDSource(p Profile) string {
	if s, ok := p.(eventIDSourcer); ok {
		return s.eventIDSource()
	}
	return ""
}

// Header names as the providers document them (the constants hold the
// canonical MIME form, e.g. X-Github-Delivery), for messages only; a header
// a webhook names is given as the webhook spells it.
func (p generic) eventIDSource() string { return headerSource(p.idHeader, "X-Event-Id") }

func (p github) eventIDSource() string { return headerSource(p.idHeader, "X-GitHub-Delivery") }

func (p gitlab) eventIDSource() string {
	if p.idHeader != "" {
		return headerSource(p.idHeader, "")
	}
	return "the Idempotency-Key header (GitLab 17.4 and later), else the X-Gitlab-Event-UUID header"
}

func (p shopify) eventIDSource() string {
	if p.idHeader != "" {
		return headerSource(p.idHeader, "")
	}
	return "the X-Shopify-Event-Id header (with X-Shopify-Topic), else the X-Shopify-Webhook-Id header (Shopify-Webhook-Id for an Events delivery, its headers without X-)"
}

func (standardWebhooks) eventIDSource() string {
	return "the webhook-id header (svix-id when the svix-* headers are used)"
}

func (stripe) eventIDSource() string {
	return `the event's "` + stripeEventIDField + `" field in the JSON body`
}

func (slack) eventIDSource() string {
	return `the event's "` + slackEventIDField + `" field in the JSON body (Events API deliveries; for others, a hash of the signature)`
}

// headerSource names the header a webhook chose, else the profile's own.
func headerSource(chosen, def string) string {
	if chosen != "" {
		return "the " + chosen + " header"
	}
	return "the " + def + " header"
}

// headerEventID is implemented by the profiles that read the event id from
// a header their signature does not cover (generic, github, gitlab,
// shopify), so that which header it is makes no difference to replays.
type headerEventID interface {
	Profile
	withEventIDHeader(name string) Profile
}

// WithEventIDHeader returns a copy of p that reads the event id from header
// name instead of its own, and true; it is how a webhook's
// spec.idempotencyHeader applies to a signature profile. The copy requires
// name as p requires its own header (ErrMissingEventID, naming name, when
// a delivery lacks it), and Sign puts the event id there. An empty name
// gives back the profile's own header.
//
// Only profiles whose event id header is unsigned take one (generic,
// github, gitlab, shopify): their id could already be rewritten by whoever
// captured a delivery, which the dedup window and, for generic, the
// tolerance bound. Where the event id is signed (stripe and slack in the
// body, standard-webhooks' webhook-id), an id read from an unsigned header
// would let a captured delivery, its signature still valid, be replayed
// under a new id: those return p unchanged and false.
func WithEventIDHeader(p Profile, name string) (Profile, bool) {
	h, ok := p.(headerEventID)
	if !ok {
		return p, false
	}
	return h.withEventIDHeader(name), true
}

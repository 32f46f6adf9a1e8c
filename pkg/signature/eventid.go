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
// canonical MIME form, e.g. X-Github-Delivery), for messages only.
func (generic) eventIDSource() string { return "the X-Event-Id header" }

func (github) eventIDSource() string { return "the X-GitHub-Delivery header" }

func (gitlab) eventIDSource() string {
	return "the Idempotency-Key header (GitLab 17.4 and later), else the X-Gitlab-Event-UUID header"
}

func (shopify) eventIDSource() string { return "the X-Shopify-Webhook-Id header" }

func (standardWebhooks) eventIDSource() string {
	return "the webhook-id header (svix-id when the svix-* headers are used)"
}

func (stripe) eventIDSource() string {
	return `the event's "` + stripeEventIDField + `" field in the JSON body`
}

func (slack) eventIDSource() string {
	return `the event's "` + slackEventIDField + `" field in the JSON body (Events API deliveries; for others, a hash of the signature)`
}

package signature

import (
	"net/http"
	"slices"
	"time"
)

// Request is what a profile sees of an HTTP delivery: its headers and its raw,
// unparsed body. Signatures are computed over the exact bytes received.
type Request struct {
	Header http.Header
	Body   []byte
}

// Profile verifies, and can produce, one provider's signature scheme.
// Implementations are immutable values, safe for concurrent use.
type Profile interface {
	// Name returns the profile's registry name, e.g. "github".
	Name() string

	// Verify checks req against each secret in turn (the current one first,
	// then previous ones still inside their rotation grace) and returns the
	// event id the profile takes from the request, or "" when the profile has
	// no event id source. It checks the signature first, then the timestamp,
	// then the event id, so a sender without the secret only ever learns
	// that its signature is missing or invalid.
	//
	// Errors wrap ErrSignatureMissing, ErrSignatureInvalid,
	// ErrTimestampOutOfTolerance, ErrMissingEventID or ErrInvalidSecret.
	Verify(req Request, secrets []string, now time.Time) (eventID string, err error)

	// Sign returns the headers a sender of this provider adds to a delivery
	// of body, signed with secret at now and carrying eventID. The event id
	// header is left out when eventID is "", and for profiles that read the
	// event id from the body (stripe, slack) eventID is ignored. Content-Type
	// is not included.
	Sign(body []byte, secret string, eventID string, now time.Time) http.Header

	// DefaultWindow returns how long event ids of this profile are kept for
	// deduplication, sized to the provider's retry schedule.
	DefaultWindow() time.Duration

	// CredentialHeaders returns the canonical names of the headers that carry
	// credentials (tokens or signatures) and must be stripped before a
	// delivery is stored or handed to a job. The slice is the caller's.
	CredentialHeaders() []string

	// GenerateSecret returns a new random secret, with at least 32 bytes of
	// entropy, in the format the provider uses.
	GenerateSecret() (string, error)
}

// registry holds every profile with its default settings, keyed by name.
var registry = map[string]Profile{
	genericName:          generic{skew: DefaultTolerance},
	githubName:           github{},
	gitlabName:           gitlab{},
	shopifyName:          shopify{},
	slackName:            slack{skew: DefaultTolerance},
	standardWebhooksName: standardWebhooks{skew: DefaultTolerance},
	stripeName:           stripe{skew: DefaultTolerance},
}

// Lookup returns the profile registered under name, with its default
// tolerance, and whether there is one. Names are case-sensitive.
func Lookup(name string) (Profile, bool) {
	p, ok := registry[name]
	return p, ok
}

// Names returns the names of all registered profiles, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Package resource defines Hookrun's configuration resources — Job, Webhook,
// Secret and API key — as the keys service stores them in NATS KV and as
// `hookrun apply` reads them from YAML, with their validation.
package resource

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/hookrun/hookrun/pkg/argtemplate"
)

// APIVersion is the only resource API version.
const APIVersion = "hookrun.dev/v1"

// Kinds.
const (
	KindJob     = "Job"
	KindWebhook = "Webhook"
	KindSecret  = "Secret"
)

// DefaultNamespace is used when a resource or request names none.
const DefaultNamespace = "default"

// Meta is the metadata every resource carries.
type Meta struct {
	Name       string    `json:"name"`
	Namespace  string    `json:"namespace,omitempty"`
	UID        string    `json:"uid,omitempty"`
	Generation int64     `json:"generation,omitempty"`
	CreatedAt  time.Time `json:"createdAt,omitzero"`
	UpdatedAt  time.Time `json:"updatedAt,omitzero"`
}

// TypeMeta names a resource's kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// Duration is a time.Duration written as "5m" in JSON and YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string ("90s", "72h") or a number of
// seconds. A malformed value is a *json.UnmarshalTypeError, which
// encoding/json completes with the field's path ("spec.timeout"), so the
// API can name the field.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return &json.UnmarshalTypeError{Value: string(b), Type: durationType}
		}
		ns := n * float64(time.Second)
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			// Past ±292 years: the conversion would wrap (to a negative
			// on amd64), and the error would blame the sign.
			return &json.UnmarshalTypeError{Value: "number " + string(b) + " (seconds, out of range)", Type: durationType}
		}
		*d = Duration(ns)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string " + string(b), Type: durationType}
	}
	*d = Duration(v)
	return nil
}

// durationType is what a malformed Duration reports as its expected type.
var durationType = reflect.TypeFor[Duration]()

// Job is a command or HTTP call that webhooks trigger.
type Job struct {
	TypeMeta `json:",inline"`
	Metadata Meta    `json:"metadata"`
	Spec     JobSpec `json:"spec"`
}

// JobSpec describes what a run does.
type JobSpec struct {
	// Command is the argv; no shell unless argv[0] is one.
	Command []string `json:"command,omitempty"`
	// HTTP makes the job an HTTP call instead of a command.
	HTTP *HTTPAction `json:"http,omitempty"`
	// Args are the job's arguments, each with a default and/or a template value.
	Args []Arg `json:"args,omitempty"`
	// Timeout bounds a run (default 5m); past it the run is timed_out.
	Timeout Duration `json:"timeout,omitempty"`
	// Concurrency is how many runs of this job may run at once across all executors (default 4).
	Concurrency int `json:"concurrency,omitempty"`
	// Retries is how many times a failed run is retried (default 0).
	Retries int `json:"retries,omitempty"`
	// RetryBackoff is the first retry delay, doubled each retry (default 5s).
	RetryBackoff Duration `json:"retryBackoff,omitempty"`
	// EnvPrefix is the prefix of the job's environment variables (default HOOKRUN).
	EnvPrefix string `json:"envPrefix,omitempty"`
	// Env adds fixed environment variables.
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv adds environment variables whose values are secrets':
	// variable name → secret name. The executor reads the secret's current
	// value when the run starts; the job spec holds only the name, so a
	// token the job needs is sealed at rest and never shown by the API.
	SecretEnv map[string]string `json:"secretEnv,omitempty"`
}

// HTTPAction is an HTTP job: POST the payload (or Body rendered) to URL.
type HTTPAction struct {
	URL string `json:"url,omitempty"`
	// URLSecretRef names a secret whose value is the URL, for a URL that
	// is itself a credential (a Slack or Discord incoming webhook, a token
	// in the path or query): the job holds the secret's name, and the
	// executor reads its current value when the request is sent. Exactly
	// one of URL and URLSecretRef.
	URLSecretRef string            `json:"urlSecretRef,omitempty"`
	Method       string            `json:"method,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         string            `json:"body,omitempty"`
	SecretRef    string            `json:"secretRef,omitempty"`
	// SecretHeaders adds headers whose values are secrets' (an
	// Authorization for the receiving service): header name → the secret
	// and a text put before its value ("Bearer ").
	SecretHeaders map[string]SecretHeader `json:"secretHeaders,omitempty"`
}

// SecretHeader is a header value taken from a secret when the request is
// sent: Prefix followed by the secret's current value.
type SecretHeader struct {
	SecretRef string `json:"secretRef"`
	Prefix    string `json:"prefix,omitempty"`
}

// Arg is one job argument: Value is a template over the delivery, Default
// applies when there is no value or it cannot be resolved.
type Arg struct {
	Name    string  `json:"name"`
	Default *string `json:"default,omitempty"`
	Value   string  `json:"value,omitempty"`
}

// Webhook binds an endpoint to a job.
type Webhook struct {
	TypeMeta `json:",inline"`
	Metadata Meta          `json:"metadata"`
	Spec     WebhookSpec   `json:"spec"`
	Status   WebhookStatus `json:"status,omitzero"`
}

// WebhookSpec is a webhook's configuration.
type WebhookSpec struct {
	Job               string     `json:"job"`
	Methods           []string   `json:"methods,omitempty"`
	Auth              Auth       `json:"auth"`
	DedupWindow       Duration   `json:"dedupWindow,omitempty"`
	IdempotencyHeader string     `json:"idempotencyHeader,omitempty"`
	Filter            string     `json:"filter,omitempty"`
	MaxBodyBytes      int64      `json:"maxBodyBytes,omitempty"`
	RateLimit         *RateLimit `json:"rateLimit,omitempty"`
	Response          *Response  `json:"response,omitempty"`
	Callback          *Callback  `json:"callback,omitempty"`
	Disabled          bool       `json:"disabled,omitempty"`
}

// Auth selects exactly one authentication mode.
type Auth struct {
	None      *struct{}      `json:"none,omitempty"`
	APIKey    *APIKeyAuth    `json:"apiKey,omitempty"`
	Signature *SignatureAuth `json:"signature,omitempty"`
}

// Mode names the auth mode: "none" (secret URL), "apiKey" or "signature".
func (a Auth) Mode() string {
	switch {
	case a.APIKey != nil:
		return "apiKey"
	case a.Signature != nil:
		return "signature"
	}
	return "none"
}

// APIKeyAuth says where the API key sits.
type APIKeyAuth struct {
	In   string `json:"in,omitempty"`
	Name string `json:"name,omitempty"`
}

// SignatureAuth selects a signature profile and its secret.
type SignatureAuth struct {
	Profile   string   `json:"profile"`
	SecretRef string   `json:"secretRef"`
	Tolerance Duration `json:"tolerance,omitempty"`
}

// RateLimit is a token bucket per webhook (per ingress instance).
type RateLimit struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst,omitempty"`
}

// Response chooses the success status code (202 or 200).
type Response struct {
	Status int `json:"status,omitempty"`
}

// Callback is where final run statuses are POSTed, signed with SecretRef.
type Callback struct {
	URL string `json:"url,omitempty"`
	// URLSecretRef names a secret whose value is the URL, for a URL that
	// is itself a credential (a Slack or Discord incoming webhook, a token
	// in the path or query): the webhook and each run's record hold the
	// secret's name, not the URL. Exactly one of URL and URLSecretRef.
	URLSecretRef string `json:"urlSecretRef,omitempty"`
	SecretRef    string `json:"secretRef,omitempty"`
}

// WebhookStatus is what the system reports about a webhook.
type WebhookStatus struct {
	EndpointID     string     `json:"endpointId,omitempty"`
	EndpointPath   string     `json:"endpointPath,omitempty"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
	LastDeliveryAt *time.Time `json:"lastDeliveryAt,omitempty"`
}

// Secret is a signing secret. Spec.Value is write-only: the API never returns it.
type Secret struct {
	TypeMeta `json:",inline"`
	Metadata Meta         `json:"metadata"`
	Spec     SecretSpec   `json:"spec"`
	Status   SecretStatus `json:"status,omitzero"`
}

// SecretSpec is a secret's input.
type SecretSpec struct {
	// Value is the secret; empty means generate one in Format.
	Value string `json:"value,omitempty"`
	// Format of a generated secret: a signature profile name (e.g.
	// "standard-webhooks" gives whsec_…) or "hex" (default).
	Format string `json:"format,omitempty"`
	// PreviousValidFor keeps the replaced value valid this long (default
	// 24h). A pointer, so that an explicit "0s" — no grace at all, what
	// replacing a leaked value calls for — is told from an absent field.
	PreviousValidFor *Duration `json:"previousValidFor,omitempty"`
}

// DefaultPreviousValidFor is the rotation grace of a secret whose spec sets none.
const DefaultPreviousValidFor = 24 * time.Hour

// Grace is how long a value the secret replaces stays valid:
// PreviousValidFor, or DefaultPreviousValidFor when it is not set.
func (s SecretSpec) Grace() time.Duration {
	if s.PreviousValidFor == nil {
		return DefaultPreviousValidFor
	}
	return s.PreviousValidFor.D()
}

// SecretStatus is a secret's metadata.
type SecretStatus struct {
	Version           int        `json:"version,omitempty"`
	RotatedAt         *time.Time `json:"rotatedAt,omitempty"`
	PreviousExpiresAt *time.Time `json:"previousExpiresAt,omitempty"`
}

// StoredSecret is a Secret as kept in KV: values sealed with the secret key.
type StoredSecret struct {
	Secret  Secret `json:"secret"`
	Current []byte `json:"current"`
	// Previous is the value replaced last, valid until PreviousExpiresAt:
	// the one previous value records of earlier releases hold, and the one
	// their readers still find.
	Previous          []byte     `json:"previous,omitempty"`
	PreviousExpiresAt *time.Time `json:"previousExpiresAt,omitempty"`
	// Earlier are values replaced before Previous and still in their own
	// grace period when it was replaced, newest first.
	Earlier []PreviousValue `json:"earlier,omitempty"`
}

// PreviousValue is a replaced, sealed secret value and the end of its grace.
type PreviousValue struct {
	Value     []byte    `json:"value"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// MaxPreviousValues bounds how many replaced values a secret keeps: rotating
// more often than that within a grace period revokes the oldest early.
const MaxPreviousValues = 5

// PreviousValues returns every replaced value the record holds, newest
// first, expired ones included.
func (s *StoredSecret) PreviousValues() []PreviousValue {
	var out []PreviousValue
	if len(s.Previous) > 0 && s.PreviousExpiresAt != nil {
		out = append(out, PreviousValue{Value: s.Previous, ExpiresAt: *s.PreviousExpiresAt})
	}
	return append(out, s.Earlier...)
}

// SetPreviousValues stores vs (newest first, at most MaxPreviousValues
// kept): the first where every release reads it, the rest in Earlier.
func (s *StoredSecret) SetPreviousValues(vs []PreviousValue) {
	s.Previous, s.PreviousExpiresAt, s.Earlier = nil, nil, nil
	if len(vs) > MaxPreviousValues {
		vs = vs[:MaxPreviousValues]
	}
	if len(vs) == 0 {
		return
	}
	exp := vs[0].ExpiresAt
	s.Previous, s.PreviousExpiresAt = vs[0].Value, &exp
	if len(vs) > 1 {
		s.Earlier = slices.Clone(vs[1:])
	}
}

// APIKey is an API key as stored: the secret part only as a hash.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Namespace string     `json:"namespace,omitempty"`
	Webhooks  []string   `json:"webhooks"`
	Jobs      []string   `json:"jobs"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	Prefix    string     `json:"prefix"`
	Hash      string     `json:"hash,omitempty"`
	// OwnerWebhook is the config key (<ns>.<name>) of the webhook whose
	// creation generated this key; deleting that webhook deletes the key, so
	// a later webhook of the same name does not inherit it.
	OwnerWebhook string `json:"ownerWebhook,omitempty"`
}

// AllNamespaces, as a key's namespace, makes it valid in every namespace:
// only when asked for by name, never by default.
const AllNamespaces = "*"

// InNamespace is the namespace the key works in (AllNamespaces: all).
// Keys are namespaced like every resource: one stored without a namespace
// (made before keys always recorded one) is a key of the default namespace.
func (k *APIKey) InNamespace() string {
	if k.Namespace == "" {
		return DefaultNamespace
	}
	return k.Namespace
}

// AllowsNamespace reports whether the key is valid in namespace ns.
func (k *APIKey) AllowsNamespace(ns string) bool {
	in := k.InNamespace()
	return in == ns || in == AllNamespaces
}

// Expiration is Jac Cloud's {count, interval}.
type Expiration struct {
	Count    int    `json:"count"`
	Interval string `json:"interval"`
}

// MaxExpiration bounds a key's lifetime as one request sets or extends it.
const MaxExpiration = 100 * 365 * 24 * time.Hour

// Duration converts e to a duration. A key that never expires has no
// expiration at all: a count of 0 is refused rather than read as "never",
// which a caller asking for an expiry cannot have meant.
func (e Expiration) Duration() (time.Duration, error) {
	unit := map[string]time.Duration{"seconds": time.Second, "minutes": time.Minute, "hours": time.Hour, "days": 24 * time.Hour}[e.Interval]
	if unit == 0 {
		return 0, &FieldError{Field: "expiration.interval", Msg: "must be one of seconds, minutes, hours, days"}
	}
	if e.Count < 1 {
		return 0, &FieldError{Field: "expiration.count", Msg: "must be positive"}
	}
	if int64(e.Count) > int64(MaxExpiration/unit) {
		// Beyond it, count × interval would overflow into "never expires".
		return 0, &FieldError{Field: "expiration.count", Msg: "must be at most 100 years in all"}
	}
	return time.Duration(e.Count) * unit, nil
}

// TemplateArgs returns the job's arguments in argtemplate's form.
func (s JobSpec) TemplateArgs() []argtemplate.Arg {
	out := make([]argtemplate.Arg, len(s.Args))
	for i, a := range s.Args {
		out[i] = argtemplate.Arg{Name: a.Name, Default: a.Default, Value: a.Value}
	}
	return out
}

package ingress

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// credential says where the sender's credential sat, and what it was, so
// that it can be removed before the delivery is stored.
type credential struct {
	headers []string // header names that carry it
	query   string   // query parameter that carries it
	values  []string // the credential values themselves (endpoint id, key, signing secrets)
	// sent are the values the request carries as they are (the endpoint
	// id, a key, a token-style profile's secret): a value equal to one is
	// that credential whatever its length. A secret that only keys an HMAC
	// is never sent, and a short one ("test") must not strip ?page=test.
	sent []string
	// bodyChanged: the key was taken out of the body, so the request's
	// Content-Length no longer describes the stored body (and would tell
	// the removed key's length).
	bodyChanged bool
	// eventIDErr is a signed delivery's unusable event id (missing, or a
	// credential): answered after the rate limit is spent and the job is
	// checked, the order API.md gives, since the sender is authenticated.
	eventIDErr error
}

// authenticate verifies the request against the webhook's auth mode and
// fills the delivery's principal, profile and (for signature profiles)
// event id. With the key in the body, the key field is removed from d.Body.
func (in *Ingress) authenticate(c echo.Context, t target, w *resource.Webhook, d *message.Delivery, now time.Time) (credential, error) {
	var cred credential
	var err error
	a := w.Spec.Auth
	switch {
	case a.APIKey != nil:
		cred, err = in.authAPIKey(c, t, w, d, now)
	case a.Signature != nil:
		cred, err = in.authSignature(c, w, d, now)
	default:
		// Secret URL (Workjet): the unguessable endpoint id was the credential.
		d.Principal = "endpoint"
	}
	// The endpoint id is the whole credential of a secret URL, and the URL
	// is worth keeping secret in every mode; a proxy's X-Forwarded-Uri or
	// X-Original-Url, or a Referer, repeats the path, so the id is scrubbed
	// as the presented key is (a key in the path included: authAPIKey),
	// in the form the sender encoded them too.
	cred.values = append(cred.values, t.endpoint)
	if t.rawEndpoint != "" || t.rawKey != "" {
		cred.values = append(cred.values, t.rawEndpoint, t.rawKey)
	}
	cred.sent = append(cred.sent, t.endpoint)
	return cred, err
}

// authAPIKey finds the key where the webhook says it sits, looks it up by
// its public id and compares its secret part by hash in constant time. The
// answers go from "no key" to "not this key" to "not any more" to "not
// here", and only a sender holding a real key learns the last two.
func (in *Ingress) authAPIKey(c echo.Context, t target, w *resource.Webhook, d *message.Delivery, now time.Time) (credential, error) {
	ak := w.Spec.Auth.APIKey
	var presented string
	var cred credential
	switch ak.In {
	case "header":
		presented = c.Request().Header.Get(ak.Name)
		if strings.EqualFold(ak.Name, "Authorization") {
			presented = bearerToken(presented)
		}
		cred.headers = []string{ak.Name}
	case "query":
		presented = c.QueryParam(ak.Name)
		cred.query = ak.Name
	case "path":
		presented = t.key
	case "body":
		if d.Method == http.MethodGet {
			break // no body, so no key
		}
		key, rest, err := extractBodyKey(d.Body, ak.Name)
		if err != nil {
			return cred, err
		}
		presented, d.Body, cred.bodyChanged = key, rest, true
	}
	if presented == "" {
		return cred, missingKey(ak)
	}
	cred.values, cred.sent = []string{presented}, []string{presented}
	id, secret, ok := apikey.Parse(presented)
	if !ok {
		return cred, errInvalidCredentials
	}
	k, found := in.cat.Key(id)
	if !found {
		apikey.Match(secret, "") // same work as a found key: no timing oracle on ids
		return cred, errInvalidCredentials
	}
	if !apikey.Match(secret, k.Hash) {
		return cred, errInvalidCredentials
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return cred, errExpiredKey
	}
	if !k.AllowsNamespace(w.Metadata.Namespace) ||
		!inScope(k.Webhooks, w.Metadata.Name) || !inScope(k.Jobs, w.Spec.Job) {
		return cred, errKeyNotAllowed
	}
	d.Principal = "key:" + k.ID
	return cred, nil
}

// bearerToken returns the token of an Authorization value "Bearer <token>"
// (the scheme case-insensitive, RFC 9110 §11.1), which is all many SaaS
// senders can send, or v itself: the bare key is accepted as well.
func bearerToken(v string) string {
	const scheme = "Bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return v
	}
	if rest := v[len(scheme):]; rest == "" || rest[0] == ' ' {
		return strings.TrimLeft(rest, " ")
	}
	return v
}

func inScope(list []string, name string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == name {
			return true
		}
	}
	return false
}

// authSignature verifies the webhook's signature profile with the current
// secret and the previous ones, each during its own rotation grace. A fault
// in the configuration (unknown profile, missing or unusable secret) is the
// webhook owner's to fix: 500 job_not_runnable with the detail recorded in
// status.lastError, never a 401 that would send the sender hunting.
func (in *Ingress) authSignature(c echo.Context, w *resource.Webhook, d *message.Delivery, now time.Time) (credential, error) {
	sa := w.Spec.Auth.Signature
	p, ok := signature.Lookup(sa.Profile)
	if !ok {
		in.recordError(w, "unknown signature profile "+sa.Profile)
		return credential{}, errJobNotRunnable
	}
	p = signature.WithTolerance(p, sa.Tolerance.D())
	// spec.idempotencyHeader replaces the profile's own event id header.
	// A profile that signs its id keeps it: the keys service refuses the
	// header there, and one stored anyway must not open a replay under a
	// new id.
	idHeader := w.Spec.IdempotencyHeader
	if idHeader != "" {
		if q, ok := signature.WithEventIDHeader(p, idHeader); ok {
			p = q
		} else {
			idHeader = ""
		}
	}
	cred := credential{headers: p.CredentialHeaders()}
	secrets, err := in.cat.SecretValues(w.Metadata.Namespace, sa.SecretRef, now)
	if err != nil {
		in.recordError(w, "signing secret "+sa.SecretRef+" unavailable: "+err.Error())
		return cred, errJobNotRunnable
	}
	cred.values = secrets
	eventID, err := p.Verify(signature.Request{Header: c.Request().Header, Body: d.Body}, secrets, now)
	switch {
	case idHeader != "" && isCredentialHeader(idHeader, cred.headers) &&
		(err == nil || errors.Is(err, signature.ErrMissingEventID)):
		// Stored before the keys service refused such a header: the event
		// id would be the token or the signature, stored and shown with
		// every run. Said only to an authenticated sender.
		cred.eventIDErr, eventID = errCredentialEventID, ""
	case err == nil:
	case errors.Is(err, signature.ErrTimestampInMilliseconds):
		return cred, errTimestampTolerance.withMessage(errTimestampTolerance.Message + ": it looks like milliseconds; send seconds since the Unix epoch")
	case errors.Is(err, signature.ErrTimestampOutOfTolerance):
		return cred, errTimestampTolerance
	case errors.Is(err, signature.ErrMissingEventID):
		// The signature holds (profiles check it first).
		cred.eventIDErr = missingEventID(sa.Profile, p)
	case errors.Is(err, signature.ErrInvalidSecret):
		in.recordError(w, "signing secret "+sa.SecretRef+" is not usable with profile "+sa.Profile)
		return cred, errJobNotRunnable
	case errors.Is(err, signature.ErrSignatureMissing):
		// Which header the profile reads is no secret (the provider's
		// documentation names it) and tells a sender what it left out.
		return cred, errSignatureInvalid.withMessage(errSignatureInvalid.Message + ": " + err.Error())
	default:
		return cred, errSignatureInvalid
	}
	// A token-style profile (GitLab) sends its secret itself. Looked for
	// only now that the sender is authenticated: a plain comparison with
	// the secrets before the profile's constant-time check would tell an
	// unauthenticated sender, by its timing, how much of a guess was right.
	for _, h := range cred.headers {
		if v := c.Request().Header.Get(h); v != "" && sentSecret(secrets, v) {
			cred.sent = append(cred.sent, v)
		}
	}
	d.EventID = eventID
	d.Principal = "signature:" + sa.Profile
	d.Profile = sa.Profile
	return cred, nil
}

// sentSecret says whether v is one of the secrets, comparing in constant
// time: the headers compared include ones the profile never verified (a
// legacy signature header), whose content the sender chose.
func sentSecret(secrets []string, v string) bool {
	found := 0
	for _, s := range secrets {
		found |= subtle.ConstantTimeCompare([]byte(s), []byte(v))
	}
	return found == 1
}

// alwaysStripped headers never reach the delivery log or a job, whatever
// the webhook's auth mode: a webhook that takes no key in X-API-KEY (its
// mode changed, or a sender sends one key everywhere) must not store it
// either.
var alwaysStripped = resource.CredentialHeaders

// minScrubLen is the shortest credential value searched for within other
// headers and query parameters: shorter ones would match innocent values.
// A value that is a credential the request sent, whole, counts whatever
// its length (a short GitLab token typed by hand, repeated in another
// header).
const minScrubLen = 8

// stripCredentials returns the request's headers and query without any
// credential: the always-stripped headers, the ones the auth mode names,
// and — in case a sender put its key somewhere else too, or a Referer
// carries it — any header or parameter whose value holds the endpoint id,
// the presented key or a signing secret. The value slices are shared with the request, which
// is not modified.
func stripCredentials(h http.Header, rawQuery string, c echo.Context, cred credential) (map[string][]string, map[string][]string) {
	hc := make(map[string][]string, len(h))
	for name, vs := range h {
		if isCredentialHeader(name, cred.headers) || holdsCredential(vs, cred) ||
			cred.bodyChanged && strings.EqualFold(name, "Content-Length") {
			continue
		}
		hc[name] = vs
	}
	if rawQuery == "" {
		return hc, nil
	}
	var q url.Values
	if cred.query != "" {
		q = c.QueryParams() // already parsed to find the key
	} else {
		q, _ = url.ParseQuery(rawQuery)
	}
	qc := make(map[string][]string, len(q))
	for name, vs := range q {
		// A parameter's name too: a key or an endpoint id sent bare
		// (?hk_…, ?ep_…&x=1) is a name with an empty value.
		if name == cred.query || holds(name, cred) || holdsCredential(vs, cred) {
			continue
		}
		qc[name] = vs
	}
	if len(qc) == 0 {
		qc = nil
	}
	return hc, qc
}

func isCredentialHeader(name string, named []string) bool {
	for _, n := range alwaysStripped {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	for _, n := range named {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func holdsCredential(vs []string, cred credential) bool {
	for _, v := range vs {
		if holds(v, cred) {
			return true
		}
	}
	return false
}

// holds is holdsCredential of one value.
func holds(v string, cred credential) bool {
	if v != "" && slices.Contains(cred.sent, v) || holdsAPIKey(v) {
		return true
	}
	for _, s := range cred.values {
		if len(s) >= minScrubLen && strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// holdsAPIKey reports whether v holds something shaped as a Hookrun API
// key (hk_<id>_<secret>, a secret of 32 characters or more), as it is or
// percent-encoded (hk%5F…, in a Referer or a proxy's X-Original-Uri): a
// key sent where the webhook takes none is a credential all the same, of
// another webhook perhaps. Keys are made by keys (apikey.New), so they
// have this shape; the presented key itself is stripped by its value.
func holdsAPIKey(v string) bool {
	if keyShaped(v) {
		return true
	}
	// A key's only character a sender encodes is "_" (the rest is
	// lower-case base32); the rest of the value may not decode at all.
	if strings.Contains(v, "%") {
		return keyShaped(underscores.Replace(v))
	}
	return false
}

var underscores = strings.NewReplacer("%5F", "_", "%5f", "_")

// keyShaped reports whether v holds apikey.Prefix, an id of 1 to 64
// base32 characters, "_" and 32 or more base32 characters.
func keyShaped(v string) bool {
	for {
		i := strings.Index(v, apikey.Prefix)
		if i < 0 {
			return false
		}
		v = v[i+len(apikey.Prefix):]
		id := base32Run(v)
		if id >= 1 && id <= 64 && id < len(v) && v[id] == '_' && base32Run(v[id+1:]) >= 32 {
			return true
		}
	}
}

// base32Run is how many of v's first bytes are lower-case base32 (the
// alphabet of ident.Random).
func base32Run(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return i
		}
	}
	return len(v)
}

// missingKey is missing_credentials naming where this webhook takes its
// key, as Jac Cloud's documentation of the webhook would.
func missingKey(ak *resource.APIKeyAuth) *apiError {
	where := ""
	switch ak.In {
	case "header":
		where = "in header " + ak.Name
	case "query":
		where = "in query parameter " + ak.Name
	case "path":
		where = "in the URL path, after the endpoint (/v1/hooks/<endpoint>/<key>)"
	case "body":
		where = "in body field " + ak.Name
	}
	if where == "" {
		return errMissingCredentials
	}
	return errMissingCredentials.withMessage(errMissingCredentials.Message + ": expected " + where)
}

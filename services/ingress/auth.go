package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// credential says where the sender's credential sat, so it can be removed
// before the delivery is stored.
type credential struct {
	headers []string
	query   string
}

// alwaysStripped headers never reach the delivery log or a job.
var alwaysStripped = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// authenticate verifies the request against the webhook's auth mode and
// fills the delivery's principal, profile and (for signature profiles)
// event id. With the key in the body, the key field is removed from d.Body.
func (in *Ingress) authenticate(c echo.Context, w *resource.Webhook, d *message.Delivery, now time.Time) (credential, error) {
	a := w.Spec.Auth
	switch {
	case a.APIKey != nil:
		return in.authAPIKey(c, w, d, now)
	case a.Signature != nil:
		return in.authSignature(c, w, d, now)
	default:
		d.Principal = "endpoint"
		return credential{}, nil
	}
}

func (in *Ingress) authAPIKey(c echo.Context, w *resource.Webhook, d *message.Delivery, now time.Time) (credential, error) {
	ak := w.Spec.Auth.APIKey
	var presented string
	var cred credential
	switch ak.In {
	case "header":
		presented = c.Request().Header.Get(ak.Name)
		cred.headers = []string{ak.Name}
	case "query":
		presented = c.QueryParam(ak.Name)
		cred.query = ak.Name
	case "path":
		presented = c.Param("key")
	case "body":
		key, rest, err := extractBodyKey(d.Body, ak.Name)
		if err != nil {
			return cred, err
		}
		presented, d.Body = key, rest
	}
	if presented == "" {
		return cred, errMissingCredentials
	}
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
	if (k.Namespace != "" && k.Namespace != w.Metadata.Namespace) ||
		!inScope(k.Webhooks, w.Metadata.Name) || !inScope(k.Jobs, w.Spec.Job) {
		return cred, errKeyNotAllowed
	}
	d.Principal = "key:" + k.ID
	return cred, nil
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

func (in *Ingress) authSignature(c echo.Context, w *resource.Webhook, d *message.Delivery, now time.Time) (credential, error) {
	sa := w.Spec.Auth.Signature
	p, ok := signature.Lookup(sa.Profile)
	if !ok {
		in.recordError(w, "unknown signature profile "+sa.Profile)
		return credential{}, errJobNotRunnable
	}
	p = signature.WithTolerance(p, sa.Tolerance.D())
	cred := credential{headers: p.CredentialHeaders()}
	secrets, err := in.cat.SecretValues(w.Metadata.Namespace, sa.SecretRef, now)
	if err != nil {
		in.recordError(w, "signing secret "+sa.SecretRef+" unavailable: "+err.Error())
		return cred, errJobNotRunnable
	}
	eventID, err := p.Verify(signature.Request{Header: c.Request().Header, Body: d.Body}, secrets, now)
	switch {
	case err == nil:
	case errors.Is(err, signature.ErrTimestampOutOfTolerance):
		return cred, errTimestampTolerance
	case errors.Is(err, signature.ErrMissingEventID):
		return cred, errMissingEventID
	case errors.Is(err, signature.ErrInvalidSecret):
		in.recordError(w, "signing secret "+sa.SecretRef+" is not usable with profile "+sa.Profile)
		return cred, errJobNotRunnable
	default:
		return cred, errSignatureInvalid
	}
	if len(eventID) > 256 {
		return cred, errMissingEventID
	}
	d.EventID = eventID
	d.Principal = "signature:" + sa.Profile
	d.Profile = sa.Profile
	return cred, nil
}

// extractBodyKey takes the top-level string field name out of a JSON object
// body and returns its value and the body without it. The rest of the body
// is re-encoded from the parsed object: key order may change, values do not.
func extractBodyKey(body []byte, name string) (string, []byte, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return "", nil, errInvalidBody
	}
	raw, ok := obj[name]
	if !ok {
		return "", body, nil
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return "", nil, errInvalidCredentials
	}
	delete(obj, name)
	rest, err := json.Marshal(obj)
	if err != nil {
		return "", nil, errInvalidBody
	}
	return key, rest, nil
}

// stripCredentials copies headers and query without any credential.
func stripCredentials(h http.Header, q url.Values, cred credential) (map[string][]string, map[string][]string) {
	hc := h.Clone()
	for _, n := range alwaysStripped {
		hc.Del(n)
	}
	for _, n := range cred.headers {
		hc.Del(n)
	}
	if cred.query != "" {
		q.Del(cred.query)
	}
	if len(q) == 0 {
		q = nil
	}
	return hc, q
}

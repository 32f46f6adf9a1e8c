package keys

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/filter"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// webhookPut is the answer to a PUT: the webhook, the API key generated
// for it (shown only here), as Janus does when API key auth is enabled,
// and what in it may not work as meant (see webhookWarnings).
type webhookPut struct {
	resource.Webhook
	GeneratedKey *generatedKey `json:"generatedKey,omitempty"`
	Warnings     []string      `json:"warnings,omitempty"`
}

type generatedKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// EndpointPath is the ingress path of an endpoint id.
func EndpointPath(w *resource.Webhook) string {
	p := "/v1/hooks/" + w.Status.EndpointID
	if a := w.Spec.Auth.APIKey; a != nil && a.In == "path" {
		p += "/{" + a.Name + "}"
	}
	return p
}

func (s *Service) putWebhook(c echo.Context) error {
	var w resource.Webhook
	if err := decode(c, &w); err != nil {
		return err
	}
	if err := placeMeta(c, &w.Metadata); err != nil {
		return err
	}
	w.Status = resource.WebhookStatus{} // the service's to fill, never the caller's
	keyNameUnset := w.Spec.Auth.APIKey != nil && w.Spec.Auth.APIKey.Name == ""
	authOmitted := w.Spec.Auth == (resource.Auth{})
	if err := w.Validate(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.checkWebhookRefs(ctx, &w); err != nil {
		return err
	}
	key := bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name)
	old, rev, found, err := s.webhooks.get(ctx, key)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	result := ResultCreated
	if found && keyNameUnset {
		keepLegacyKeyName(old, &w)
	}
	if found {
		if sameJSON(old.Spec, w.Spec) {
			return respond(c, ResultUnchanged, webhookPut{Webhook: *s.withStatus(ctx, old), Warnings: s.webhookWarnings(ctx, old, authOmitted)})
		}
		w.Metadata.UID, w.Metadata.CreatedAt, w.Metadata.Generation = old.Metadata.UID, old.Metadata.CreatedAt, old.Metadata.Generation
		w.Status.EndpointID = old.Status.EndpointID
		if w.Spec.Auth.Mode() == "none" && old.Spec.Auth.Mode() != "none" {
			// The URL becomes the credential (Workjet's secret URL), and
			// with a key or a signature it was not one: every key holder,
			// revoked ones too, and whoever saw it in a provider's
			// settings knows it. So it is a new one.
			w.Status.EndpointID = ident.NewEndpointID()
		}
		result = ResultConfigured
	} else {
		w.Metadata.UID, w.Metadata.CreatedAt = ident.NewUID(), now
		w.Status.EndpointID = ident.NewEndpointID()
	}
	w.Metadata.Generation++
	w.Metadata.UpdatedAt = now
	w.Status.EndpointPath = EndpointPath(&w)
	var gen *generatedKey
	if w.Spec.Auth.APIKey != nil && (!found || old.Spec.Auth.APIKey == nil) {
		if gen, err = s.newWebhookKey(ctx, &w, key); err != nil {
			return err
		}
	}
	if err := s.webhooks.put(ctx, key, &w, rev); err != nil {
		// Nobody has seen the generated key (the answer that would show it
		// is this error): it goes, whatever the write did. Kept after a
		// time-out that stored the webhook all the same, it would be a
		// key no sender holds; an operator makes one (hookrun keys
		// create) for such a webhook.
		if gen != nil {
			_, _ = s.apiKeys.del(ctx, gen.ID)
		}
		return err
	}
	if !found {
		// A new webhook (a new uid): its status record starts empty,
		// whatever a writer that had not heard of an earlier webhook's
		// delete stored since, and such late writes are dropped. Best
		// effort: a record left of another uid shows as none.
		if err := webhookstatus.Claim(ctx, s.js, w.Metadata.Namespace, w.Metadata.Name, w.Metadata.UID); err != nil {
			s.log.Warn("cannot start the new webhook's status record", "webhook", key, "err", err)
		}
	}
	// Leaving API-key auth revokes the keys the webhook generated: they were
	// made for that mode only, and a later return to it must not revive them.
	// Deleted after the webhook is stored, so a refused change leaves the
	// sender's key working.
	if found && old.Spec.Auth.APIKey != nil && w.Spec.Auth.APIKey == nil {
		if err := s.deleteOwnedKeys(ctx, key, ""); err != nil {
			return err
		}
	}
	// Entering API-key auth (created, or back to it): the keys an earlier
	// webhook of this name, or an earlier stay in that mode, generated and
	// a failed clean-up left behind must not work beside the new one.
	if gen != nil {
		// Best effort: the webhook is stored, and the new key must reach
		// the caller whatever happens here (a PUT again answers
		// "unchanged", without a key).
		if err := s.deleteOwnedKeys(ctx, key, gen.ID); err != nil {
			s.log.Warn("cannot delete the keys an earlier webhook of this name generated; delete them by hand (hookrun keys list)", "webhook", key, "err", err)
		}
	}
	return respond(c, result, webhookPut{Webhook: *s.withStatus(ctx, &w), GeneratedKey: gen, Warnings: s.webhookWarnings(ctx, &w, authOmitted)})
}

// newWebhookKey makes the API key webhook w generates on entering API-key
// auth, owned by its config key owner. Key names are unique in a
// namespace, as POST /v1/keys enforces; a key someone made with this name
// already does not block the webhook, which takes the next free one. The
// name is chosen and taken under keyNames, as createKey's: else a POST
// /v1/keys of that name at the same time made a second key of it.
func (s *Service) newWebhookKey(ctx context.Context, w *resource.Webhook, owner string) (*generatedKey, error) {
	s.keyNames.Lock()
	defer s.keyNames.Unlock()
	name, err := s.freeKeyName(ctx, w.Metadata.Namespace, w.Metadata.Name+"-key")
	if err != nil {
		return nil, err
	}
	if s.beforeWebhookKey != nil {
		s.beforeWebhookKey()
	}
	k, secret, err := s.newKey(ctx, keySpec{
		name: name, namespace: w.Metadata.Namespace,
		webhooks: []string{w.Metadata.Name}, owner: owner,
	})
	if err != nil {
		return nil, err
	}
	return &generatedKey{ID: k.ID, Key: secret}, nil
}

// legacyKeyName is the name an API key in the query, path or body had
// when none was given, before the fifteenth session (now X-API-KEY
// wherever it sits, as Jac Cloud has it).
const legacyKeyName = "api_key"

// keepLegacyKeyName keeps the key's name of stored webhook old in w, a
// new version of it that names none, when old has the legacy default for
// the same placement: applying the same document again must not move the
// key its senders send.
func keepLegacyKeyName(old, w *resource.Webhook) {
	o, n := old.Spec.Auth.APIKey, w.Spec.Auth.APIKey
	if o != nil && n != nil && o.In == n.In && o.In != "header" && o.Name == legacyKeyName {
		n.Name = legacyKeyName
	}
}

// checkWebhookRefs checks what needs other resources: the job exists and
// all its arguments can be resolved without the caller (Janus: webhooks
// cannot pass argument values), the filter compiles, the profile and its
// secret exist.
func (s *Service) checkWebhookRefs(ctx context.Context, w *resource.Webhook) error {
	ns := w.Metadata.Namespace
	j, _, found, err := s.jobs.get(ctx, bus.ConfigKey(ns, w.Spec.Job))
	if err != nil {
		return err
	}
	if !found {
		return &resource.FieldError{Field: "spec.job", Msg: fmt.Sprintf("job %q not found in namespace %q (apply the job first)", w.Spec.Job, ns)}
	}
	if err := argtemplate.CheckDefaults(j.Spec.TemplateArgs()); err != nil {
		return &resource.FieldError{Field: "spec.job", Msg: fmt.Sprintf("job %q cannot be triggered by a webhook: spec.%v", w.Spec.Job, err)}
	}
	if slices.Contains(w.Spec.Methods, http.MethodGet) {
		if err := argtemplate.CheckGETDefaults(j.Spec.TemplateArgs()); err != nil {
			return &resource.FieldError{Field: "spec.methods", Msg: fmt.Sprintf("job %q cannot be triggered by a GET: spec.%v", w.Spec.Job, err)}
		}
	}
	if w.Spec.Filter != "" {
		if _, err := filter.Compile(w.Spec.Filter); err != nil {
			return &resource.FieldError{Field: "spec.filter", Msg: err.Error()}
		}
	}
	refs := webhookSecretRefs(w)
	secrets, err := s.secretsOf(ctx, ns, refs)
	if err != nil {
		return err
	}
	if secrets[2] != nil {
		if err := s.checkURLSecret(ns, refs[2], secrets[2]); err != nil {
			return err
		}
	}
	signing := secrets[0]
	if sa := w.Spec.Auth.Signature; sa != nil {
		p, ok := signature.Lookup(sa.Profile)
		if !ok {
			return &resource.FieldError{Field: "spec.auth.signature.profile", Msg: fmt.Sprintf("must be one of %v", signature.Names())}
		}
		if err := s.checkSigningSecret(ns, sa, p, signing); err != nil {
			return err
		}
		return checkReplayWindow(w, p)
	}
	return nil
}

// webhookSecretRefs lists the secrets webhook w names, in a fixed order
// (a name "" where it names none): its signing secret, its callback's
// signing secret, its callback's URL.
func webhookSecretRefs(w *resource.Webhook) []secretRef {
	return []secretRef{
		{field: "spec.auth.signature.secretRef", name: signatureSecret(w)},
		{field: "spec.callback.secretRef", name: callbackSecret(w)},
		{field: "spec.callback.urlSecretRef", name: callbackURLSecret(w)},
	}
}

// checkSigningSecret refuses a secret the profile cannot sign with (a
// Standard Webhooks secret is base64): the ingress would answer every
// delivery 500 job_not_runnable. Only the current value is checked: it is
// the one senders are moving to.
func (s *Service) checkSigningSecret(ns string, sa *resource.SignatureAuth, p signature.Profile, st *resource.StoredSecret) error {
	const field = "spec.auth.signature.secretRef"
	v, err := s.box.Open(st.Current, []byte(bus.ConfigKey(ns, sa.SecretRef)))
	if err != nil {
		return &resource.FieldError{Field: field, Msg: fmt.Sprintf("secret %q cannot be opened with this service's HOOKRUN_SECRET_KEY (apply its value again)", sa.SecretRef)}
	}
	if signature.ValidateSecret(p, string(v)) != nil {
		return &resource.FieldError{Field: field, Msg: fmt.Sprintf("secret %q is not a valid %s secret (give it a value in that format)", sa.SecretRef, sa.Profile)}
	}
	return nil
}

// checkReplayWindow refuses a dedup window too short for the signature's
// timestamp tolerance. A signed delivery is accepted from tolerance before
// its timestamp to tolerance after, so a captured one can be sent again up
// to twice the tolerance after it was first taken; only the dedup window
// then stops it from running again.
func checkReplayWindow(w *resource.Webhook, p signature.Profile) error {
	tol := signature.Tolerance(signature.WithTolerance(p, w.Spec.Auth.Signature.Tolerance.D()))
	if tol <= 0 {
		return nil // no signed timestamp: dedup alone stands against replays
	}
	window, field := w.Spec.DedupWindow.D(), "spec.dedupWindow"
	if window <= 0 {
		window, field = p.DefaultWindow(), "spec.auth.signature.tolerance"
	}
	if window > 0 && tol > window/2 { // not 2*tol: no overflow whatever tol is
		return &resource.FieldError{Field: field, Msg: fmt.Sprintf(
			"the dedup window (%s) must be at least twice the timestamp tolerance (%s): else a captured delivery, still within its tolerance, runs again once the window has forgotten it", window, tol)}
	}
	return nil
}

func signatureSecret(w *resource.Webhook) string {
	if w.Spec.Auth.Signature != nil {
		return w.Spec.Auth.Signature.SecretRef
	}
	return ""
}

func callbackURLSecret(w *resource.Webhook) string {
	if w.Spec.Callback != nil {
		return w.Spec.Callback.URLSecretRef
	}
	return ""
}

func callbackSecret(w *resource.Webhook) string {
	if w.Spec.Callback != nil {
		return w.Spec.Callback.SecretRef
	}
	return ""
}

// withStatus merges the runtime status (lastError, lastDeliveryAt).
func (s *Service) withStatus(ctx context.Context, w *resource.Webhook) *resource.Webhook {
	st, err := webhookstatus.Get(ctx, s.js, w.Metadata.Namespace, w.Metadata.Name)
	// A status of another uid is an earlier webhook's of the name, written
	// after its delete had cleared it: not this one's.
	if err == nil && (st.UID == "" || st.UID == w.Metadata.UID) {
		w.Status.LastError, w.Status.LastErrorAt, w.Status.LastDeliveryAt = st.LastError, st.LastErrorAt, st.LastDeliveryAt
	}
	w.Status.EndpointPath = EndpointPath(w)
	return w
}

func (s *Service) getWebhook(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	w, _, found, err := s.webhooks.get(ctx, bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("webhook %s/%s", ns, name))
	}
	return c.JSON(http.StatusOK, s.withStatus(ctx, w))
}

func (s *Service) listWebhooks(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	all, err := s.webhooks.list(ctx, nsPrefix(ns))
	if err != nil {
		return err
	}
	out := make([]resource.Webhook, 0, len(all))
	for _, w := range all {
		out = append(out, *s.withStatus(ctx, w))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Metadata.Name < out[b].Metadata.Name })
	return c.JSON(http.StatusOK, listResponse[resource.Webhook]{Items: out})
}

func (s *Service) deleteWebhook(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	key := bus.ConfigKey(ns, name)
	_, rev, found, err := s.webhooks.get(ctx, key)
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("webhook %s/%s", ns, name))
	}
	// Its generated keys are listed now, to go once the webhook has gone:
	// a key generated later is a webhook's of this name created since.
	owned, err := s.ownedKeys(ctx, key, "")
	if err != nil {
		return err
	}
	if s.beforeWebhookDelete != nil {
		s.beforeWebhookDelete()
	}
	// The version read is deleted, or none (409 on a change since). The
	// keys only after it: deleted first, a delete then refused left the
	// webhook in API-key auth with no key, which applying its YAML again
	// ("unchanged") does not generate, and every sender got 401. Keys a
	// failure below leaves behind are owned by the webhook's config key:
	// a webhook of this name entering API-key auth deletes them
	// (putWebhook).
	found, err = s.webhooks.delAt(ctx, key, rev)
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("webhook %s/%s", ns, name))
	}
	answer := map[string]any{"deleted": 1}
	if left, err := s.deleteKeyIDs(ctx, owned); err != nil {
		// The webhook is gone: a retry would answer 404. The caller is
		// told which keys are left: scoped to this name, they would work
		// for a webhook given it later should its own clean-up of them
		// (on entering API-key auth) fail too.
		s.log.Warn("cannot delete the keys the deleted webhook generated; delete them by hand (hookrun keys list)", "webhook", key, "err", err)
		answer["warnings"] = []string{fmt.Sprintf("the webhook is deleted, but API keys it generated could not be (%s): delete them (hookrun keys delete ID)", strings.Join(left, ", "))}
	}
	_ = webhookstatus.Clear(ctx, s.js, ns, name)
	return c.JSON(http.StatusOK, answer)
}

// deleteOwnedKeys deletes the API keys a webhook's creation generated (but
// except), so a webhook created later under the same name does not accept
// them.
func (s *Service) deleteOwnedKeys(ctx context.Context, owner, except string) error {
	ids, err := s.ownedKeys(ctx, owner, except)
	if err != nil {
		return err
	}
	_, err = s.deleteKeyIDs(ctx, ids)
	return err
}

// ownedKeys lists the ids of the API keys webhook owner (a config key)
// generated, but except.
func (s *Service) ownedKeys(ctx context.Context, owner, except string) ([]string, error) {
	all, err := s.apiKeys.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, k := range all {
		if k.OwnerWebhook == owner && k.ID != except {
			ids = append(ids, k.ID)
		}
	}
	return ids, nil
}

// deleteKeyIDs deletes the API keys ids; one already gone is no error.
// On a failure, left is the ids from the one that failed on.
func (s *Service) deleteKeyIDs(ctx context.Context, ids []string) (left []string, err error) {
	for i, id := range ids {
		if _, err := s.apiKeys.del(ctx, id); err != nil {
			return ids[i:], err
		}
	}
	return nil, nil
}

// rotateEndpoint gives the webhook a new endpoint id; the old URL answers
// 404 as soon as the ingresses see the change (a KV watch, well under a second).
func (s *Service) rotateEndpoint(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	key := bus.ConfigKey(ns, name)
	w, rev, found, err := s.webhooks.get(ctx, key)
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("webhook %s/%s", ns, name))
	}
	w.Status.EndpointID = ident.NewEndpointID()
	w.Status.EndpointPath = EndpointPath(w)
	w.Metadata.UpdatedAt = s.now().UTC()
	if err := s.webhooks.put(ctx, key, w, rev); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.withStatus(ctx, w))
}

package keys

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
)

// Warnings of webhook and job PUT answers name what the API accepts,
// because configurations that work today must keep working, but what
// does not do what its author most likely expects. They are answered
// beside the resource ("warnings", as a DELETE's and POST /v1/keys' are)
// and `hookrun apply` prints them; they never refuse a PUT.

// webhookWarnings says what in webhook w, as stored, may not work as its
// author expects; authOmitted: the PUT gave no spec.auth. Best effort: the
// webhook is stored whatever happens here, so a job it cannot read (or one
// deleted meanwhile) gives no warning rather than an error.
func (s *Service) webhookWarnings(ctx context.Context, w *resource.Webhook, authOmitted bool) []string {
	var out []string
	if authOmitted {
		// The default is the secret URL (Janus', Workjet's), a real mode;
		// but a manifest that forgot its auth gets it without a word.
		out = append(out, "spec.auth is not given, so it is none: anyone who has the endpoint URL can deliver. Write auth: {none: {}} if the secret URL is meant to be the only credential, or choose signature or apiKey")
	}
	j, _, found, err := s.jobs.get(ctx, bus.ConfigKey(w.Metadata.Namespace, w.Spec.Job))
	if err == nil && found {
		if m := payloadWarning(w, j, false); m != "" {
			out = append(out, m)
		}
	}
	if m := callbackWarning(w); m != "" {
		out = append(out, m)
	}
	if w.Spec.Auth.APIKey != nil && !s.someKeyTriggers(ctx, w) {
		// Its generated key deleted (by hand, or after a store that timed
		// out): applying it again says "unchanged", and senders get 401.
		out = append(out, fmt.Sprintf("no API key can trigger this webhook (none valid in namespace %s is scoped to it and unexpired): create one, e.g. hookrun keys create %s-key --webhook %s", w.Metadata.Namespace, w.Metadata.Name, w.Metadata.Name))
	}
	return out
}

// someKeyTriggers reports whether an unexpired API key of w's namespace (or
// of every namespace) allows w and its job; true when the keys cannot be
// listed (a warning is best effort).
func (s *Service) someKeyTriggers(ctx context.Context, w *resource.Webhook) bool {
	keys, err := s.apiKeys.list(ctx, "")
	if err != nil {
		return true
	}
	now := s.now()
	for _, k := range keys {
		if k.AllowsNamespace(w.Metadata.Namespace) && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt)) &&
			(len(k.Webhooks) == 0 || slices.Contains(k.Webhooks, w.Metadata.Name)) &&
			(len(k.Jobs) == 0 || slices.Contains(k.Jobs, w.Spec.Job)) {
			return true
		}
	}
	return false
}

// jobWarnings says, for each webhook that triggers job j, what may not
// work as its author expects. Best effort, as webhookWarnings.
func (s *Service) jobWarnings(ctx context.Context, j *resource.Job) []string {
	all, err := s.webhooks.list(ctx, nsPrefix(j.Metadata.Namespace))
	if err != nil {
		return nil
	}
	sort.Slice(all, func(a, b int) bool { return all[a].Metadata.Name < all[b].Metadata.Name })
	var out []string
	for _, w := range all {
		if w.Spec.Job != j.Metadata.Name {
			continue
		}
		if m := payloadWarning(w, j, true); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// payloadWarning warns when webhook w accepts bodies too large for the
// payload variable of job j, or is "". Janus' users read the body from
// $JANUS_ARG_WEBHOOK_PAYLOAD, and with the default 1 MiB limit a large
// body would leave it unset (empty to a script) without a word: the run
// does not fail, it sees no payload. ofJob words it for the job's PUT.
func payloadWarning(w *resource.Webhook, j *resource.Job, ofJob bool) string {
	if len(j.Spec.Command) == 0 {
		return "" // an HTTP job gets the body in its request, not a variable
	}
	if !carriesBody(w.Spec.Methods) {
		return "" // a GET reads no body: the variable is always empty
	}
	prefix := cmp.Or(j.Spec.EnvPrefix, "HOOKRUN")
	if !readsPayloadVariable(j, prefix) {
		return "" // reads the file, or not the payload at all: nothing to say
	}
	room := int64(resource.MaxEnvEntry - len(prefix+"_ARG_WEBHOOK_PAYLOAD="))
	// A webhook stored before Validate filled the limit in lacks it.
	limit := cmp.Or(w.Spec.MaxBodyBytes, resource.DefaultMaxBodyBytes)
	if limit <= room {
		return ""
	}
	field, job := "spec.maxBodyBytes", "job "+j.Metadata.Name
	if ofJob {
		field, job = "webhook "+w.Metadata.Name+"'s spec.maxBodyBytes", "this job"
	}
	return fmt.Sprintf("%s (%d) lets through bodies that $%s_ARG_WEBHOOK_PAYLOAD cannot hold: "+
		"Linux caps one environment variable at 128 KiB, so for a body over %d bytes %s finds that variable unset "+
		"and the body only in the file named by $%s_WEBHOOK_PAYLOAD_FILE; read that file, or lower %s to %d",
		field, limit, prefix, room, job, prefix, field, room)
}

// readsPayloadVariable reports whether job j's command names its payload
// variable (a script given inline, as Janus' examples are: bash -c
// '... $JANUS_ARG_WEBHOOK_PAYLOAD ...'). A script in a file is not looked
// into: most jobs read the payload file or nothing, and a warning at every
// apply of a default webhook would teach users to ignore warnings.
func readsPayloadVariable(j *resource.Job, prefix string) bool {
	name := prefix + "_ARG_WEBHOOK_PAYLOAD"
	return slices.ContainsFunc(j.Spec.Command, func(arg string) bool { return strings.Contains(arg, name) })
}

// carriesBody reports whether a webhook with these methods passes a body
// to its job: every method but GET does (none given means POST).
func carriesBody(methods []string) bool {
	return len(methods) == 0 || slices.ContainsFunc(methods, func(m string) bool { return m != http.MethodGet })
}

// callbackWarning warns about a callback without a signing secret, or is
// "". Such callbacks are sent unsigned (no X-Hookrun-Signature), and
// Workjet's receivers verify the signature of what its output channel
// sends; allowed, as webhooks configured so must keep working.
//
// A callback URL from a secret (urlSecretRef: a Slack or Discord incoming
// webhook, whose URL is its credential) gets none: such receivers verify
// no signature, and the secret URL is what they trust.
func callbackWarning(w *resource.Webhook) string {
	if c := w.Spec.Callback; c == nil || c.SecretRef != "" || c.URLSecretRef != "" {
		return ""
	}
	return "spec.callback has no secretRef: run statuses are POSTed to the callback unsigned (no X-Hookrun-Signature), " +
		"so its receiver cannot verify that they come from this webhook; name a Secret in spec.callback.secretRef"
}

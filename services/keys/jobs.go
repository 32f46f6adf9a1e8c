package keys

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/http/httpguts"

	"github.com/hookrun/hookrun/pkg/argtemplate"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
)

// jobPut is the answer to a PUT: the job, and what in the webhooks that
// trigger it may not work as meant with it (see jobWarnings).
type jobPut struct {
	resource.Job
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Service) putJob(c echo.Context) error {
	var j resource.Job
	if err := decode(c, &j); err != nil {
		return err
	}
	if err := placeMeta(c, &j.Metadata); err != nil {
		return err
	}
	if err := j.Validate(); err != nil {
		return err
	}
	if _, err := argtemplate.Compile(j.Spec.TemplateArgs()); err != nil {
		return &resource.FieldError{Field: "spec.args", Msg: err.Error()}
	}
	ctx := c.Request().Context()
	if err := s.checkJobRefs(ctx, &j); err != nil {
		return err
	}
	key := bus.ConfigKey(j.Metadata.Namespace, j.Metadata.Name)
	old, rev, found, err := s.jobs.get(ctx, key)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	result := ResultCreated
	if found {
		if sameJSON(old.Spec, j.Spec) {
			return respond(c, ResultUnchanged, jobPut{Job: *old, Warnings: s.jobWarnings(ctx, old)})
		}
		j.Metadata.UID, j.Metadata.CreatedAt, j.Metadata.Generation = old.Metadata.UID, old.Metadata.CreatedAt, old.Metadata.Generation
		result = ResultConfigured
	} else {
		j.Metadata.UID, j.Metadata.CreatedAt = ident.NewUID(), now
	}
	j.Metadata.Generation++
	j.Metadata.UpdatedAt = now
	if err := s.jobs.put(ctx, key, &j, rev); err != nil {
		return err
	}
	return respond(c, result, jobPut{Job: j, Warnings: s.jobWarnings(ctx, &j)})
}

// checkJobRefs checks what needs other resources: the HTTP action's secret
// exists, and, when webhooks already trigger this job, every argument can
// still be resolved without the caller (Janus: a webhook cannot pass
// argument values, so each needs a default or a template value).
func (s *Service) checkJobRefs(ctx context.Context, j *resource.Job) error {
	ns := j.Metadata.Namespace
	refs := jobSecretRefs(j)
	secrets, err := s.secretsOf(ctx, ns, refs)
	if err != nil {
		return err
	}
	for i, ref := range refs {
		switch {
		case ref.field == "spec.http.urlSecretRef":
			if err := s.checkURLSecret(ns, ref, secrets[i]); err != nil {
				return err
			}
		case ref.use != "" && secrets[i] != nil:
			v, err := s.box.Open(secrets[i].Current, []byte(bus.ConfigKey(ns, ref.name)))
			if err != nil {
				return &resource.FieldError{Field: ref.field, Msg: fmt.Sprintf("secret %q cannot be opened with this service's HOOKRUN_SECRET_KEY (apply its value again)", ref.name)}
			}
			if why := unusableAs(ref.use, string(v)); why != "" {
				return &resource.FieldError{Field: ref.field, Msg: fmt.Sprintf("secret %q %s", ref.name, why)}
			}
		}
	}
	args := j.Spec.TemplateArgs()
	errAll, errGET := argtemplate.CheckDefaults(args), argtemplate.CheckGETDefaults(args)
	if errGET == nil {
		return nil
	}
	if errAll == nil {
		users, err := s.webhooksOfJob(ctx, ns, j.Metadata.Name, http.MethodGet)
		if err != nil || len(users) == 0 {
			return err
		}
		return &resource.FieldError{Field: "spec.args", Msg: fmt.Sprintf("%v; webhook %s triggers this job with GET", errGET, strings.Join(users, ", "))}
	}
	users, err := s.webhooksOfJob(ctx, ns, j.Metadata.Name, "")
	if err != nil || len(users) == 0 {
		return err
	}
	return &resource.FieldError{Field: "spec.args", Msg: fmt.Sprintf("%v; webhook %s triggers this job and a webhook cannot pass argument values", errAll, strings.Join(users, ", "))}
}

// secretRef is a secret a job names, and where; use is useHeader or
// useEnv where the executor puts its value as it is.
type secretRef struct{ field, name, use string }

const (
	useHeader = "header"
	useEnv    = "env"
)

// unusableAs says why a secret's value cannot be put where use puts it
// (the executor fails every run of the job otherwise), or "".
func unusableAs(use, v string) string {
	switch {
	case use == useHeader && !httpguts.ValidHeaderFieldValue(v):
		return "holds a character no header value can (CR, LF, NUL, ...)"
	case use == useEnv && strings.IndexByte(v, 0) >= 0:
		return "holds a NUL byte, which no environment variable can"
	}
	return ""
}

// secretsOf reads the secrets refs name in namespace ns, in their order: a
// missing one is a FieldError at its ref's field. Refs without a name are
// skipped (their secret is nil).
func (s *Service) secretsOf(ctx context.Context, ns string, refs []secretRef) ([]*resource.StoredSecret, error) {
	out := make([]*resource.StoredSecret, len(refs))
	for i, ref := range refs {
		if ref.name == "" {
			continue
		}
		st, _, found, err := s.secrets.get(ctx, bus.ConfigKey(ns, ref.name))
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, &resource.FieldError{Field: ref.field, Msg: fmt.Sprintf("secret %q not found in namespace %q (apply the secret first)", ref.name, ns)}
		}
		out[i] = st
	}
	return out, nil
}

// checkURLSecret refuses a secret that a job or callback would send to
// (ref, an urlSecretRef) whose value is no absolute http(s) URL: every run
// or callback would fail.
func (s *Service) checkURLSecret(ns string, ref secretRef, st *resource.StoredSecret) error {
	v, err := s.box.Open(st.Current, []byte(bus.ConfigKey(ns, ref.name)))
	if err != nil {
		return &resource.FieldError{Field: ref.field, Msg: fmt.Sprintf("secret %q cannot be opened with this service's HOOKRUN_SECRET_KEY (apply its value again)", ref.name)}
	}
	if !isURLValue(string(v)) {
		return &resource.FieldError{Field: ref.field, Msg: fmt.Sprintf("secret %q does not hold an absolute http or https URL", ref.name)}
	}
	return nil
}

// isURLValue is the executor's reading of a URL secret: trimmed, an
// absolute http(s) URL.
func isURLValue(v string) bool {
	_, ok := resource.HTTPURL(strings.TrimSpace(v))
	return ok
}

// jobSecretRefs lists the secrets job j names, in a fixed order: the HTTP
// action's URL and signing secret, its secret headers, its secret
// variables.
func jobSecretRefs(j *resource.Job) []secretRef {
	var refs []secretRef
	if h := j.Spec.HTTP; h != nil {
		if h.URLSecretRef != "" {
			refs = append(refs, secretRef{"spec.http.urlSecretRef", h.URLSecretRef, ""})
		}
		if h.SecretRef != "" {
			refs = append(refs, secretRef{"spec.http.secretRef", h.SecretRef, ""})
		}
		for _, k := range slices.Sorted(maps.Keys(h.SecretHeaders)) {
			refs = append(refs, secretRef{fmt.Sprintf("spec.http.secretHeaders[%q].secretRef", k), h.SecretHeaders[k].SecretRef, useHeader})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(j.Spec.SecretEnv)) {
		refs = append(refs, secretRef{fmt.Sprintf("spec.secretEnv[%q]", k), j.Spec.SecretEnv[k], useEnv})
	}
	return refs
}

// webhooksOfJob returns the names of the webhooks in ns that trigger job
// (with method, when it is not "").
func (s *Service) webhooksOfJob(ctx context.Context, ns, job, method string) ([]string, error) {
	all, err := s.webhooks.list(ctx, nsPrefix(ns))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, w := range all {
		if w.Spec.Job == job && (method == "" || slices.Contains(w.Spec.Methods, method)) {
			names = append(names, w.Metadata.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (s *Service) getJob(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	j, _, found, err := s.jobs.get(c.Request().Context(), bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("job %s/%s", ns, name))
	}
	return c.JSON(http.StatusOK, j)
}

func (s *Service) listJobs(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	js, err := s.jobs.list(c.Request().Context(), nsPrefix(ns))
	if err != nil {
		return err
	}
	sort.Slice(js, func(a, b int) bool { return js[a].Metadata.Name < js[b].Metadata.Name })
	out := make([]resource.Job, len(js))
	for i, j := range js {
		out[i] = *j
	}
	return c.JSON(http.StatusOK, listResponse[resource.Job]{Items: out})
}

func (s *Service) deleteJob(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	found, err := s.jobs.del(ctx, bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("job %s/%s", ns, name))
	}
	var warnings []string
	if hooks, err := s.webhooksOfJob(ctx, ns, name, ""); err == nil {
		for _, h := range hooks {
			warnings = append(warnings, fmt.Sprintf("webhook %s triggers it: its deliveries will be refused (500 job_not_runnable) until the job is applied again", h))
		}
	}
	return c.JSON(http.StatusOK, deleted(warnings))
}

package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// secretView is a secret as the API shows it: metadata only, except the
// generated value, shown once in the answer that generated it.
type secretView struct {
	resource.Secret
	GeneratedValue string `json:"generatedValue,omitempty"`
}

func view(st *resource.StoredSecret) resource.Secret {
	sec := st.Secret
	sec.Spec.Value = ""
	return sec
}

// generate makes a secret value in format: a profile's own format
// (standard-webhooks gives whsec_…), or 32 random bytes in hex.
func generate(format string) (string, error) {
	if format != "" && format != "hex" {
		p, ok := signature.Lookup(format)
		if !ok {
			return "", &resource.FieldError{Field: "spec.format", Msg: fmt.Sprintf("must be hex or a signature profile (%v)", signature.Names())}
		}
		return p.GenerateSecret()
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// putSecret creates or replaces a secret. A replaced value stays valid for
// spec.previousValidFor (rotation grace). Without a value, a secret is
// generated when it does not exist yet and left alone when it does, so
// re-applying the same YAML never rotates by accident (use /rotate).
func (s *Service) putSecret(c echo.Context) error {
	var sec resource.Secret
	if err := decode(c, &sec); err != nil {
		return err
	}
	if err := placeMeta(c, &sec.Metadata); err != nil {
		return err
	}
	sec.Status = resource.SecretStatus{} // the service's to fill, never the caller's
	if err := sec.Validate(); err != nil {
		return err
	}
	if sec.Spec.Format != "" {
		if _, err := generate(sec.Spec.Format); err != nil {
			return err
		}
	}
	if sec.Spec.Value != "" && sec.Spec.Format != "" && sec.Spec.Format != "hex" {
		p, _ := signature.Lookup(sec.Spec.Format)
		if err := signature.ValidateSecret(p, sec.Spec.Value); err != nil {
			return &resource.FieldError{Field: "spec.value", Msg: "not a valid " + sec.Spec.Format + " secret"}
		}
	}
	return s.storeSecret(c, &sec, false, sec.Spec.Grace(), nil)
}

func (s *Service) rotateSecret(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	st, rev, found, err := s.secrets.get(c.Request().Context(), bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("secret %s/%s", ns, name))
	}
	// An optional body sets this rotation's grace: {"previousValidFor":
	// "1s"} after a leak. It is this rotation's only; the spec's stays for
	// the next. An empty body keeps the spec's.
	var req struct {
		PreviousValidFor *resource.Duration `json:"previousValidFor"`
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBytes(body, &req); err != nil {
			return err
		}
	}
	sec := st.Secret
	sec.Spec.Value = ""
	grace := sec.Spec.Grace()
	if req.PreviousValidFor != nil {
		if grace = req.PreviousValidFor.D(); grace < 0 {
			return &resource.FieldError{Field: "previousValidFor", Msg: "must not be negative"}
		}
	}
	if s.beforeRotateStore != nil {
		s.beforeRotateStore()
	}
	// The rotation is of the secret read above, and stored only over it:
	// read again, a secret deleted meanwhile was made anew (201, version
	// 1), and one replaced meanwhile lost its new spec to this one's.
	return s.storeSecret(c, &sec, true, grace, &secretRead{st: st, rev: rev})
}

// secretRead is a secret as read, with its revision.
type secretRead struct {
	st  *resource.StoredSecret
	rev uint64
}

// storeSecret stores sec; a value it replaces stays valid for grace. read
// is the stored secret sec was made from, which the write must still find
// (else 409 conflict); nil reads it here.
func (s *Service) storeSecret(c echo.Context, sec *resource.Secret, forceRotate bool, grace time.Duration, read *secretRead) error {
	ctx := c.Request().Context()
	key := bus.ConfigKey(sec.Metadata.Namespace, sec.Metadata.Name)
	aad := []byte(key)
	var (
		old   *resource.StoredSecret
		rev   uint64
		found bool
		err   error
	)
	if read != nil {
		old, rev, found = read.st, read.rev, true
	} else if old, rev, found, err = s.secrets.get(ctx, key); err != nil {
		return err
	}
	now := s.now().UTC()
	value, generated := sec.Spec.Value, ""
	if value == "" && (!found || forceRotate) {
		if value, err = generate(sec.Spec.Format); err != nil {
			return err
		}
		generated = value
	}
	// A value sealed under another HOOKRUN_SECRET_KEY cannot be opened:
	// it counts as different, so applying the value again repairs it.
	var cur []byte
	var openErr error
	if found {
		if cur, openErr = s.box.Open(old.Current, aad); openErr != nil {
			cur = nil
		}
	}
	if err := s.checkSecretUsable(ctx, sec, value, cur, generated != ""); err != nil {
		return err
	}
	st := &resource.StoredSecret{Secret: *sec}
	st.Secret.Spec.Value = ""
	result := ResultCreated
	if found {
		result = ResultConfigured
		st.Secret.Metadata.UID, st.Secret.Metadata.CreatedAt = old.Secret.Metadata.UID, old.Secret.Metadata.CreatedAt
		st.Secret.Metadata.Generation = old.Secret.Metadata.Generation
		st.Secret.Status = old.Secret.Status
		switch {
		case value == "" || (openErr == nil && subtle.ConstantTimeCompare(cur, []byte(value)) == 1):
			// Same value (or none given): keep the sealed values as they are.
			st.Current = old.Current
			st.SetPreviousValues(old.PreviousValues())
			if sameJSON(old.Secret.Spec, st.Secret.Spec) {
				return respond(c, ResultUnchanged, secretView{Secret: view(old)})
			}
			// A lower previousValidFor (0s once a replaced value leaked)
			// holds for the values already in their grace too, as a
			// rotation's does: none stays valid past now+grace. One left
			// as it is or raised leaves them: a rotation's body may have
			// given them a longer grace than the spec's.
			if grace < old.Secret.Spec.Grace() {
				limit := now.Add(grace)
				st.SetPreviousValues(previousUntil(old.PreviousValues(), now, limit))
				if e := st.Secret.Status.PreviousExpiresAt; e != nil && e.After(limit) {
					st.Secret.Status.PreviousExpiresAt = &limit
				}
			}
		default:
			exp := now.Add(grace)
			st.Current = s.box.Seal([]byte(value), aad)
			if openErr == nil { // else every stored value is sealed under a lost key
				st.SetPreviousValues(previousAfterRotation(old, now, exp))
			}
			st.Secret.Status.Version++
			st.Secret.Status.RotatedAt, st.Secret.Status.PreviousExpiresAt = &now, &exp
		}
	} else {
		st.Secret.Metadata.UID, st.Secret.Metadata.CreatedAt = ident.NewUID(), now
		st.Current = s.box.Seal([]byte(value), aad)
		st.Secret.Status.Version = 1
	}
	st.Secret.Metadata.Generation++
	st.Secret.Metadata.UpdatedAt = now
	if err := s.secrets.put(ctx, key, st, rev); err != nil {
		return err
	}
	return respond(c, result, secretView{Secret: view(st), GeneratedValue: generated})
}

// checkSecretUses refuses a value the jobs of the secret's namespace
// cannot use where they put it as it is: a header value (secretHeaders) or
// an environment variable (secretEnv).
func (s *Service) checkSecretUses(ctx context.Context, sec *resource.Secret, value string, generated bool) error {
	if unusableAs(useHeader, value) == "" {
		return nil // fits a header, so an environment variable too
	}
	jobs, err := s.jobs.list(ctx, nsPrefix(sec.Metadata.Namespace))
	if err != nil {
		return err
	}
	slices.SortFunc(jobs, func(a, b *resource.Job) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	field := "spec.value"
	if generated {
		field = "spec.format"
	}
	for _, j := range jobs {
		for _, ref := range jobSecretRefs(j) {
			if ref.name != sec.Metadata.Name || ref.use == "" {
				continue
			}
			if why := unusableAs(ref.use, value); why != "" {
				return &resource.FieldError{Field: field, Msg: fmt.Sprintf("job %q uses this secret at %s, and this value %s", j.Metadata.Name, ref.field, why)}
			}
		}
	}
	return nil
}

// checkSecretUsable refuses a secret that every delivery would then fail
// with (500 job_not_runnable). value is the new value, given or generated
// in spec.format; "" keeps stored, the current one (nil when there is none
// or it is sealed under a lost key: its readers refuse it anyway). A kept
// value must suit spec.format, which may have changed; a new one must suit
// every webhook that verifies signatures with the secret.
func (s *Service) checkSecretUsable(ctx context.Context, sec *resource.Secret, value string, stored []byte, generated bool) error {
	if value == "" {
		if f := sec.Spec.Format; stored != nil && f != "" && f != "hex" {
			if p, ok := signature.Lookup(f); ok && signature.ValidateSecret(p, string(stored)) != nil {
				return &resource.FieldError{Field: "spec.format", Msg: fmt.Sprintf("the secret's value is not a valid %s secret (give spec.value in that format with it)", f)}
			}
		}
		return nil
	}
	hooks, err := s.webhooks.list(ctx, nsPrefix(sec.Metadata.Namespace))
	if err != nil {
		return err
	}
	slices.SortFunc(hooks, func(a, b *resource.Webhook) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	if !isURLValue(value) {
		// A URL that is a credential: jobs and callbacks send to it.
		field := "spec.value"
		if generated {
			field = "spec.format"
		}
		for _, w := range hooks {
			if callbackURLSecret(w) == sec.Metadata.Name {
				return &resource.FieldError{Field: field, Msg: fmt.Sprintf("webhook %q sends its callbacks to the URL this secret holds, and this value is not an absolute http or https URL", w.Metadata.Name)}
			}
		}
		jobs, err := s.jobs.list(ctx, nsPrefix(sec.Metadata.Namespace))
		if err != nil {
			return err
		}
		slices.SortFunc(jobs, func(a, b *resource.Job) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
		for _, j := range jobs {
			if h := j.Spec.HTTP; h != nil && h.URLSecretRef == sec.Metadata.Name {
				return &resource.FieldError{Field: field, Msg: fmt.Sprintf("job %q sends to the URL this secret holds, and this value is not an absolute http or https URL", j.Metadata.Name)}
			}
		}
	}
	if err := s.checkSecretUses(ctx, sec, value, generated); err != nil {
		return err
	}
	for _, w := range hooks {
		sa := w.Spec.Auth.Signature
		if sa == nil || sa.SecretRef != sec.Metadata.Name {
			continue
		}
		p, ok := signature.Lookup(sa.Profile)
		if !ok || signature.ValidateSecret(p, value) == nil {
			continue
		}
		if generated {
			return &resource.FieldError{Field: "spec.format", Msg: fmt.Sprintf("webhook %q verifies %s signatures with this secret and cannot use a value generated in this format (set spec.format: %s)", w.Metadata.Name, sa.Profile, sa.Profile)}
		}
		return &resource.FieldError{Field: "spec.value", Msg: fmt.Sprintf("webhook %q verifies %s signatures with this secret and cannot use this value", w.Metadata.Name, sa.Profile)}
	}
	return nil
}

// previousAfterRotation lists the values old's replacement leaves valid:
// its current value until exp, then its previous ones until their own
// expiry. None outlasts exp, so a rotation with a short previousValidFor
// (after a leak) revokes them all.
func previousAfterRotation(old *resource.StoredSecret, now, exp time.Time) []resource.PreviousValue {
	out := []resource.PreviousValue{{Value: old.Current, ExpiresAt: exp}}
	return append(out, previousUntil(old.PreviousValues(), now, exp)...)
}

// previousUntil is vs with no grace past limit, less the values whose
// grace has ended by now.
func previousUntil(vs []resource.PreviousValue, now, limit time.Time) []resource.PreviousValue {
	var out []resource.PreviousValue
	for _, p := range vs {
		if p.ExpiresAt.After(limit) {
			p.ExpiresAt = limit
		}
		if p.ExpiresAt.After(now) {
			out = append(out, p)
		}
	}
	return out
}

func (s *Service) getSecret(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	st, _, found, err := s.secrets.get(c.Request().Context(), bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("secret %s/%s", ns, name))
	}
	return c.JSON(http.StatusOK, view(st))
}

func (s *Service) listSecrets(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	all, err := s.secrets.list(c.Request().Context(), nsPrefix(ns))
	if err != nil {
		return err
	}
	out := make([]resource.Secret, 0, len(all))
	for _, st := range all {
		out = append(out, view(st))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Metadata.Name < out[b].Metadata.Name })
	return c.JSON(http.StatusOK, listResponse[resource.Secret]{Items: out})
}

func (s *Service) deleteSecret(c echo.Context) error {
	ns, err := namespace(c)
	if err != nil {
		return err
	}
	name, err := pathName(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	found, err := s.secrets.del(ctx, bus.ConfigKey(ns, name))
	if err != nil {
		return err
	}
	if !found {
		return notFound(fmt.Sprintf("secret %s/%s", ns, name))
	}
	return c.JSON(http.StatusOK, deleted(s.secretUsers(ctx, ns, name)))
}

// secretUsers describes the webhooks and jobs in ns that name secret
// name, and what of them a missing secret breaks.
func (s *Service) secretUsers(ctx context.Context, ns, name string) []string {
	var users []string
	webhooks, err := s.webhooks.list(ctx, nsPrefix(ns))
	if err == nil {
		for _, w := range webhooks {
			for _, ref := range webhookSecretRefs(w) {
				if ref.name == name {
					what := "its callbacks will fail"
					if ref.field == "spec.auth.signature.secretRef" {
						what = "its deliveries will be refused (500 job_not_runnable)"
					}
					users = append(users, fmt.Sprintf("webhook %s names it (%s): %s until the secret is applied again", w.Metadata.Name, ref.field, what))
				}
			}
		}
	}
	jobs, err := s.jobs.list(ctx, nsPrefix(ns))
	if err == nil {
		for _, j := range jobs {
			for _, ref := range jobSecretRefs(j) {
				if ref.name == name {
					users = append(users, fmt.Sprintf("job %s names it (%s): its runs will fail until the secret is applied again", j.Metadata.Name, ref.field))
				}
			}
		}
	}
	return users
}

// deleted is a DELETE's answer, with what the deletion breaks as warnings.
func deleted(warnings []string) map[string]any {
	out := map[string]any{"deleted": 1}
	if len(warnings) > 0 {
		out["warnings"] = warnings
	}
	return out
}

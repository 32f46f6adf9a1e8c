package keys

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
)

// keyRequest is Jac Cloud's generate-key body, with webhooks/jobs for
// walkers/nodes.
type keyRequest struct {
	Name       string               `json:"name"`
	Namespace  string               `json:"namespace,omitempty"`
	Webhooks   []string             `json:"webhooks"`
	Jobs       []string             `json:"jobs"`
	Expiration *resource.Expiration `json:"expiration,omitempty"`
}

// keyCreated is the only answer that carries the key itself.
type keyCreated struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Key       string     `json:"key"`
	ExpiresAt *time.Time `json:"expiresAt"` // null: never expires (API.md lists the field)
	// Warnings name scopes that match nothing yet (a typo, or a webhook
	// still to be created): the key is made all the same.
	Warnings []string `json:"warnings,omitempty"`
}

// keyView lists a key without its secret or hash.
type keyView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Namespace string     `json:"namespace,omitempty"`
	Webhooks  []string   `json:"webhooks"`
	Jobs      []string   `json:"jobs"`
	ExpiresAt *time.Time `json:"expiresAt"` // null: never expires (API.md lists the field)
	CreatedAt time.Time  `json:"createdAt"`
	Prefix    string     `json:"prefix"`
	Expired   bool       `json:"expired"`
}

func (s *Service) keyView(k *resource.APIKey) keyView {
	return keyView{ID: k.ID, Name: k.Name, Namespace: k.InNamespace(), Webhooks: nonNil(k.Webhooks), Jobs: nonNil(k.Jobs),
		ExpiresAt: k.ExpiresAt, CreatedAt: k.CreatedAt, Prefix: k.Prefix, Expired: k.ExpiresAt != nil && !s.now().Before(*k.ExpiresAt)}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// maxKeyScopes bounds a key's lists of webhooks and of jobs: each name is
// looked up at create, and every service holds the key in memory.
const maxKeyScopes = 1000

// notPrintable is a character a key's name may not hold: printed in lists
// and terminals, a control, a line or paragraph separator or a
// bidirectional control (U+202E turns the rest of a line around) would
// make it read as another name or break the list.
func notPrintable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control)
}

func (s *Service) createKey(c echo.Context) error {
	var r keyRequest
	if err := decode(c, &r); err != nil {
		return err
	}
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		return &resource.FieldError{Field: "name", Msg: "is required (at most 128 characters)"}
	}
	if !utf8.ValidString(r.Name) || strings.ContainsFunc(r.Name, notPrintable) {
		return &resource.FieldError{Field: "name", Msg: "must be text without control characters, line separators or bidirectional controls (it is printed in lists)"}
	}
	if n := utf8.RuneCountInString(r.Name); n > 128 {
		return &resource.FieldError{Field: "name", Msg: fmt.Sprintf("is %d characters: at most 128", n)}
	}
	for field, list := range map[string][]string{"webhooks": r.Webhooks, "jobs": r.Jobs} {
		if len(list) > maxKeyScopes {
			return &resource.FieldError{Field: field, Msg: fmt.Sprintf("names at most %d (an empty list: all)", maxKeyScopes)}
		}
	}
	// A key works in one namespace, like every resource: the body's, else
	// ?namespace=, else the default one. Its webhooks and jobs scopes name
	// resources of that namespace only. "*" (resource.AllNamespaces), only
	// when given, makes it valid in every namespace (whatever the query:
	// `hookrun keys create --all-namespaces` sends its -n, "default" unless
	// set). A body and a query that both name one namespace must agree, as
	// for resources (placeMeta).
	if q := c.QueryParam("namespace"); q != "" && r.Namespace != "" && r.Namespace != resource.AllNamespaces && r.Namespace != q {
		return &resource.FieldError{Field: "namespace", Msg: fmt.Sprintf("%q does not match ?namespace=%s", r.Namespace, q)}
	}
	switch r.Namespace {
	case "":
		ns, err := namespace(c)
		if err != nil {
			return err
		}
		r.Namespace = ns
	case resource.AllNamespaces:
	default:
		if err := resource.CheckName("namespace", r.Namespace); err != nil {
			return err
		}
	}
	for i, n := range r.Webhooks {
		if !resource.ValidName(n) {
			return &resource.FieldError{Field: fmt.Sprintf("webhooks[%d]", i), Msg: "must be a webhook name"}
		}
	}
	for i, n := range r.Jobs {
		if !resource.ValidName(n) {
			return &resource.FieldError{Field: fmt.Sprintf("jobs[%d]", i), Msg: "must be a job name"}
		}
	}
	// Names are unique in a namespace (Jac Cloud's "unique name for the
	// webhook key"): the CLI and people address keys by them. Checked
	// against the list, and held through the create in this process;
	// two keys services creating one name at the same instant can still
	// both win.
	s.keyNames.Lock()
	defer s.keyNames.Unlock()
	if taken, err := s.keyNameTaken(c.Request().Context(), r.Namespace, r.Name); err != nil {
		return err
	} else if taken {
		return &apiError{Status: http.StatusConflict, Code: "name_taken", Message: fmt.Sprintf("an API key named %q exists in namespace %q already", r.Name, r.Namespace)}
	}
	var ttl time.Duration
	if r.Expiration != nil {
		var err error
		if ttl, err = r.Expiration.Duration(); err != nil {
			return err
		}
	}
	k, key, err := s.newKey(c.Request().Context(), keySpec{name: r.Name, namespace: r.Namespace, webhooks: r.Webhooks, jobs: r.Jobs, ttl: ttl})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, keyCreated{ID: k.ID, Name: k.Name, Key: key, ExpiresAt: k.ExpiresAt,
		Warnings: s.unmatchedScopes(c.Request().Context(), r.Namespace, r.Webhooks, r.Jobs)})
}

// unmatchedScopes names the webhooks and jobs a key is scoped to that do
// not exist in its namespace (not checked for a key of every namespace).
func (s *Service) unmatchedScopes(ctx context.Context, ns string, webhooks, jobs []string) []string {
	if ns == resource.AllNamespaces {
		return nil
	}
	var out []string
	for _, w := range webhooks {
		if _, _, found, err := s.webhooks.get(ctx, bus.ConfigKey(ns, w)); err == nil && !found {
			out = append(out, fmt.Sprintf("no webhook %q in namespace %q (yet): the key works for it once it exists", w, ns))
		}
	}
	for _, j := range jobs {
		if _, _, found, err := s.jobs.get(ctx, bus.ConfigKey(ns, j)); err == nil && !found {
			out = append(out, fmt.Sprintf("no job %q in namespace %q (yet): the key works for its webhooks once it exists", j, ns))
		}
	}
	return out
}

func (s *Service) keyNameTaken(ctx context.Context, ns, name string) (bool, error) {
	all, err := s.apiKeys.list(ctx, "")
	if err != nil {
		return false, err
	}
	for _, k := range all {
		if k.Name == name && k.InNamespace() == ns {
			return true, nil
		}
	}
	return false, nil
}

// freeKeyName returns base, or base-2, base-3, … when that is taken in
// namespace ns.
func (s *Service) freeKeyName(ctx context.Context, ns, base string) (string, error) {
	all, err := s.apiKeys.list(ctx, "")
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, k := range all {
		if k.InNamespace() == ns {
			taken[k.Name] = true
		}
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name, nil
}

// keySpec is what a new key is made from.
type keySpec struct {
	name, namespace string
	webhooks, jobs  []string
	ttl             time.Duration // 0: never expires (no expiration given)
	owner           string        // config key of the webhook that generated it, if any
}

// newKey stores a new key (only its hash) and returns it with the key
// itself, which is never stored and so can only be shown now.
func (s *Service) newKey(ctx context.Context, ks keySpec) (*resource.APIKey, string, error) {
	key, id, hash := apikey.New()
	now := s.now().UTC()
	k := &resource.APIKey{ID: id, Name: ks.name, Namespace: ks.namespace, Webhooks: nonNil(ks.webhooks), Jobs: nonNil(ks.jobs),
		CreatedAt: now, Prefix: apikey.DisplayPrefix(id), Hash: hash, OwnerWebhook: ks.owner}
	if ks.ttl > 0 {
		exp := now.Add(ks.ttl)
		k.ExpiresAt = &exp
	}
	if err := s.apiKeys.put(ctx, id, k, 0); err != nil {
		return nil, "", err
	}
	return k, key, nil
}

// Keys are addressed by their ids, unique across namespaces. As for runs,
// ?namespace= narrows: a list to that namespace's keys, an operation on one
// key to a key of that namespace (another's is not found); without it,
// every namespace's keys are listed and found.
func (s *Service) listKeys(c echo.Context) error {
	ns, err := namespaceFilter(c)
	if err != nil {
		return err
	}
	all, err := s.apiKeys.list(c.Request().Context(), "")
	if err != nil {
		return err
	}
	out := make([]keyView, 0, len(all))
	for _, k := range all {
		if ns == "" || k.AllowsNamespace(ns) {
			out = append(out, s.keyView(k))
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.Before(out[b].CreatedAt) })
	return c.JSON(http.StatusOK, map[string]any{"keys": out})
}

// extendKey pushes a key's expiry out by {count, interval} from now or from
// its current expiry, whichever is later (Jac Cloud's extend). A key that
// never expires is left as it is: extending must not shorten a key's life.
func (s *Service) extendKey(c echo.Context) error {
	var e resource.Expiration
	if err := decode(c, &e); err != nil {
		return err
	}
	d, err := e.Duration()
	var fe *resource.FieldError
	if errors.As(err, &fe) {
		// The extend body is {count, interval} itself, not an "expiration".
		return &resource.FieldError{Field: strings.TrimPrefix(fe.Field, "expiration."), Msg: fe.Msg}
	}
	if err != nil {
		return err
	}
	ns, err := namespaceFilter(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := keyID(c.Param("id"))
	k, rev, found, err := s.apiKeys.get(ctx, id)
	if err != nil {
		return err
	}
	if !found || (ns != "" && !k.AllowsNamespace(ns)) {
		return notFound("API key " + id)
	}
	if k.ExpiresAt == nil {
		return c.JSON(http.StatusOK, s.keyView(k))
	}
	now := s.now().UTC()
	base := now
	if k.ExpiresAt.After(base) {
		base = *k.ExpiresAt
	}
	exp := base.Add(d)
	// Extensions add up, and past year 9999 an expiry cannot be written as
	// JSON. The total is held to what one request may set; beyond it the
	// request is refused, not clamped, so nobody gets less than they asked
	// for without being told.
	if limit := now.Add(resource.MaxExpiration); exp.After(limit) {
		return &resource.FieldError{Field: "count", Msg: fmt.Sprintf(
			"would move the expiry to more than 100 years from now (the key expires at %s)", k.ExpiresAt.Format(time.RFC3339))}
	}
	k.ExpiresAt = &exp
	if err := s.apiKeys.put(ctx, id, k, rev); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.keyView(k))
}

// keyID is the id of the key ref names: its id, or, as a user who kept only
// the key (Jac Cloud's list shows keys whole) or the list's prefix sends,
// the key itself ("hk_<id>_<secret>", its secret part unchecked: the id
// alone addresses a key here) or its prefix ("hk_<id>").
func keyID(ref string) string {
	if id, _, ok := apikey.Parse(ref); ok {
		return id
	}
	if id, ok := strings.CutPrefix(ref, apikey.Prefix); ok && id != "" && !strings.Contains(id, "_") {
		return id
	}
	return ref
}

func (s *Service) deleteKeys(c echo.Context) error {
	var r struct {
		IDs []string `json:"ids"`
	}
	if err := decode(c, &r); err != nil {
		return err
	}
	if len(r.IDs) == 0 {
		return &resource.FieldError{Field: "ids", Msg: "name at least one key id"}
	}
	ns, err := namespaceFilter(c)
	if err != nil {
		return err
	}
	n := 0
	for _, id := range r.IDs {
		found, err := s.deleteKeyIn(c.Request().Context(), keyID(id), ns)
		if err != nil {
			return err
		}
		if found {
			n++
		}
	}
	return c.JSON(http.StatusOK, map[string]int{"deleted": n})
}

func (s *Service) deleteKey(c echo.Context) error {
	ns, err := namespaceFilter(c)
	if err != nil {
		return err
	}
	id := keyID(c.Param("id"))
	found, err := s.deleteKeyIn(c.Request().Context(), id, ns)
	if err != nil {
		return err
	}
	if !found {
		return notFound("API key " + id)
	}
	return c.JSON(http.StatusOK, map[string]int{"deleted": 1})
}

// deleteKeyIn deletes key id if it is in namespace ns ("": any).
func (s *Service) deleteKeyIn(ctx context.Context, id, ns string) (bool, error) {
	if ns != "" {
		k, _, found, err := s.apiKeys.get(ctx, id)
		if err != nil || !found || !k.AllowsNamespace(ns) {
			return false, err
		}
	}
	return s.apiKeys.del(ctx, id)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

func init() { clientCommands = append(clientCommands, newGetCmd) }

// getKinds maps what `get` accepts to the collection it reads.
var getKinds = map[string]string{
	"job": "jobs", "jobs": "jobs",
	"webhook": "webhooks", "webhooks": "webhooks",
	"secret": "secrets", "secrets": "secrets",
	"key": "keys", "keys": "keys", "apikey": "keys", "apikeys": "keys",
	"run": "runs", "runs": "runs",
}

// runFilter are the flags of run lists.
type runFilter struct {
	webhook, job, status string
	limit                int
}

func (f runFilter) query(ns string) url.Values {
	q := url.Values{"namespace": {ns}, "limit": {strconv.Itoa(f.limit)}}
	for k, v := range map[string]string{"webhook": f.webhook, "job": f.job, "status": f.status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func addRunFilterFlags(cmd *cobra.Command, f *runFilter, limit int) {
	fl := cmd.Flags()
	fl.StringVar(&f.webhook, "webhook", "", "only runs of this webhook")
	fl.StringVar(&f.job, "job", "", "only runs of this job")
	fl.StringVar(&f.status, "status", "", "only runs in this status (queued, running, succeeded, failed, timed_out, cancelled, filtered, rejected)")
	fl.IntVar(&f.limit, "limit", limit, "at most this many runs, newest first")
}

// maxRunsListed bounds get runs --limit: the API's pages of 1000 are
// followed up to it.
const maxRunsListed = 100_000

func newGetCmd() *cobra.Command {
	o := &clientOptions{}
	var out string
	var rf runFilter
	cmd := &cobra.Command{
		Use:   "get jobs|webhooks|secrets|keys|runs [NAME]",
		Short: "List resources, or show one, as a table or as JSON/YAML",
		Long: `List jobs, webhooks, secrets, API keys or runs of a namespace, or show one
by name (a key by id or name, a run by id). -o json prints the API's
objects (a list as a JSON array); -o yaml the same as YAML, which
"hookrun apply -f" reads back. Secret values and API keys are never shown,
nor, in -o json|yaml, the endpoint of a webhook with auth none, whose URL
is its credential (stderr says so): the table and describe show it.`,
		Example: `  hookrun get webhooks
  hookrun get webhook report-github-push -o yaml
  hookrun get runs --webhook report-github-push --status failed
  hookrun get keys -o json`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			coll, ok := getKinds[strings.ToLower(args[0])]
			if !ok {
				return usageErr("cannot get %q: choose jobs, webhooks, secrets, keys or runs", args[0])
			}
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			g := getter{c: c, o: o, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), format: out, now: time.Now()}
			return g.get(cmd.Context(), coll, name, rf)
		},
	}
	addClientFlags(cmd, o)
	addOutputFlag(cmd, &out, "output format")
	addRunFilterFlags(cmd, &rf, 20)
	return cmd
}

// getter prints resources.
type getter struct {
	c      *apiClient
	o      *clientOptions
	out    io.Writer
	errOut io.Writer // notes on what -o json|yaml leaves out
	format string
	now    time.Time
}

func (g getter) get(ctx context.Context, coll, name string, rf runFilter) error {
	var raws []json.RawMessage
	single := name != ""
	switch {
	case coll == "keys":
		all, err := listKeys(ctx, g.c)
		if err != nil {
			return err
		}
		raws = all
		if single {
			raws = nil
			id, whole := keyRef(name)
			for pass := 0; pass < 2 && len(raws) == 0; pass++ {
				for _, r := range all {
					var k keyInfo
					if json.Unmarshal(r, &k) != nil {
						continue
					}
					// As given (an id or a name) first; then a whole
					// key's id, matching ids only.
					if pass == 0 && (k.ID == name || k.Name == name) || pass == 1 && whole && k.ID == id {
						raws = append(raws, r)
					}
				}
			}
			if whole && len(raws) == 0 {
				name = id // never the secret part
			}
			if len(raws) == 0 {
				return failErr(codeNotFound, "API key %s not found", name)
			}
			single = len(raws) == 1
			if !single && g.format != outTable {
				// -o json|yaml of one key is an object: a list in its
				// place would break the script that reads it.
				var ids []string
				for _, r := range raws {
					var k keyInfo
					if json.Unmarshal(r, &k) == nil {
						ids = append(ids, k.ID)
					}
				}
				return failErr(codeRefused, "%d keys are named %s: name one by id (%s), or list them: hookrun get keys %s", len(raws), name, strings.Join(ids, ", "), name)
			}
		}
	case coll == "runs" && single:
		resp, err := g.c.do(ctx, "GET", "/v1/runs/"+url.PathEscape(name), g.c.nsQuery(), nil)
		if err != nil {
			return g.c.inNamespace(err)
		}
		raws = []json.RawMessage{resp.Body}
	case coll == "runs":
		if rf.limit < 1 || rf.limit > maxRunsListed {
			return usageErr("--limit %d: must be from 1 to %d", rf.limit, maxRunsListed)
		}
		// The API answers at most 1000 runs a page; more come from the
		// pages after it (its "next" cursor).
		q := rf.query(g.c.ns)
		for left := rf.limit; left > 0; {
			q.Set("limit", strconv.Itoa(min(left, 1000)))
			var l struct {
				Runs []json.RawMessage `json:"runs"`
				Next string            `json:"next"`
			}
			if err := g.c.getJSON(ctx, "/v1/runs", q, &l); err != nil {
				return err
			}
			raws = append(raws, l.Runs...)
			left -= len(l.Runs)
			if l.Next == "" || len(l.Runs) == 0 {
				break
			}
			q.Set("cursor", l.Next)
		}
	case single:
		resp, err := g.c.do(ctx, "GET", "/v1/"+coll+"/"+url.PathEscape(name), g.c.nsQuery(), nil)
		if err != nil {
			return err
		}
		raws = []json.RawMessage{resp.Body}
	default:
		var l struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := g.c.getJSON(ctx, "/v1/"+coll, g.c.nsQuery(), &l); err != nil {
			return err
		}
		raws = l.Items
	}
	if g.format != outTable {
		if coll == "webhooks" {
			var err error
			if raws, err = g.withoutSecretURLs(raws); err != nil {
				return err
			}
		}
		if single {
			return printRaw(g.out, g.format, raws[0])
		}
		if raws == nil {
			raws = []json.RawMessage{}
		}
		b, err := json.Marshal(raws)
		if err != nil {
			return err
		}
		return printRaw(g.out, g.format, b)
	}
	if len(raws) == 0 {
		fmt.Fprintf(g.out, "No %s in namespace %s.\n", coll, g.c.ns)
		return nil
	}
	return g.table(coll, raws)
}

// withoutSecretURLs leaves the endpoint (status.endpointId and
// endpointPath) out of the webhooks with auth none, for -o json|yaml, and
// says so on stderr. Their URL is their credential (Workjet: "Webhook URLs
// are secret … do not commit them to source control"), and this output is
// what apply -f reads back, so what gets saved to a file and committed; a
// key or a signature guards the others, whose URL alone lets nobody in.
// The status is the API's to fill, so apply never needs it.
func (g getter) withoutSecretURLs(raws []json.RawMessage) ([]json.RawMessage, error) {
	var names []string
	out := make([]json.RawMessage, len(raws))
	for i, r := range raws {
		var w resource.Webhook
		if err := json.Unmarshal(r, &w); err != nil {
			return nil, failErr(codeUnavailable, "the API answered an unexpected webhooks: %v", err)
		}
		out[i] = r
		if w.Spec.Auth.Mode() != "none" || (w.Status.EndpointID == "" && w.Status.EndpointPath == "") {
			continue
		}
		b, err := withoutEndpoint(r)
		if err != nil {
			return nil, failErr(codeUnavailable, "the API answered an unexpected webhooks: %v", err)
		}
		out[i] = b
		names = append(names, "webhook/"+w.Metadata.Name)
	}
	if len(names) > 0 {
		ns := ""
		if g.c.ns != defaultNamespace {
			ns = " -n " + g.c.ns
		}
		name := "NAME"
		if len(names) == 1 {
			name = strings.TrimPrefix(names[0], "webhook/")
		}
		fmt.Fprintf(g.errOut, "Note: %s: status.endpointId and status.endpointPath left out: with auth none the endpoint URL is the webhook's credential, to keep out of files and source control; hookrun describe webhook %s%s shows it, as does hookrun get webhooks%s\n",
			strings.Join(names, ", "), name, ns, ns)
	}
	return out, nil
}

// withoutEndpoint is a webhook as the API answered it less its
// status.endpointId and endpointPath (and a status left empty). Only the
// status is taken apart: metadata and spec go out as they came.
func withoutEndpoint(raw json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	var status map[string]json.RawMessage
	if err := json.Unmarshal(obj["status"], &status); err != nil {
		return nil, err
	}
	delete(status, "endpointId")
	delete(status, "endpointPath")
	delete(obj, "status")
	if len(status) > 0 {
		b, err := marshalNoEscape(status)
		if err != nil {
			return nil, err
		}
		obj["status"] = b
	}
	return marshalNoEscape(obj)
}

// marshalNoEscape is json.Marshal without its escaping of <, > and &,
// which would print a filter's "payload.n > 3" as "payload.n \u003e 3".
func marshalNoEscape(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// listKeys lists the keys valid in the client's namespace (its own and
// those valid in every namespace).
func listKeys(ctx context.Context, c *apiClient) ([]json.RawMessage, error) {
	var l struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := c.getJSON(ctx, "/v1/keys", c.nsQuery(), &l); err != nil {
		return nil, err
	}
	return l.Keys, nil
}

// keyInfo is an API key as the API lists it (never with its secret).
type keyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Namespace string     `json:"namespace"`
	Webhooks  []string   `json:"webhooks"`
	Jobs      []string   `json:"jobs"`
	ExpiresAt *time.Time `json:"expiresAt"`
	CreatedAt time.Time  `json:"createdAt"`
	Prefix    string     `json:"prefix"`
}

func (g getter) table(coll string, raws []json.RawMessage) error {
	decode := func(r json.RawMessage, v any) error {
		if err := json.Unmarshal(r, v); err != nil {
			return failErr(codeUnavailable, "the API answered an unexpected %s: %v", coll, err)
		}
		return nil
	}
	var t *textTable
	for _, r := range raws {
		switch coll {
		case "jobs":
			if t == nil {
				t = newTable(g.out, "NAME", "ACTION", "ARGS", "TIMEOUT", "CONCURRENCY", "UPDATED")
			}
			var j resource.Job
			if err := decode(r, &j); err != nil {
				return err
			}
			t.row(j.Metadata.Name, truncateText(jobAction(j.Spec), 48), argNames(j.Spec.Args), j.Spec.Timeout.D().String(),
				strconv.Itoa(j.Spec.Concurrency), agoText(&j.Metadata.UpdatedAt, g.now))
		case "webhooks":
			if t == nil {
				t = newTable(g.out, "NAME", "JOB", "AUTH", "METHODS", "ENDPOINT", "LAST DELIVERY", "LAST ERROR")
			}
			var w resource.Webhook
			if err := decode(r, &w); err != nil {
				return err
			}
			ep := endpointURL(g.o, w)
			if w.Spec.Disabled {
				ep = "disabled (answers 404)"
			}
			t.row(w.Metadata.Name, w.Spec.Job, authSummary(w.Spec.Auth), strings.Join(w.Spec.Methods, ","),
				ep, agoText(w.Status.LastDeliveryAt, g.now), lastErrorText(w.Status, g.now, 48))
		case "secrets":
			if t == nil {
				t = newTable(g.out, "NAME", "VERSION", "ROTATED", "PREVIOUS VALID", "CREATED")
			}
			var s resource.Secret
			if err := decode(r, &s); err != nil {
				return err
			}
			prev := ""
			if s.Status.PreviousExpiresAt != nil {
				prev = untilText(s.Status.PreviousExpiresAt, g.now)
			}
			t.row(s.Metadata.Name, strconv.Itoa(s.Status.Version), agoText(s.Status.RotatedAt, g.now), prev, agoText(&s.Metadata.CreatedAt, g.now))
		case "keys":
			if t == nil {
				t = newTable(g.out, "ID", "NAME", "PREFIX", "NAMESPACE", "WEBHOOKS", "JOBS", "EXPIRES", "CREATED")
			}
			var k keyInfo
			if err := decode(r, &k); err != nil {
				return err
			}
			ns := k.Namespace
			if ns == "" {
				ns = "*"
			}
			t.row(k.ID, k.Name, k.Prefix, ns, scopeText(k.Webhooks), scopeText(k.Jobs), untilText(k.ExpiresAt, g.now), agoText(&k.CreatedAt, g.now))
		case "runs":
			if t == nil {
				t = newTable(g.out, "ID", "WEBHOOK", "JOB", "STATUS", "EXIT", "QUEUED", "DURATION", "ERROR")
			}
			var run message.Run
			if err := decode(r, &run); err != nil {
				return err
			}
			// Why a run was filtered, rejected or failed, on one line; the
			// whole error is in -o yaml and describe.
			t.row(run.ID, run.Webhook, run.Job, run.Status, exitText(run.ExitCode), agoText(run.QueuedAt, g.now), runDuration(run), truncateText(oneLine(run.Error), 60))
		}
	}
	t.flush()
	return nil
}

func jobAction(s resource.JobSpec) string {
	if s.HTTP != nil {
		if s.HTTP.URLSecretRef != "" {
			return "http: " + s.HTTP.Method + " (URL in secret " + s.HTTP.URLSecretRef + ")"
		}
		return "http: " + s.HTTP.Method + " " + s.HTTP.URL
	}
	return strings.Join(s.Command, " ")
}

func argNames(args []resource.Arg) string {
	names := make([]string, len(args))
	for i, a := range args {
		names[i] = a.Name
	}
	return strings.Join(names, ",")
}

// authSummary says how a webhook authenticates its senders.
func authSummary(a resource.Auth) string {
	switch {
	case a.APIKey != nil:
		return "apiKey (" + a.APIKey.In + " " + a.APIKey.Name + ")"
	case a.Signature != nil:
		return "signature (" + a.Signature.Profile + ")"
	}
	return "secret URL"
}

// endpointURL is where senders call a webhook, with the ingress URL's
// credentials masked (see redactedURL): they are this CLI's, not the
// senders'.
func endpointURL(o *clientOptions, w resource.Webhook) string {
	if w.Status.EndpointPath == "" {
		return ""
	}
	base, err := o.ingress()
	if err != nil {
		base = strings.TrimRight(o.ingressURL, "/")
	}
	return redactedURL(base) + w.Status.EndpointPath
}

// lastErrorText is a webhook's last error with its age, "… (4m ago)": the
// error stays in the status after the webhook works again, and without its
// age one long past reads as the webhook's state now. The error, not the
// age, is cut to n runes (0: not cut).
func lastErrorText(s resource.WebhookStatus, now time.Time, n int) string {
	e := s.LastError
	if e == "" {
		return ""
	}
	if n > 0 {
		e = truncateText(e, n)
	}
	if s.LastErrorAt != nil {
		e += " (" + agoText(s.LastErrorAt, now) + ")"
	}
	return e
}

func exitText(code *int) string {
	if code == nil {
		return ""
	}
	return strconv.Itoa(*code)
}

// runDuration is how long the run's attempt has run: up to now while it
// runs. A run queued for a retry keeps its failed attempt's startedAt (and
// tail) but is not running: no duration, rather than one that grows
// through the backoff.
func runDuration(r message.Run) string {
	if r.StartedAt == nil || r.Status == message.StatusQueued {
		return ""
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(*r.StartedAt).Round(time.Millisecond).String()
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/apikey"
)

func init() { clientCommands = append(clientCommands, newKeysCmd) }

// expirationFlags are Jac Cloud's {count, interval}.
type expirationFlags struct {
	count    int
	interval string
}

func (e *expirationFlags) add(cmd *cobra.Command, countHelp string) {
	cmd.Flags().IntVar(&e.count, "count", 0, countHelp)
	cmd.Flags().StringVar(&e.interval, "interval", "days", "unit of --count: seconds, minutes, hours or days")
}

func (e *expirationFlags) body() map[string]any {
	return map[string]any{"count": e.count, "interval": e.interval}
}

func newKeysCmd() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage API keys: create, list, extend, delete",
		Long: `API keys authenticate senders of webhooks that use API-key auth (Jac Cloud's
model). A key may be scoped to webhooks and jobs (none named: all) and to a
namespace (-n), and may expire. The key itself is shown only by create; the
API stores only its hash. Keys are named on the command line by id or by
name (when the name is unique); list, extend and delete see only the keys
valid in -n's namespace (its own and those valid in every namespace).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr("choose a subcommand: create, list, extend or delete (see %s --help)", cmd.CommandPath())
		},
	}
	addClientFlags(cmd, o)

	var webhooks, jobs []string
	var exp expirationFlags
	var out string
	var anyNamespace bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Generate a key; it is shown only now",
		Example: `  hookrun keys create ci --webhook deploy --count 30 --interval days
  KEY=$(hookrun keys create ci -o json | jq -r .key)`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			if exp.count < 0 {
				return usageErr("--count %d: must not be negative", exp.count)
			}
			// --interval alone would create a key that never expires,
			// which the command line seems to have asked against.
			if cmd.Flags().Changed("interval") && !cmd.Flags().Changed("count") {
				return usageErr("--interval %s: say how many with --count (a key without --count never expires)", exp.interval)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			body := map[string]any{"name": args[0], "webhooks": nonEmpty(webhooks), "jobs": nonEmpty(jobs)}
			if exp.count > 0 {
				body["expiration"] = exp.body()
			}
			q := c.nsQuery()
			if anyNamespace {
				body["namespace"] = "*"
			}
			resp, err := c.do(cmd.Context(), http.MethodPost, "/v1/keys", q, body)
			if err != nil {
				return err
			}
			var k struct {
				ID        string     `json:"id"`
				Name      string     `json:"name"`
				Key       string     `json:"key"`
				ExpiresAt *time.Time `json:"expiresAt"`
				Warnings  []string   `json:"warnings"`
			}
			if err := decodeAnswer(resp.Body, &k); err != nil {
				return err
			}
			for _, warning := range k.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning: key/"+k.Name+":", warning)
			}
			w := cmd.OutOrStdout()
			if out != outTable {
				return printRaw(w, out, resp.Body)
			}
			fmt.Fprintf(w, "key/%s created (name %s)\n", k.ID, k.Name)
			fmt.Fprintf(w, "  key (shown only now): %s\n", k.Key)
			fmt.Fprintf(w, "  expires: %s\n", expiryText(k.ExpiresAt))
			return nil
		},
	}
	create.Flags().StringArrayVar(&webhooks, "webhook", nil, "allow only this webhook (repeatable; none: all)")
	create.Flags().StringArrayVar(&jobs, "job", nil, "allow only webhooks of this job (repeatable; none: all)")
	create.Flags().BoolVar(&anyNamespace, "all-namespaces", false, "valid in every namespace (default: only -n's)")
	exp.add(create, "expire after this many --interval units (0: never)")
	addOutputFlag(create, &out, "output format")

	var listOut string
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never their secrets; the same as get keys)",
		Args:  usageArgs(noArgs("one key: hookrun get key NAME|ID")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(listOut); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			return getter{c: c, o: o, out: cmd.OutOrStdout(), format: listOut, now: time.Now()}.get(cmd.Context(), "keys", "", runFilter{})
		},
	}
	addOutputFlag(list, &listOut, "output format")

	var ext expirationFlags
	extend := &cobra.Command{
		Use:   "extend ID|NAME --count N [--interval days]",
		Short: "Push a key's expiry out (from now or its current expiry, whichever is later)",
		Long: `Push a key's expiry out by --count --interval units, from now or its
current expiry, whichever is later. A key that never expires is left as it
is (exit 4): it cannot be given an expiry, only replaced by one created with
--count.`,
		Example: `  hookrun keys extend ci --count 30 --interval days`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ext.count <= 0 {
				return usageErr("--count: say how far to extend (a positive number of --interval units)")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ids, err := resolveKeys(cmd.Context(), c, args)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodPatch, "/v1/keys/"+url.PathEscape(ids[0])+"/extend", c.nsQuery(), ext.body())
			if err != nil {
				return err
			}
			var k keyInfo
			if err := decodeAnswer(resp.Body, &k); err != nil {
				return err
			}
			if k.ExpiresAt == nil {
				// The API leaves such a key as it is and answers 200
				// (extending must not shorten a key's life): "extended",
				// exit 0, would have a script take it that the key now
				// expires. Refused (4), as an invalid request: the command
				// line is well formed, what it asks cannot be done to
				// this key.
				return failErr(codeRefused, "key/%s never expires, so there is nothing to extend (nothing changed); for a key that expires, create one with hookrun keys create NAME --count N [--interval seconds|minutes|hours|days]", k.ID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key/%s extended: expires %s\n", k.ID, expiryText(k.ExpiresAt))
			return nil
		},
	}
	ext.add(extend, "extend by this many --interval units")

	del := &cobra.Command{
		Use:   "delete ID|NAME...",
		Short: "Delete keys; they stop working at once",
		Long: `Delete one or more keys. Every key named must exist: when one does not, the
command deletes nothing and exits 3.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ids, err := resolveKeys(cmd.Context(), c, args)
			if err != nil {
				return err
			}
			var resp *apiResponse
			if len(ids) == 1 {
				resp, err = c.do(cmd.Context(), http.MethodDelete, "/v1/keys/"+url.PathEscape(ids[0]), c.nsQuery(), nil)
			} else {
				resp, err = c.do(cmd.Context(), http.MethodDelete, "/v1/keys", c.nsQuery(), map[string]any{"ids": ids})
			}
			if err != nil {
				return err
			}
			var d struct {
				Deleted int `json:"deleted"`
			}
			if err := decodeAnswer(resp.Body, &d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d %s\n", d.Deleted, plural(d.Deleted, "key", "keys"))
			return nil
		},
	}
	cmd.AddCommand(create, list, extend, del)
	return cmd
}

// keyRef is the id of a whole key given where its id or name is wanted
// (users pass the key they hold), and whether ref is one: the id names it,
// and the secret part is never sent nor printed. A ref that is a key's id
// or name as given is that key's first (a name may look like a key:
// "hk_ci_deploy"); the id read from a whole key matches ids only.
func keyRef(ref string) (string, bool) {
	if id, _, ok := apikey.Parse(ref); ok {
		return id, true
	}
	return ref, false
}

// resolveKeys turns ids or unique names into key ids; every one must exist.
func resolveKeys(ctx context.Context, c *apiClient, refs []string) ([]string, error) {
	raws, err := listKeys(ctx, c)
	if err != nil {
		return nil, err
	}
	byID := map[string]bool{}
	byName := map[string][]string{}
	for _, r := range raws {
		var k keyInfo
		if json.Unmarshal(r, &k) == nil {
			byID[k.ID] = true
			byName[k.Name] = append(byName[k.Name], k.ID)
		}
	}
	ids := make([]string, 0, len(refs))
	for _, ref := range refs {
		if id, whole := keyRef(ref); whole && !byID[ref] && len(byName[ref]) == 0 {
			if !byID[id] {
				return nil, failErr(codeNotFound, "API key %s not found", id)
			}
			ids = append(ids, id)
			continue
		}
		switch {
		case byID[ref]:
			ids = append(ids, ref)
		case len(byName[ref]) == 1:
			ids = append(ids, byName[ref][0])
		case len(byName[ref]) > 1:
			return nil, failErr(codeRefused, "%d keys are named %s: name one by id (hookrun get keys %s)", len(byName[ref]), ref, ref)
		default:
			return nil, failErr(codeNotFound, "API key %s not found", ref)
		}
	}
	return ids, nil
}

func nonEmpty(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func expiryText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339) + " (" + untilText(t, time.Now()) + ")"
}

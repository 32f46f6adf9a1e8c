package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newDeleteCmd, newRotateEndpointCmd) }

func newDeleteCmd() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "delete job|webhook|secret NAME...",
		Short: "Delete jobs, webhooks or secrets",
		Long: `Delete resources by name. Deleting a webhook stops its endpoint at once and
deletes the API key its creation generated; deleting a job or secret that a
webhook still uses makes that webhook's deliveries fail (500
job_not_runnable, with the reason in its status.lastError), and one a job or
a webhook's callback uses its runs or callbacks: the API says which, and
they are printed as warnings.`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			coll, ok := getKinds[strings.ToLower(args[0])]
			if !ok || coll == "keys" || coll == "runs" {
				return usageErr("cannot delete %q: choose job, webhook or secret (keys: hookrun keys delete)", args[0])
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			kind := strings.TrimSuffix(coll, "s")
			var first error
			for _, name := range args[1:] {
				resp, err := c.do(cmd.Context(), http.MethodDelete, "/v1/"+coll+"/"+url.PathEscape(name), c.nsQuery(), nil)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "hookrun: %s/%s: %s\n", kind, name, errMessage(err))
					if first == nil {
						first = err
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted\n", kind, name)
				var answer struct {
					Warnings []string `json:"warnings"`
				}
				_ = json.Unmarshal(resp.Body, &answer) // deleted all the same
				for _, w := range answer.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %s/%s: %s\n", kind, name, w)
				}
			}
			if first != nil {
				return &exitError{code: exitCode(first)}
			}
			return nil
		},
	}
	addClientFlags(cmd, o)
	return cmd
}

func newRotateEndpointCmd() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "rotate-endpoint WEBHOOK",
		Short: "Give a webhook a new endpoint URL; the old one stops working",
		Long: `Regenerate a webhook's endpoint id, as for a secret URL that leaked. The old
URL answers 404 as soon as the ingresses see the change (well under a
second). Update the sender with the new URL printed here.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodPost, "/v1/webhooks/"+url.PathEscape(args[0])+"/rotate-endpoint", c.nsQuery(), nil)
			if err != nil {
				return err
			}
			var w resource.Webhook
			if err := decodeAnswer(resp.Body, &w); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "webhook/%s endpoint rotated\n  endpoint: %s\n", w.Metadata.Name, endpointURL(o, w))
			return nil
		},
	}
	addClientFlags(cmd, o)
	return cmd
}

package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/resource"
)

func init() { clientCommands = append(clientCommands, newRotateSecretCmd) }

func newRotateSecretCmd() *cobra.Command {
	o := &clientOptions{}
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-secret SECRET",
		Short: "Give a secret a new random value; the previous one stays valid for a while",
		Long: `Replace a secret's value with a new random one (in the secret's format: hex,
or a signature profile's own, such as whsec_… for standard-webhooks), printed
here once: the API never shows it again. Configure it where the sender lets
you choose the secret (GitHub's or GitLab's webhook settings, your own
senders) or, for a callback secret, at the receiver.

Stripe, Slack and Shopify generate their signing secrets themselves: roll the
secret there, and apply the value they give as spec.value, not this.

The previous value stays valid for the secret's spec.previousValidFor
(default 24h), or for --previous-valid-for for this rotation only: after a
leak, --previous-valid-for 0s refuses it at once.

A secret applied from a manifest with spec.value gets that value back at the
next apply of the manifest: remove spec.value from it (or write the new
value there) after a rotation.`,
		Example: `  hookrun rotate-secret github-secret
  hookrun rotate-secret github-secret --previous-valid-for 0s   # leaked: the old value stops now`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any // none: the secret's own grace
			if cmd.Flags().Changed("previous-valid-for") {
				if grace < 0 {
					return usageErr("--previous-valid-for must not be negative")
				}
				body = map[string]string{"previousValidFor": grace.String()}
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodPost, "/v1/secrets/"+url.PathEscape(args[0])+"/rotate", c.nsQuery(), body)
			if err != nil {
				return err
			}
			var s struct {
				resource.Secret
				GeneratedValue string `json:"generatedValue"`
			}
			if err := decodeAnswer(resp.Body, &s); err != nil {
				return err
			}
			if s.GeneratedValue == "" {
				return failErr(codeUnavailable, "the API answered without the new value")
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "secret/%s rotated (version %d)\n", s.Metadata.Name, s.Status.Version)
			fmt.Fprintf(out, "  new value (shown only now): %s\n", s.GeneratedValue)
			if exp := s.Status.PreviousExpiresAt; exp != nil {
				fmt.Fprintf(out, "  previous value valid until: %s\n", exp.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "previous-valid-for", 0, "how long the previous value stays valid, for this rotation only (default: the secret's spec.previousValidFor, else 24h)")
	addClientFlags(cmd, o)
	return cmd
}

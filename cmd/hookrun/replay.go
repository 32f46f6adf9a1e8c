package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newReplayCmd) }

func newReplayCmd() *cobra.Command {
	o := &clientOptions{}
	var wait bool
	var timeout time.Duration
	var out string
	cmd := &cobra.Command{
		Use:   "replay DELIVERY",
		Short: "Deliver a stored delivery again, as a new run",
		Long: `Store a new delivery with the same body and headers as DELIVERY (its id, as
send and the ingress answer it: dlv_…), marked as its replay. A replay
bypasses deduplication, so it always becomes a new run. With --wait, follow
that run until it ends (exit 6 unless it succeeded).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), http.MethodPost, "/v1/deliveries/"+url.PathEscape(args[0])+"/replay", c.nsQuery(), nil)
			if err != nil {
				return c.inNamespace(err)
			}
			var a struct {
				ReplayOf    string `json:"replayOf"`
				DeliveryID  string `json:"deliveryId"`
				ExecutionID string `json:"executionId"`
				Status      string `json:"status"`
			}
			if err := decodeAnswer(resp.Body, &a); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != outTable {
				if err := printRaw(w, out, resp.Body); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "replayed %s as delivery %s, run %s (%s)\n", a.ReplayOf, a.DeliveryID, a.ExecutionID, a.Status)
			}
			if !wait {
				return nil
			}
			return followAccepted(cmd.Context(), c, a.DeliveryID, a.ExecutionID, a.DeliveryID, timeout, progressOut(out, w, cmd.ErrOrStderr()))
		},
	}
	addClientFlags(cmd, o)
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the new run until it ends (its progress goes to stderr with -o json|yaml); exit 6 unless it succeeded")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "with --wait, give up after this long (0: never)")
	addOutputFlag(cmd, &out, "format of the answer")
	return cmd
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

func init() { clientCommands = append(clientCommands, newDescribeCmd) }

func newDescribeCmd() *cobra.Command {
	o := &clientOptions{}
	var recent int
	cmd := &cobra.Command{
		Use:   "describe webhook NAME",
		Short: "Show a webhook in full: spec, endpoint URL, status and recent runs",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if k := strings.ToLower(args[0]); k != "webhook" && k != "webhooks" {
				return usageErr("cannot describe %q: only webhook", args[0])
			}
			if recent < 1 || recent > 1000 {
				return usageErr("--runs %d: must be from 1 to 1000", recent)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			return describeWebhook(cmd.Context(), c, o, args[1], recent, cmd.OutOrStdout())
		},
	}
	addClientFlags(cmd, o)
	cmd.Flags().IntVar(&recent, "runs", 5, "how many recent runs to show")
	return cmd
}

func describeWebhook(ctx context.Context, c *apiClient, o *clientOptions, name string, recent int, out io.Writer) error {
	var w resource.Webhook
	if err := c.getJSON(ctx, "/v1/webhooks/"+url.PathEscape(name), c.nsQuery(), &w); err != nil {
		return err
	}
	var runs struct {
		Runs []message.Run `json:"runs"`
	}
	q := url.Values{"namespace": {c.ns}, "webhook": {name}, "limit": {strconv.Itoa(recent)}}
	if err := c.getJSON(ctx, "/v1/runs", q, &runs); err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	field := func(k, v string) {
		if v == "" {
			v = "<none>"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, v)
	}
	s := w.Spec
	field("Name", w.Metadata.Name)
	field("Namespace", w.Metadata.Namespace)
	field("Job", s.Job)
	field("Methods", strings.Join(s.Methods, ", "))
	field("Auth", authDetail(s.Auth))
	field("Endpoint", endpointURL(o, w))
	field("Dedup window", dedupWindow(s))
	if s.IdempotencyHeader != "" {
		field("Event id header", s.IdempotencyHeader)
	}
	field("Filter", s.Filter)
	field("Max body", strconv.FormatInt(s.MaxBodyBytes, 10)+" bytes")
	if s.RateLimit != nil {
		field("Rate limit", fmt.Sprintf("%g/s, burst %d", s.RateLimit.PerSecond, s.RateLimit.Burst))
	}
	field("Response", strconv.Itoa(w.SuccessStatus()))
	if s.Callback != nil {
		cb := s.Callback.URL
		if s.Callback.URLSecretRef != "" {
			cb = "the URL in secret " + s.Callback.URLSecretRef
		}
		if s.Callback.SecretRef != "" {
			cb += " (signed with secret " + s.Callback.SecretRef + ")"
		}
		field("Callback", cb)
	}
	if s.Disabled {
		field("Disabled", "yes: the endpoint answers 404")
	}
	last := ""
	if w.Status.LastDeliveryAt != nil {
		last = w.Status.LastDeliveryAt.Format(time.RFC3339) + " (" + agoText(w.Status.LastDeliveryAt, now) + ")"
	}
	field("Last delivery", last)
	field("Last error", lastErrorText(w.Status, now, 0))
	field("Created", w.Metadata.CreatedAt.Format(time.RFC3339))
	_ = tw.Flush()
	fmt.Fprintln(out, "Recent runs:")
	if len(runs.Runs) == 0 {
		fmt.Fprintln(out, "  <none>")
		return nil
	}
	var buf bytes.Buffer
	t := newTable(&buf, "ID", "STATUS", "EXIT", "EVENT", "QUEUED", "DURATION")
	for _, r := range runs.Runs {
		t.row(r.ID, r.Status, exitText(r.ExitCode), truncateText(r.WebhookEventID, 32), agoText(r.QueuedAt, now), runDuration(r))
	}
	t.flush()
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line != "" {
			fmt.Fprint(out, "  "+line)
		}
	}
	return nil
}

func authDetail(a resource.Auth) string {
	switch {
	case a.APIKey != nil:
		return fmt.Sprintf("API key in %s %q", a.APIKey.In, a.APIKey.Name)
	case a.Signature != nil:
		d := "signature, profile " + a.Signature.Profile + ", secret " + a.Signature.SecretRef
		if a.Signature.Tolerance > 0 {
			d += ", tolerance " + a.Signature.Tolerance.D().String()
		}
		return d
	}
	return "none: the endpoint URL is the credential"
}

func dedupWindow(s resource.WebhookSpec) string {
	if s.DedupWindow > 0 {
		return s.DedupWindow.D().String()
	}
	if s.Auth.Signature != nil {
		if p, ok := signature.Lookup(s.Auth.Signature.Profile); ok {
			return p.DefaultWindow().String() + " (" + p.Name() + " default)"
		}
	}
	return "service default"
}

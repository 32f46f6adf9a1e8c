package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newReplayCmd) }

func newReplayCmd() *cobra.Command {
	o := &clientOptions{}
	var wait bool
	var timeout time.Duration
	var out string
	var fo failedReplay
	cmd := &cobra.Command{
		Use:   "replay DELIVERY | replay --failed [--webhook W] [--job J] [--since D]",
		Short: "Deliver a stored delivery again, as a new run",
		Long: `Store a new delivery with the same body and headers as DELIVERY (its id, as
send and the ingress answer it: dlv_…), marked as its replay. A replay
bypasses deduplication, so it always becomes a new run. With --wait, follow
that run until it ends (exit 6 unless it succeeded).

With --failed, replay the deliveries of the runs that failed or timed out,
queued within --since (default 24h), of the namespace, a webhook (--webhook)
or a job (--job): once per event (the newest of its failed runs), oldest
first, as a sender's failed messages are recovered after a fix. Run it once
the cause is fixed: a run that failed again is replayed again by the next
--failed, and so is a failed run whose event a replay since ran well (check
with --dry-run, which lists what would be replayed). More than --max replays
(default 100) are refused: narrow --since or the webhook, or raise --max.
Exit 1 when some replays were refused (each is listed), 5 when the API did
not answer.`,
		Example: `  hookrun replay dlv_3x7…
  hookrun replay --failed --webhook report-github-push --since 2h --dry-run
  hookrun replay --failed --webhook report-github-push --since 2h`,
		Args: func(cmd *cobra.Command, args []string) error {
			if fo.on {
				return usageArgs(cobra.NoArgs)(cmd, args)
			}
			return usageArgs(cobra.ExactArgs(1))(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			if !fo.on && (fo.webhook != "" || fo.job != "" || fo.dryRun || cmd.Flags().Changed("since") || cmd.Flags().Changed("max")) {
				return usageErr("--webhook, --job, --since, --max and --dry-run go with --failed")
			}
			if fo.on && wait {
				return usageErr("--wait follows one replay: with --failed, follow the new runs with hookrun runs watch")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if fo.on {
				return fo.run(cmd.Context(), c, w, out)
			}
			a, body, err := replayDelivery(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if out != outTable {
				if err := printRaw(w, out, body); err != nil {
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
	cmd.Flags().BoolVar(&fo.on, "failed", false, "replay the deliveries of runs that failed or timed out (see --since, --webhook, --job)")
	cmd.Flags().StringVar(&fo.webhook, "webhook", "", "with --failed: only runs of this webhook")
	cmd.Flags().StringVar(&fo.job, "job", "", "with --failed: only runs of this job")
	cmd.Flags().DurationVar(&fo.since, "since", 24*time.Hour, "with --failed: runs queued within this long")
	cmd.Flags().IntVar(&fo.max, "max", 100, "with --failed: refuse to replay more than this many deliveries")
	cmd.Flags().BoolVar(&fo.dryRun, "dry-run", false, "with --failed: list what would be replayed, replay nothing")
	addOutputFlag(cmd, &out, "format of the answer")
	return cmd
}

// replayAnswer is the API's answer to a replay.
type replayAnswer struct {
	ReplayOf    string `json:"replayOf"`
	DeliveryID  string `json:"deliveryId"`
	ExecutionID string `json:"executionId"`
	Status      string `json:"status"`
}

// replayDelivery replays one delivery, returning the answer decoded and as
// it came.
func replayDelivery(ctx context.Context, c *apiClient, delivery string) (replayAnswer, []byte, error) {
	var a replayAnswer
	resp, err := c.do(ctx, http.MethodPost, "/v1/deliveries/"+url.PathEscape(delivery)+"/replay", c.nsQuery(), nil)
	if err != nil {
		return a, nil, c.inNamespace(err)
	}
	if err := decodeAnswer(resp.Body, &a); err != nil {
		return a, nil, err
	}
	return a, resp.Body, nil
}

// failedReplay is replay --failed.
type failedReplay struct {
	on           bool
	webhook, job string
	since        time.Duration
	max          int
	dryRun       bool
}

// failedRun is what replay --failed reads of a run.
type failedRun struct {
	ID             string     `json:"id"`
	Webhook        string     `json:"webhook"`
	Job            string     `json:"job"`
	DeliveryID     string     `json:"deliveryId"`
	Status         string     `json:"status"`
	QueuedAt       *time.Time `json:"queuedAt"`
	WebhookEventID string     `json:"webhook_event_id"`
}

// replayedRun is a line of replay --failed's report.
type replayedRun struct {
	Run         string `json:"run"`
	Webhook     string `json:"webhook"`
	EventID     string `json:"eventId"`
	Status      string `json:"status"`
	DeliveryID  string `json:"deliveryId"`
	Replay      string `json:"replayDeliveryId,omitempty"`
	ExecutionID string `json:"replayExecutionId,omitempty"`
	Error       string `json:"error,omitempty"`
}

func (f *failedReplay) run(ctx context.Context, c *apiClient, w io.Writer, out string) error {
	if f.since <= 0 {
		return usageErr("--since %s: must be positive", f.since)
	}
	if f.max < 1 {
		return usageErr("--max %d: must be at least 1", f.max)
	}
	runs, err := f.candidates(ctx, c, time.Now().Add(-f.since))
	if err != nil {
		return err
	}
	if len(runs) > f.max {
		return usageErr("%d failed events to replay, more than --max %d: narrow --since, --webhook or --job, or raise --max", len(runs), f.max)
	}
	report := make([]replayedRun, 0, len(runs))
	var refused []error
	for _, r := range runs {
		line := replayedRun{Run: r.ID, Webhook: r.Webhook, EventID: r.WebhookEventID, Status: r.Status, DeliveryID: r.DeliveryID}
		if !f.dryRun {
			a, _, err := replayDelivery(ctx, c, r.DeliveryID)
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) && ee.code == codeUnavailable {
					// The API is away: the rest would fail alike.
					return err
				}
				line.Error = err.Error()
				refused = append(refused, err)
			} else {
				line.Replay, line.ExecutionID = a.DeliveryID, a.ExecutionID
			}
		}
		report = append(report, line)
	}
	if out != outTable {
		b, err := json.Marshal(report)
		if err != nil {
			return err
		}
		if err := printRaw(w, out, b); err != nil {
			return err
		}
	} else {
		t := newTable(w, "RUN", "WEBHOOK", "EVENT", "STATUS", "DELIVERY", "REPLAY", "NEW RUN", "ERROR")
		for _, l := range report {
			t.row(l.Run, l.Webhook, l.EventID, l.Status, l.DeliveryID, l.Replay, l.ExecutionID, l.Error)
		}
		t.flush()
		switch {
		case f.dryRun:
			fmt.Fprintf(w, "would replay %d deliveries (--dry-run: none replayed)\n", len(report))
		default:
			fmt.Fprintf(w, "replayed %d of %d deliveries\n", len(report)-len(refused), len(report))
		}
	}
	if len(refused) > 0 {
		return failErr(codeError, "%d of %d replays were refused (listed above)", len(refused), len(report))
	}
	return nil
}

// candidates lists the runs to replay: failed or timed out, queued after
// since, one per event (its newest failed run), oldest first.
func (f *failedReplay) candidates(ctx context.Context, c *apiClient, since time.Time) ([]failedRun, error) {
	newest := map[string]failedRun{} // by webhook and event
	for _, status := range []string{"failed", "timed_out"} {
		q := runFilter{webhook: f.webhook, job: f.job, status: status, limit: 1000}.query(c.ns)
		for done := false; !done; {
			var page struct {
				Runs []failedRun `json:"runs"`
				Next string      `json:"next"`
			}
			if err := c.getJSON(ctx, "/v1/runs", q, &page); err != nil {
				return nil, err
			}
			for _, r := range page.Runs {
				// Pages come newest first by queue time: the first run
				// queued before since ends the list.
				if r.QueuedAt == nil || r.QueuedAt.Before(since) {
					done = true
					break
				}
				if r.DeliveryID == "" {
					continue
				}
				key := r.Webhook + "\x00" + cmp.Or(r.WebhookEventID, r.ID)
				if had, ok := newest[key]; !ok || had.QueuedAt.Before(*r.QueuedAt) {
					newest[key] = r
				}
			}
			if page.Next == "" || len(page.Runs) == 0 {
				done = true
			}
			q.Set("cursor", page.Next)
		}
	}
	runs := make([]failedRun, 0, len(newest))
	for _, r := range newest {
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b failedRun) int {
		return cmp.Or(a.QueuedAt.Compare(*b.QueuedAt), strings.Compare(a.ID, b.ID))
	})
	return runs, nil
}

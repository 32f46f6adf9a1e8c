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
		Use:   "replay DELIVERY | --failed [--webhook W] [--job J] [--since D]",
		Short: "Deliver a stored delivery again, as a new run",
		Long: `Store a new delivery with the same body and headers as DELIVERY (its id, as
send and the ingress answer it: dlv_…), marked as its replay. A replay
bypasses deduplication, so it always becomes a new run. With --wait, follow
that run until it ends (exit 6 unless it succeeded).

With --failed, replay, after a fix, the events whose newest run failed,
timed out or was rejected (its webhook disabled, its job missing: the
dispatcher's error names the fix), of the runs queued within --since (default 24h) of the namespace,
a webhook (--webhook) or a job (--job): each event's newest run's delivery,
oldest first, as a sender's failed messages are recovered. An event whose
replay has run well, or is queued or running, is left alone, so running it
again replays only what failed since. Runs are taken by when they were queued
(a run whose retries went on for long counts from its first queueing).
--dry-run lists what would be replayed. More than --max replays (default 100)
are refused (exit 2): narrow --since or the webhook, or raise --max. Exit 1
when some replays were refused (each is listed), 5 when the API did not
answer (what was replayed until then is listed).`,
		Example: `  hookrun replay dlv_3x7…
  hookrun replay --failed --webhook report-github-push --since 2h --dry-run
  hookrun replay --failed --webhook report-github-push --since 2h`,
		Args: func(cmd *cobra.Command, args []string) error {
			if fo.on {
				return usageArgs(noArgs("--failed finds the deliveries itself; one delivery: hookrun replay DELIVERY, without --failed"))(cmd, args)
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
			if fo.on && (wait || cmd.Flags().Changed("timeout")) {
				return usageErr("--wait and --timeout follow one replay: with --failed, follow the new runs with hookrun runs watch")
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
	cmd.Flags().BoolVar(&fo.on, "failed", false, "replay the deliveries of runs that failed, timed out or were rejected (see --since, --webhook, --job)")
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
	if err != nil && exitCode(err) == codeNotFound && strings.HasPrefix(delivery, "run_") {
		// A run id is the likeliest mix-up: runs are what lists show.
		return a, nil, withSuffix(c.inNamespace(err), "; replay takes a delivery id (dlv_…): hookrun get run "+delivery+" -o yaml shows the run's deliveryId")
	}
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
	ReceivedAt     time.Time  `json:"webhook_received_at"`
}

// at is when r was queued, or its delivery came for a record never queued
// (what the run list is ordered by).
func (r failedRun) at() time.Time {
	if r.QueuedAt != nil {
		return *r.QueuedAt
	}
	return r.ReceivedAt
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
	if len(runs) > f.max && !f.dryRun {
		return usageErr("%d failed events to replay, more than --max %d: narrow --since, --webhook or --job, or raise --max (--dry-run lists them)", len(runs), f.max)
	}
	report := make([]replayedRun, 0, len(runs))
	var refused []error
	var away error // the API stopped answering: the rest is not replayed
	for _, r := range runs {
		line := replayedRun{Run: r.ID, Webhook: r.Webhook, EventID: r.WebhookEventID, Status: r.Status, DeliveryID: r.DeliveryID}
		switch {
		case f.dryRun:
		case away != nil:
			line.Error = "not replayed: the API stopped answering"
		default:
			a, _, err := replayDelivery(ctx, c, r.DeliveryID)
			var ee *exitError
			switch {
			case err == nil:
				line.Replay, line.ExecutionID = a.DeliveryID, a.ExecutionID
			case errors.As(err, &ee) && ee.code == codeUnavailable:
				// The rest would fail alike; this one may have been
				// stored before the answer was lost.
				away = err
				line.Error = "unknown (it may have been replayed): " + err.Error()
			default:
				line.Error = err.Error()
				refused = append(refused, err)
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
		case f.dryRun && len(report) > f.max:
			fmt.Fprintf(w, "would replay %d deliveries, more than --max %d (--dry-run: none replayed)\n", len(report), f.max)
		case f.dryRun:
			fmt.Fprintf(w, "would replay %d %s (--dry-run: none replayed)\n", len(report), plural(len(report), "delivery", "deliveries"))
		default:
			done := 0
			for _, l := range report {
				if l.Replay != "" {
					done++
				}
			}
			fmt.Fprintf(w, "replayed %d of %d %s\n", done, len(report), plural(len(report), "delivery", "deliveries"))
		}
	}
	switch {
	case away != nil:
		return failErr(codeUnavailable, "the API stopped answering during the replays (listed above): %s; run replay --failed again once it answers", strings.TrimPrefix(away.Error(), "hookrun: "))
	case len(refused) > 0:
		return failErr(codeError, "%d of %d %s %s refused (listed above)", len(refused), len(report), plural(len(report), "replay", "replays"), plural(len(refused), "was", "were"))
	}
	return nil
}

// replayable reports whether a run that ended with status should be
// replayed by replay --failed.
func replayable(status string) bool {
	return status == "failed" || status == "timed_out" || status == "rejected"
}

// maxRunsScanned bounds the runs replay --failed reads.
const maxRunsScanned = 200_000

// candidates lists the runs to replay: of the events whose newest run,
// queued after since, failed, timed out or was rejected, that run; oldest
// first. A rejected run's delivery waited for a fix as a failed one does
// (the dispatcher's error says to replay it once its webhook is enabled
// or its job is there); the API refuses the replay of one whose webhook is
// still disabled or gone, and says why. An
// event whose replay has run well since, or is still queued or running,
// is not one.
func (f *failedReplay) candidates(ctx context.Context, c *apiClient, since time.Time) ([]failedRun, error) {
	newest := map[string]failedRun{} // by webhook and event
	q := runFilter{webhook: f.webhook, job: f.job, limit: 1000}.query(c.ns)
	scanned := 0
	for done := false; !done; {
		var page struct {
			Runs []failedRun `json:"runs"`
			Next string      `json:"next"`
		}
		if err := c.getJSON(ctx, "/v1/runs", q, &page); err != nil {
			return nil, err
		}
		for _, r := range page.Runs {
			// Pages come newest first by queue time (the delivery's
			// arrival for a record never queued): the first run queued
			// before since ends the list.
			at := r.at()
			if at.Before(since) {
				done = true
				break
			}
			key := r.Webhook + "\x00" + cmp.Or(r.WebhookEventID, r.ID)
			if had, ok := newest[key]; !ok || had.at().Before(at) {
				newest[key] = r
			}
		}
		if scanned += len(page.Runs); scanned > maxRunsScanned && !done {
			return nil, usageErr("more than %d runs since %s: narrow --since, --webhook or --job", maxRunsScanned, since.UTC().Format(time.RFC3339))
		}
		if page.Next == "" || len(page.Runs) == 0 {
			done = true
		}
		q.Set("cursor", page.Next)
	}
	var runs []failedRun
	for _, r := range newest {
		if replayable(r.Status) && r.DeliveryID != "" {
			runs = append(runs, r)
		}
	}
	slices.SortFunc(runs, func(a, b failedRun) int {
		return cmp.Or(a.at().Compare(b.at()), strings.Compare(a.ID, b.ID))
	})
	return runs, nil
}

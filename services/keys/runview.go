package keys

import (
	"time"

	"github.com/hookrun/hookrun/pkg/message"
)

// runView is a run as the API shows it: every field API.md lists for
// GET /v1/runs/{id} is present, null or empty when the run has no value yet
// (a queued run's exitCode, startedAt, output…), rather than left out as in
// the stored status events. Its fields shadow the embedded record's.
type runView struct {
	*message.Run
	Job            string     `json:"job"`
	Attempt        int        `json:"attempt"`
	ExitCode       *int       `json:"exitCode"`
	QueuedAt       *time.Time `json:"queuedAt"`
	StartedAt      *time.Time `json:"startedAt"`
	FinishedAt     *time.Time `json:"finishedAt"`
	Output         string     `json:"output"`
	Error          string     `json:"error"`
	WebhookPayload string     `json:"webhook_payload"`
	WebhookEventID string     `json:"webhook_event_id"`
	WebhookSource  string     `json:"webhook_source"`

	// The executors' bookkeeping, not the run's: left empty here, these
	// less nested fields keep the record's own out of the JSON.
	Copy        int    `json:"copy,omitempty"`
	RequestSeq  uint64 `json:"requestSeq,omitempty"`
	OutputLines int    `json:"outputLines,omitempty"`
}

func viewOfRun(r *message.Run) runView {
	return runView{Run: r, Job: r.Job, Attempt: r.Attempt, ExitCode: r.ExitCode, QueuedAt: r.QueuedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Output: r.Output, Error: r.Error,
		WebhookPayload: r.WebhookPayload, WebhookEventID: r.WebhookEventID, WebhookSource: r.WebhookSource}
}

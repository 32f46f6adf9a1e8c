package executor

import (
	"strings"

	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/webhookstatus"
)

// noteStartFailure records why a run's job could not start (its command,
// its working directory or input files, a secret it needs, its HTTP
// request) as the lastError of the webhook the run came from. The sender
// was answered 202 long before; a run that can never start would
// otherwise only fail, and the webhook look healthy where the operator
// looks first (GET /v1/webhooks/{name}, `hookrun describe webhook`).
// Ordinary failures (an exit code, a timeout, an HTTP error answer) are
// the job's own and stay in the run's status only.
//
// It never blocks the run: the note is merged into the webhook's one
// waiting and written by writeStatuses (webhookstatus.Notes), or dropped.
// A run of a webhook deleted, or deleted and made again under its name,
// notes nothing: the webhook's uid is the one its run id was derived from
// (cameFrom), and it is checked again before the write.
func (x *Executor) noteStartFailure(rr *message.RunRequest, why string) {
	w, ok := x.cat.Webhook(rr.Namespace, rr.Webhook)
	if !ok || !cameFrom(w, rr) {
		return
	}
	if !strings.HasPrefix(why, "cannot start") {
		why = "cannot start: " + why
	}
	// run.err holds no secret value (secretValue's errors name the
	// secret, request errors are masked): nor does this.
	x.notes.Add(webhookstatus.Note{Namespace: rr.Namespace, Name: rr.Webhook, UID: w.Metadata.UID, Error: "job " + rr.Job + ": " + why}, x.log)
}

// cameFrom tells whether run request rr is a run of webhook w, not of an
// earlier webhook of the same name: the ingress (keys, for a replay, from
// the replay's delivery id) derives the run id from the webhook's uid
// (ident.RunID), which a run request does not carry itself.
func cameFrom(w *resource.Webhook, rr *message.RunRequest) bool {
	if rr.ID == ident.RunID(w.Metadata.UID, rr.EventID, "") {
		return true
	}
	return rr.Replay && rr.ID == ident.RunID(w.Metadata.UID, rr.EventID, rr.DeliveryID)
}

package executor

import (
	"context"
	"strings"
	"time"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/catalog"
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
// A webhook not in this executor's catalog yet is read from its bucket's
// leader. A run of a webhook deleted, or deleted and made again under its
// name, notes nothing: the webhook's uid is the one its run id was derived from
// (cameFrom), and it is checked again before the write.
func (x *Executor) noteStartFailure(rr *message.RunRequest, why string) {
	if rr.Webhook == "" {
		return
	}
	if !strings.HasPrefix(why, "cannot start") {
		why = "cannot start: " + why
	}
	// run.err holds no secret value (secretValue's errors name the
	// secret, request errors are masked): nor does this.
	note := webhookstatus.Note{Namespace: rr.Namespace, Name: rr.Webhook, Error: "job " + rr.Job + ": " + why}
	if w, ok := x.cat.Webhook(rr.Namespace, rr.Webhook); ok && !x.catalogMisses {
		if cameFrom(w, rr) {
			note.UID = w.Metadata.UID
			x.notes.Add(note, x.log)
		}
		return
	}
	// A webhook made a moment ago may not be in this executor's catalog
	// yet (its first delivery's run can fail to start before the watch
	// brings it): its record is read from the bucket's leader, off the
	// run's path.
	from := *rr
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var w resource.Webhook
		found, readable, err := catalog.ReadLeader(ctx, x.js.Conn(), bus.BucketWebhooks, bus.ConfigKey(from.Namespace, from.Webhook), &w)
		if err != nil || !found || !readable || !cameFrom(&w, &from) {
			return
		}
		note.UID = w.Metadata.UID
		x.notes.Add(note, x.log)
	}()
}

// cameFrom tells whether run request rr is a run of webhook w, not of an
// earlier webhook of the same name: the ingress (keys, for a replay, from
// the replay's delivery id) derives the run id from the webhook's uid
// (ident.RunID), which a run request does not carry itself.
func cameFrom(w *resource.Webhook, rr *message.RunRequest) bool {
	return isRunOf(w, rr.ID, rr.EventID, rr.Replay, rr.DeliveryID)
}

// isRunOf tells whether run id, of event (a replay: of its own delivery),
// is one of webhook w's: its id derived from w's uid.
func isRunOf(w *resource.Webhook, id, event string, replay bool, delivery string) bool {
	return id == ident.RunID(w.Metadata.UID, event, "") ||
		(replay && id == ident.RunID(w.Metadata.UID, event, delivery))
}

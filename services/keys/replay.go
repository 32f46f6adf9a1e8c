package keys

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
)

// replayDelivery stores a new delivery with the same body and headers as
// an old one, marked as its replay. The dispatcher lets replays past dedup
// on purpose, and the run id includes the new delivery id, so a replay is
// always a new run.
func (s *Service) replayDelivery(c echo.Context) error {
	orig, err := s.loadDelivery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	w, _, found, err := s.webhooks.get(ctx, bus.ConfigKey(orig.Namespace, orig.Webhook))
	if err != nil {
		return err
	}
	if !found {
		return notFound("webhook " + orig.Namespace + "/" + orig.Webhook + " of this delivery")
	}
	if w.Spec.Disabled {
		// The ingress answers 404 for a disabled webhook: it triggers
		// nothing, and a replay must not trigger its job either.
		return &apiError{Status: http.StatusConflict, Code: "webhook_disabled", Message: "webhook " + orig.Namespace + "/" + orig.Webhook +
			" is disabled (spec.disabled): its deliveries cannot be replayed until it is enabled again"}
	}
	// As the ingress answers 500 job_not_runnable for a webhook whose job
	// is gone, rather than accept a delivery that can only be rejected.
	if _, _, found, err := s.jobs.get(ctx, bus.ConfigKey(orig.Namespace, w.Spec.Job)); err != nil {
		return err
	} else if !found {
		return &apiError{Status: http.StatusConflict, Code: "job_not_runnable", Message: "job " + orig.Namespace + "/" + w.Spec.Job + " of webhook " +
			orig.Webhook + " does not exist: put it (or point the webhook at another job) before replaying"}
	}
	d := *orig
	d.ID = ident.NewDeliveryID()
	d.ReplayOf = orig.ID
	d.ReceivedAt = s.now().UTC()
	d.RunID = ident.RunID(w.Metadata.UID, d.EventID, d.ID)
	d.Job = w.Spec.Job
	data, err := json.Marshal(&d)
	if err != nil {
		return err
	}
	m := nats.NewMsg(bus.DeliverySubject(d.Namespace, d.Webhook, d.ID))
	m.Data = data
	m.Header.Set(bus.HeaderSchema, message.SchemaDelivery)
	msgID := bus.DeliveryMsgID(d.Namespace, d.Webhook, d.RunID, d.ID, true)
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
	if err != nil {
		return errUnavailable
	}
	if ack.Duplicate {
		// The id is this replay's own: a "duplicate" can only repeat a
		// retried write of it, which must be there. A clustered JetStream
		// can answer so for a write lost with its leader; then nothing
		// holds the replay, and the caller is told to try again.
		if stored, found, err := bus.MsgIDAt(ctx, s.js.Conn(), ack.Stream, ack.Sequence); err != nil || !found || stored != msgID {
			s.log.Warn("replay answered as a duplicate of a message not held: answering 503", "delivery", d.ID, "replay_of", orig.ID, "err", err)
			return errUnavailable
		}
	}
	return c.JSON(http.StatusAccepted, map[string]any{
		"accepted": true, "replayOf": orig.ID, "deliveryId": d.ID, "eventId": d.EventID,
		"executionId": d.RunID, "status": message.StatusQueued,
	})
}

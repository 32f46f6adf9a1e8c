package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
)

// callbackBackoff is the redelivery schedule of a failing callback.
var callbackBackoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}

// deliverCallbacks POSTs final run statuses to webhooks' callback URLs from
// a durable consumer on STATUS, so callbacks survive restarts, are retried
// with backoff, and never hold up a run.
func (x *Executor) deliverCallbacks(ctx context.Context) error {
	var cons jetstream.Consumer
	for {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err = x.js.CreateOrUpdateConsumer(cctx, bus.StreamStatus, jetstream.ConsumerConfig{
			Durable:       bus.ConsumerCallbacks,
			Description:   "Signed callbacks of final run statuses",
			FilterSubject: bus.StatusAll,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       time.Minute,
			MaxDeliver:    len(callbackBackoff) + 1,
			BackOff:       nil,
			DeliverPolicy: jetstream.DeliverNewPolicy,
			MaxAckPending: 1000,
		})
		cancel()
		if err == nil {
			break
		}
		x.log.Warn("cannot create callbacks consumer, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { x.callback(ctx, m) }, jetstream.PullMaxMessages(64))
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Drain()
	return nil
}

func (x *Executor) callback(ctx context.Context, m jetstream.Msg) {
	if st := m.Headers().Get(bus.HeaderStatus); st != "" && !message.Final(st) {
		_ = m.Ack()
		return
	}
	var r message.Run
	if err := message.Decode(m.Data(), message.SchemaRun, &r); err != nil || r.Kind != message.KindRun || r.Callback == nil || !message.Final(r.Status) {
		_ = m.Ack()
		return
	}
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	if err := x.postCallback(ctx, &r); err != nil {
		if attempt > len(callbackBackoff) {
			mCallbacks.WithLabelValues("failed").Inc()
			x.log.Warn("callback given up", "run", r.ID, "attempts", attempt, "err", err)
			_ = m.Term()
			return
		}
		mCallbacks.WithLabelValues("retry").Inc()
		x.log.Info("callback failed; retrying", "run", r.ID, "attempt", attempt, "err", err)
		_ = m.NakWithDelay(callbackBackoff[attempt-1])
		return
	}
	mCallbacks.WithLabelValues("success").Inc()
	_ = m.Ack()
}

// CallbackBody is what a callback receiver gets: the run's final status.
type CallbackBody struct {
	Type string      `json:"type"`
	Run  message.Run `json:"run"`
}

func (x *Executor) postCallback(ctx context.Context, r *message.Run) error {
	cb := r.Callback
	r.Callback = nil
	body, err := json.Marshal(CallbackBody{Type: "run." + r.Status, Run: *r})
	if err != nil {
		return err
	}
	secret := ""
	if cb.SecretRef != "" {
		vals, err := x.cat.SecretValues(r.Namespace, cb.SecretRef, time.Now())
		if err != nil {
			return fmt.Errorf("callback secret: %w", err)
		}
		secret = vals[0]
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	Sign(req.Header, body, secret, r.ID+"."+r.Status, time.Now())
	resp, err := x.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("callback answered %d", resp.StatusCode)
	}
	return nil
}

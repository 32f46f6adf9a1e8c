package ingress

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// within is how fast a configuration change must reach the ingress.
const within = time.Second

// eventuallyAnswers polls send until it answers status (and code, for an
// error), failing after within.
func eventuallyAnswers(t *testing.T, send func() reply, status int, code string) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		r := send()
		if r.Status != status || r.Err.Code != code {
			return fmt.Errorf("answer %d %s, want %d %s", r.Status, r.Body, status, code)
		}
		return nil
	})
}

// TestConfig_ChangesApplyWithinASecond writes configuration into KV as the
// keys service does and expects the running ingress to follow within a
// second, without a restart: a new webhook, a rotated endpoint id, a
// disabled and re-enabled webhook, a deleted webhook, a deleted API key.
func TestConfig_ChangesApplyWithinASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	ctx := context.Background()

	t.Run("new webhook", func(t *testing.T) {
		w := e.cfg.Webhook(resource.Webhook{Metadata: resource.Meta{Name: "brand-new"}, Spec: resource.WebhookSpec{Job: "report"}})
		eventuallyAnswers(t, func() reply { return e.post(hookPath(w), "{}") }, 202, "")
	})
	t.Run("rotated endpoint", func(t *testing.T) {
		old := e.webhook("rotating", resource.WebhookSpec{})
		next := *old
		next.Status.EndpointID = ""
		rotated := e.cfg.Webhook(next)
		eventuallyAnswers(t, func() reply { return e.post(hookPath(rotated), "{}") }, 202, "")
		wantError(t, e.post(hookPath(old), "{}"), 404, "endpoint_not_found")
	})
	t.Run("disabled then enabled", func(t *testing.T) {
		w := e.webhook("toggled", resource.WebhookSpec{})
		off := *w
		off.Spec.Disabled = true
		e.cfg.Webhook(off)
		eventuallyAnswers(t, func() reply { return e.post(hookPath(w), "{}") }, 404, "endpoint_not_found")
		e.cfg.Webhook(*w)
		eventuallyAnswers(t, func() reply { return e.post(hookPath(w), "{}") }, 202, "")
	})
	t.Run("deleted webhook", func(t *testing.T) {
		w := e.webhook("doomed", resource.WebhookSpec{})
		kv, err := e.js.KeyValue(ctx, bus.BucketWebhooks)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, bus.ConfigKey("default", "doomed")); err != nil {
			t.Fatal(err)
		}
		eventuallyAnswers(t, func() reply { return e.post(hookPath(w), "{}") }, 404, "endpoint_not_found")
	})
	t.Run("deleted API key", func(t *testing.T) {
		w := e.webhook("keyed", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
		key := e.apiKey(nil, nil, nil)
		wantAccepted(t, e.post(hookPath(w), "{}", "X-API-KEY", key), 202)
		id, _, _ := apikey.Parse(key)
		kv, err := e.js.KeyValue(ctx, bus.BucketKeys)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		eventuallyAnswers(t, func() reply { return e.post(hookPath(w), "{}", "X-API-KEY", key) }, 401, "invalid_credentials")
	})
	t.Run("auth mode changed", func(t *testing.T) {
		w := e.webhook("mode-change", resource.WebhookSpec{})
		keyed := *w
		keyed.Spec.Auth = resource.Auth{APIKey: &resource.APIKeyAuth{}}
		e.cfg.Webhook(keyed)
		eventuallyAnswers(t, func() reply { return e.post(hookPath(w), "{}") }, 401, "missing_credentials")
	})
}

// TestConfig_ServedFromMemoryWhileNATSIsDown: endpoints and keys resolve
// from the in-memory copy, with no round trip per request — with NATS
// down, unknown endpoints are still 404 and wrong keys 401; only storing
// needs NATS.
func TestConfig_ServedFromMemoryWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.PublishTimeout = 300 * time.Millisecond })
	e.job("report")
	w := e.webhook("mem", resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}})
	key := e.apiKey(nil, nil, nil)
	e.stopNATS()
	wantError(t, e.post("/v1/hooks/ep_unknown", "{}"), 404, "endpoint_not_found")
	wantError(t, e.post(hookPath(w), "{}", "X-API-KEY", "hk_abc_def"), 401, "invalid_credentials")
	wantError(t, e.post(hookPath(w), "{}", "X-API-KEY", key), 503, "unavailable")
	e.startNATS()
}

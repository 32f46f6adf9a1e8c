package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultRetention is how long DELIVERIES and STATUS keep messages unless
// configured otherwise (HOOKRUN_RETENTION).
const DefaultRetention = 7 * 24 * time.Hour

// Options shape the streams and buckets Ensure creates.
type Options struct {
	// Replicas is the replica count of every stream and bucket (1, or 3 in a cluster).
	Replicas int
	// Retention is how long deliveries and status events are kept
	// (DefaultRetention when zero).
	Retention time.Duration
	// DuplicateWindow is the JetStream duplicate window of DELIVERIES and RUNS (default 2m).
	DuplicateWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 2 * time.Minute
	}
	return o
}

// StreamConfigs returns the configuration of Hookrun's four streams.
func StreamConfigs(o Options) []jetstream.StreamConfig {
	o = o.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        StreamDeliveries,
			Description: "Accepted webhook deliveries: audit log and replay source",
			Subjects:    []string{prefixDeliveries + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			MaxAge:      o.Retention,
			Duplicates:  o.DuplicateWindow,
			AllowDirect: true,
		},
		{
			Name:        StreamRuns,
			Description: "Resolved run requests, one durable consumer per job",
			Subjects:    []string{prefixRuns + ".>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
		},
		{
			Name:        StreamRetries,
			Description: "Failed runs' retries, scheduled until due, then moved to RUNS",
			Subjects:    []string{prefixRetries + ".>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			// Retries wait as scheduled messages, not as unacked ones
			// that would hold a slot of their job's concurrency.
			AllowMsgSchedules: true,
		},
		{
			Name:        StreamStatus,
			Description: "Status events of runs and deliveries; last per subject is current",
			Subjects:    []string{prefixStatus + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			MaxAge:      o.Retention,
			AllowDirect: true,
		},
	}
}

// BucketConfigs returns the configuration of Hookrun's KV buckets.
func BucketConfigs(o Options) []jetstream.KeyValueConfig {
	o = o.withDefaults()
	cfg := func(name, desc string) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{Bucket: name, Description: desc, Storage: jetstream.FileStorage, Replicas: o.Replicas, History: 1}
	}
	dedup := cfg(BucketDedup, "Dedup claims when no Redis is configured (per-key TTL)")
	dedup.LimitMarkerTTL = time.Minute
	// A mark waits for its run to be taken by an executor: as long as the
	// run's delivery may wait in DELIVERIES (a backlog), not a day.
	cancels := cfg(BucketCancels, "Cancel requests for queued runs")
	cancels.TTL = o.Retention
	// As long as STATUS keeps the status events whose callbacks they count.
	attempts := cfg(BucketCallbackAttempts, "Failed attempts of callbacks, by status event (written by the executors)")
	attempts.TTL = o.Retention
	return []jetstream.KeyValueConfig{
		cfg(BucketJobs, "Jobs (written by the keys service)"),
		cfg(BucketWebhooks, "Webhooks and their endpoint ids (written by the keys service)"),
		cfg(BucketKeys, "API keys, hashed (written by the keys service)"),
		cfg(BucketSecrets, "Signing secrets, encrypted (written by the keys service)"),
		cfg(BucketWebhookStatus, "Webhook runtime status: lastError, lastDeliveryAt"),
		dedup,
		cancels,
		attempts,
	}
}

// Ensure creates or updates every stream and bucket. It is idempotent and
// safe to call from every service at start-up. Existing streams and buckets
// are only updated when a setting Hookrun manages differs: several services
// starting together against a cluster must not race on needless updates
// (concurrent identical creates can stall on a clustered meta leader).
func Ensure(ctx context.Context, js jetstream.JetStream, o Options) error {
	for _, sc := range StreamConfigs(o) {
		if err := ensureStream(ctx, js, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range BucketConfigs(o) {
		if err := ensureBucket(ctx, js, kc); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*time.Second)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	cctx, cancel := opCtx(ctx)
	defer cancel()
	s, err := js.Stream(cctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(cctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another service created it first
		}
		return err
	}
	if err != nil {
		return err
	}
	cur := s.CachedInfo().Config
	if cur.Replicas == sc.Replicas && cur.MaxAge == sc.MaxAge && cur.Duplicates == sc.Duplicates && cur.AllowDirect == sc.AllowDirect &&
		(cur.AllowMsgSchedules || !sc.AllowMsgSchedules) {
		return nil
	}
	_, err = js.UpdateStream(cctx, sc)
	return err
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) error {
	cctx, cancel := opCtx(ctx)
	defer cancel()
	kv, err := js.KeyValue(cctx, kc.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(cctx, kc)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	st, err := kv.Status(cctx)
	if err != nil {
		return err
	}
	if st.TTL() == kc.TTL && st.History() == int64(kc.History) && st.LimitMarkerTTL() == kc.LimitMarkerTTL && replicas(st) == kc.Replicas {
		return nil
	}
	_, err = js.UpdateKeyValue(cctx, kc)
	return err
}

func replicas(st jetstream.KeyValueStatus) int {
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return s.StreamInfo().Config.Replicas
	}
	return 0
}

// EnsureRetry calls Ensure until it succeeds or ctx ends; services start
// before NATS is ready in compose and must not crash-loop.
func EnsureRetry(ctx context.Context, js jetstream.JetStream, o Options) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := Ensure(cctx, js, o)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

package testenv

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/apikey"
	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/secretbox"
)

// Config writes configuration straight into the KV buckets, as the keys
// service would, for tests of the other services.
type Config struct {
	t   testing.TB
	js  jetstream.JetStream
	Box *secretbox.Box
	// SecretKey is Box's key, base64, for services under test.
	SecretKey string
}

// NewConfig returns a Config writer with a fresh secret key.
func NewConfig(t testing.TB, js jetstream.JetStream) *Config {
	key := secretbox.NewKey()
	k, _ := secretbox.ParseKey(key)
	box, err := secretbox.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return &Config{t: t, js: js, Box: box, SecretKey: key}
}

func (c *Config) put(bucket, key string, v any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, bucket)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		c.t.Fatal(err)
	}
}

// Job validates and stores a job, filling apiVersion, kind and uid.
func (c *Config) Job(j resource.Job) *resource.Job {
	c.t.Helper()
	j.APIVersion, j.Kind = resource.APIVersion, resource.KindJob
	if err := j.Validate(); err != nil {
		c.t.Fatal(err)
	}
	if j.Metadata.UID == "" {
		j.Metadata.UID = ident.NewUID()
	}
	c.put(bus.BucketJobs, bus.ConfigKey(j.Metadata.Namespace, j.Metadata.Name), j)
	return &j
}

// Webhook validates and stores a webhook with a new endpoint id (unless set).
func (c *Config) Webhook(w resource.Webhook) *resource.Webhook {
	c.t.Helper()
	w.APIVersion, w.Kind = resource.APIVersion, resource.KindWebhook
	if err := w.Validate(); err != nil {
		c.t.Fatal(err)
	}
	return c.WebhookUnchecked(w)
}

// WebhookUnchecked stores a webhook as Webhook does, but unvalidated: a
// record keys no longer accepts, stored by an older release.
func (c *Config) WebhookUnchecked(w resource.Webhook) *resource.Webhook {
	c.t.Helper()
	w.APIVersion, w.Kind = resource.APIVersion, resource.KindWebhook
	if w.Metadata.UID == "" {
		w.Metadata.UID = ident.NewUID()
	}
	if w.Status.EndpointID == "" {
		w.Status.EndpointID = ident.NewEndpointID()
	}
	w.Status.EndpointPath = "/v1/hooks/" + w.Status.EndpointID
	c.put(bus.BucketWebhooks, bus.ConfigKey(w.Metadata.Namespace, w.Metadata.Name), w)
	return &w
}

// Secret stores a sealed secret; previous, when not empty, stays valid for grace.
func (c *Config) Secret(ns, name, value, previous string, grace time.Duration) {
	c.t.Helper()
	aad := []byte(bus.ConfigKey(ns, name))
	st := resource.StoredSecret{Secret: resource.Secret{
		TypeMeta: resource.TypeMeta{APIVersion: resource.APIVersion, Kind: resource.KindSecret},
		Metadata: resource.Meta{Name: name, Namespace: ns},
	}, Current: c.Box.Seal([]byte(value), aad)}
	if previous != "" {
		exp := time.Now().Add(grace)
		st.Previous, st.PreviousExpiresAt = c.Box.Seal([]byte(previous), aad), &exp
	}
	c.put(bus.BucketSecrets, bus.ConfigKey(ns, name), st)
}

// APIKey stores a new API key with the given scopes and expiry (nil: none)
// and returns the key as a sender presents it.
func (c *Config) APIKey(name string, webhooks, jobs []string, expiresAt *time.Time) (key string, stored *resource.APIKey) {
	c.t.Helper()
	return c.APIKeyIn("", name, webhooks, jobs, expiresAt)
}

// APIKeyIn is APIKey stored with namespace ns ("" as keys made before keys
// always recorded one, resource.AllNamespaces for every namespace).
func (c *Config) APIKeyIn(ns, name string, webhooks, jobs []string, expiresAt *time.Time) (key string, stored *resource.APIKey) {
	c.t.Helper()
	key, id, hash := apikey.New()
	k := &resource.APIKey{ID: id, Name: name, Namespace: ns, Webhooks: webhooks, Jobs: jobs, ExpiresAt: expiresAt, CreatedAt: time.Now().UTC(), Prefix: apikey.DisplayPrefix(id), Hash: hash}
	c.put(bus.BucketKeys, id, k)
	return key, k
}

// Eventually polls f every 20ms until it returns nil or total passes, then
// fails the test with f's last error (nats.go's checkFor).
func Eventually(t testing.TB, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %v", total, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

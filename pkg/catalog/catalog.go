// Package catalog keeps an in-memory copy of Hookrun's configuration —
// jobs, webhooks, API keys and secrets — current through NATS KV watches, so
// services resolve an endpoint or a job without a round trip per request.
// The keys service writes the buckets; everyone else reads through a Catalog.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/secretbox"
)

// Catalog is a read-only, watch-fed view of the configuration. It is safe
// for concurrent use; values it returns must not be modified.
type Catalog struct {
	js  jetstream.JetStream
	box *secretbox.Box
	log *slog.Logger

	mu         sync.RWMutex
	jobs       map[string]*resource.Job
	webhooks   map[string]*resource.Webhook
	byEndpoint map[string]*resource.Webhook
	keys       map[string]*resource.APIKey
	secrets    map[string]*resource.StoredSecret
	opened     map[string]openedSecret
	version    uint64
	listeners  []func()

	readyOnce sync.Once
	ready     chan struct{}
}

// New returns a Catalog; box may be nil for services that never read secrets.
func New(js jetstream.JetStream, box *secretbox.Box, log *slog.Logger) *Catalog {
	return &Catalog{
		js: js, box: box, log: log,
		jobs: map[string]*resource.Job{}, webhooks: map[string]*resource.Webhook{},
		byEndpoint: map[string]*resource.Webhook{}, keys: map[string]*resource.APIKey{},
		secrets: map[string]*resource.StoredSecret{}, opened: map[string]openedSecret{}, ready: make(chan struct{}),
	}
}

// OnChange registers f to be called (without locks held) after every change.
func (c *Catalog) OnChange(f func()) {
	c.mu.Lock()
	c.listeners = append(c.listeners, f)
	c.mu.Unlock()
}

// Ready is closed once the initial values of every bucket are loaded.
func (c *Catalog) Ready() <-chan struct{} { return c.ready }

// Version increases with every change; derived caches compare it.
func (c *Catalog) Version() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.version
}

// Run watches the buckets until ctx ends, re-establishing a watch that breaks.
func (c *Catalog) Run(ctx context.Context) error {
	buckets := []string{bus.BucketJobs, bus.BucketWebhooks, bus.BucketKeys, bus.BucketSecrets}
	var wg sync.WaitGroup
	loaded := make(chan struct{}, len(buckets))
	for _, b := range buckets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.watchLoop(ctx, b, loaded)
		}()
	}
	go func() {
		for range buckets {
			select {
			case <-loaded:
			case <-ctx.Done():
				return
			}
		}
		c.readyOnce.Do(func() { close(c.ready) })
	}()
	wg.Wait()
	return ctx.Err()
}

func (c *Catalog) watchLoop(ctx context.Context, bucket string, loaded chan<- struct{}) {
	first := true
	for ctx.Err() == nil {
		err := c.watch(ctx, bucket, func() {
			if first {
				first = false
				loaded <- struct{}{}
			}
		})
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("config watch ended, retrying", "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (c *Catalog) watch(ctx context.Context, bucket string, onLoaded func()) error {
	kv, err := c.js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", bucket, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil {
				onLoaded()
				continue
			}
			c.apply(bucket, e)
		}
	}
}

func (c *Catalog) apply(bucket string, e jetstream.KeyValueEntry) {
	del := e.Operation() != jetstream.KeyValuePut
	key := e.Key()
	c.mu.Lock()
	var err error
	switch bucket {
	case bus.BucketJobs:
		err = put(c.jobs, key, e.Value(), del)
	case bus.BucketKeys:
		err = put(c.keys, key, e.Value(), del)
	case bus.BucketSecrets:
		err = put(c.secrets, key, e.Value(), del)
		delete(c.opened, key)
	case bus.BucketWebhooks:
		if old, ok := c.webhooks[key]; ok {
			delete(c.byEndpoint, old.Status.EndpointID)
		}
		err = put(c.webhooks, key, e.Value(), del)
		if w, ok := c.webhooks[key]; ok && !del && w.Status.EndpointID != "" {
			c.byEndpoint[w.Status.EndpointID] = w
		}
	}
	c.version++
	listeners := append([]func(){}, c.listeners...)
	c.mu.Unlock()
	if err != nil {
		c.log.Error("bad config entry ignored", "bucket", bucket, "key", key, "err", err)
	}
	for _, f := range listeners {
		f()
	}
}

func put[T any](m map[string]*T, key string, val []byte, del bool) error {
	if del {
		delete(m, key)
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(val, v); err != nil {
		delete(m, key)
		return err
	}
	m[key] = v
	return nil
}

// Job returns a job by namespace and name.
func (c *Catalog) Job(ns, name string) (*resource.Job, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	j, ok := c.jobs[bus.ConfigKey(ns, name)]
	return j, ok
}

// Jobs returns every job.
func (c *Catalog) Jobs() []*resource.Job {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*resource.Job, 0, len(c.jobs))
	for _, j := range c.jobs {
		out = append(out, j)
	}
	return out
}

// Webhook returns a webhook by namespace and name.
func (c *Catalog) Webhook(ns, name string) (*resource.Webhook, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	w, ok := c.webhooks[bus.ConfigKey(ns, name)]
	return w, ok
}

// WebhookByEndpoint returns the webhook an endpoint id belongs to.
func (c *Catalog) WebhookByEndpoint(endpointID string) (*resource.Webhook, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	w, ok := c.byEndpoint[endpointID]
	return w, ok
}

// Key returns an API key by its public id.
func (c *Catalog) Key(id string) (*resource.APIKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.keys[id]
	return k, ok
}

// ErrNoSecret is returned when a referenced secret does not exist.
var ErrNoSecret = errors.New("secret not found")

// openedSecret caches a secret's plaintext, opened once per change rather
// than on every delivery.
type openedSecret struct {
	current  string
	previous []openedPrevious // newest first
	err      error
}

type openedPrevious struct {
	value string
	until time.Time
}

// SecretValues returns the plaintext values of a secret valid at now: the
// current one, then each replaced one while its own grace period lasts.
func (c *Catalog) SecretValues(ns, name string, now time.Time) ([]string, error) {
	key := bus.ConfigKey(ns, name)
	c.mu.RLock()
	o, cached := c.opened[key]
	c.mu.RUnlock()
	if !cached {
		var err error
		if o, err = c.open(key); err != nil {
			return nil, err
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	vs := []string{o.current}
	for _, p := range o.previous {
		if now.Before(p.until) {
			vs = append(vs, p.value)
		}
	}
	return vs, nil
}

func (c *Catalog) open(key string) (openedSecret, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.opened[key]; ok {
		return o, nil
	}
	s, ok := c.secrets[key]
	if !ok {
		return openedSecret{}, fmt.Errorf("%w: %s", ErrNoSecret, key)
	}
	if c.box == nil {
		return openedSecret{}, errors.New("catalog: no secret key configured (HOOKRUN_SECRET_KEY)")
	}
	var o openedSecret
	aad := []byte(key)
	cur, err := c.box.Open(s.Current, aad)
	if err != nil {
		o.err = err
	} else {
		o.current = string(cur)
	}
	for _, p := range s.PreviousValues() {
		if prev, err := c.box.Open(p.Value, aad); err == nil {
			o.previous = append(o.previous, openedPrevious{string(prev), p.ExpiresAt})
		}
	}
	c.opened[key] = o
	return o, nil
}

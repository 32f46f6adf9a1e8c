package ingress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/service"
)

// Config is the ingress configuration.
type Config struct {
	service.Common
	// PublishTimeout bounds the wait for JetStream's ack before answering 503.
	PublishTimeout time.Duration
	// TrustProxy takes the source IP from X-Forwarded-For (X-Real-IP is
	// not read).
	TrustProxy bool
	// TrustedProxies are proxies' addresses trusted beside loopback,
	// link-local and private ones (HOOKRUN_TRUSTED_PROXIES): a cloud load
	// balancer on public addresses.
	TrustedProxies []*net.IPNet
	// H2C serves HTTP/2 without TLS beside HTTP/1.1 (HOOKRUN_H2C), for a
	// proxy that speaks HTTP/2 to its upstreams (Envoy and Istio with
	// appProtocol http2, Cloud Run's end-to-end HTTP/2).
	H2C bool
	// DefaultWindow is the dedup window of webhooks without a profile or an
	// explicit dedupWindow (HOOKRUN_DEDUP_WINDOW, as the dispatcher's): a
	// duplicate is answered as one where the dispatcher's claim is looked for.
	DefaultWindow time.Duration
	// ShutdownDelay is how long, on a stop, the ingress goes on taking
	// deliveries while /readyz answers 503, before it stops listening: a
	// load balancer (Kubernetes' endpoints) takes it out meanwhile, so
	// senders are not refused connections (HOOKRUN_SHUTDOWN_DELAY).
	ShutdownDelay time.Duration
	// MaxPendingBytes bounds the bytes of authenticated deliveries' bodies
	// held while they are stored; past it deliveries are answered 503
	// (HOOKRUN_MAX_PENDING_BYTES, default 128 MiB; 0: no bound).
	MaxPendingBytes int64

	// The HTTP server's limits; zero keeps service.HTTPServer's defaults.
	// ReadHeaderTimeout cuts off senders that dribble their headers
	// (slowloris), ReadTimeout bounds reading a whole request with its body,
	// IdleTimeout closes idle keep-alive connections, and MaxHeaderBytes
	// answers 431 to oversized headers.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int

	// publishWithin publishes a delivery (bus.PublishWithin; a test's
	// stand-in loses an ack).
	publishWithin func(*nats.Conn, *nats.Msg, time.Duration) (*jetstream.PubAck, error)
}

// ConfigFromEnv reads the ingress configuration.
func ConfigFromEnv() (Config, error) {
	c, err := service.CommonFromEnv("127.0.0.1:8080")
	if err != nil {
		return Config{}, err
	}
	trust, err := service.EnvBool("TRUST_PROXY", false)
	if err != nil {
		return Config{}, err
	}
	h2c, err := service.EnvBool("H2C", false)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Common: c, TrustProxy: trust, H2C: h2c}
	if v := service.Env("TRUSTED_PROXIES", ""); v != "" {
		if !trust {
			return Config{}, errors.New("HOOKRUN_TRUSTED_PROXIES: set HOOKRUN_TRUST_PROXY=true as well (without it X-Forwarded-For is not read)")
		}
		if cfg.TrustedProxies, err = parseRanges(v); err != nil {
			return Config{}, fmt.Errorf("HOOKRUN_TRUSTED_PROXIES: %w", err)
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{
		{"PUBLISH_TIMEOUT", &cfg.PublishTimeout, 5 * time.Second},
		{"READ_HEADER_TIMEOUT", &cfg.ReadHeaderTimeout, 0},
		{"READ_TIMEOUT", &cfg.ReadTimeout, 0},
		{"IDLE_TIMEOUT", &cfg.IdleTimeout, 0},
		{"DEDUP_WINDOW", &cfg.DefaultWindow, 24 * time.Hour},
		{"SHUTDOWN_DELAY", &cfg.ShutdownDelay, 0},
	} {
		if *d.dst, err = service.EnvDuration(d.name, d.def); err != nil {
			return Config{}, err
		}
		if *d.dst < 0 {
			return Config{}, fmt.Errorf("HOOKRUN_%s: must not be negative", d.name)
		}
	}
	if cfg.PublishTimeout == 0 {
		return Config{}, errors.New("HOOKRUN_PUBLISH_TIMEOUT: must be positive, e.g. 5s")
	}
	if cfg.DefaultWindow == 0 {
		return Config{}, errors.New("HOOKRUN_DEDUP_WINDOW: must be positive, e.g. 24h (the same on the dispatcher)")
	}
	pending, err := service.EnvInt("MAX_PENDING_BYTES", DefaultMaxPendingBytes)
	if err != nil {
		return Config{}, err
	}
	if pending < 0 || pending > 0 && pending < minPendingBytes {
		// Below twice the largest body a webhook may take, a large
		// delivery would be refused whenever others were being stored.
		return Config{}, fmt.Errorf("HOOKRUN_MAX_PENDING_BYTES: must be 0 (no bound) or at least %d (twice the largest body a webhook may take)", minPendingBytes)
	}
	cfg.MaxPendingBytes = int64(pending)
	if cfg.MaxHeaderBytes, err = service.EnvInt("MAX_HEADER_BYTES", 0); err != nil {
		return Config{}, err
	}
	if cfg.MaxHeaderBytes < 0 {
		return Config{}, errors.New("HOOKRUN_MAX_HEADER_BYTES: must not be negative")
	}
	return cfg, nil
}

// DefaultMaxPendingBytes is HOOKRUN_MAX_PENDING_BYTES' default: 128
// deliveries of the default 1 MiB limit, tens of thousands of common ones.
const DefaultMaxPendingBytes = 128 << 20

// minPendingBytes is the least bound HOOKRUN_MAX_PENDING_BYTES may set.
const minPendingBytes = 2 * resource.MaxBodyBytes

// handleWithin bounds a delivery's handling once its body is read: a
// publish whose ack did not come in time is published again (publish.go),
// a duplicate JetStream cannot confirm is published once more, around a
// read of its original bounded by the publish timeout too (deliver.go),
// and the dedup look-up and status read add at most 250 ms each.
func (cfg Config) handleWithin() time.Duration {
	return 4*cfg.PublishTimeout + time.Second
}

// requestWithin bounds a request from its first byte to its answer: its
// body may take ReadTimeout to arrive and handleWithin to be stored, with
// a margin to answer. It is the server's write timeout (a 202 the write
// deadline cut off would tell the sender nothing) and the shutdown's
// grace: a delivery whose body was still arriving when the stop came is
// stored and answered, not cut off after its write (the sender, told
// nothing, would send it again).
func (cfg Config) requestWithin(srv *http.Server) time.Duration {
	return srv.ReadTimeout + cfg.handleWithin() + 5*time.Second
}

// server returns the HTTP server with Hookrun's timeouts and this
// configuration's overrides. Ingress handlers never stream, so unlike the
// shared default it also bounds writing: a request may take ReadTimeout to
// arrive and handleWithin to be stored, plus a margin to answer (a 202
// the write deadline cut off would tell the sender nothing).
func (cfg Config) server(h http.Handler) *http.Server {
	srv := service.HTTPServer(cfg.HTTPAddr, h)
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
	if cfg.ReadHeaderTimeout > 0 {
		srv.ReadHeaderTimeout = cfg.ReadHeaderTimeout
	}
	if cfg.ReadTimeout > 0 {
		srv.ReadTimeout = cfg.ReadTimeout
	}
	if cfg.IdleTimeout > 0 {
		srv.IdleTimeout = cfg.IdleTimeout
	}
	if cfg.MaxHeaderBytes > 0 {
		srv.MaxHeaderBytes = cfg.MaxHeaderBytes
	}
	srv.WriteTimeout = cfg.requestWithin(srv)
	return srv
}

package ingress

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConfigFromEnv_ReadsServerLimits: HOOKRUN_* variables set the publish
// timeout and the server's limits; unset ones keep the shared defaults;
// nonsense is refused at start-up with the variable's name.
func TestConfigFromEnv_ReadsServerLimits(t *testing.T) {
	t.Setenv("HOOKRUN_PUBLISH_TIMEOUT", "750ms")
	t.Setenv("HOOKRUN_READ_HEADER_TIMEOUT", "2s")
	t.Setenv("HOOKRUN_READ_TIMEOUT", "10s")
	t.Setenv("HOOKRUN_IDLE_TIMEOUT", "1m")
	t.Setenv("HOOKRUN_MAX_HEADER_BYTES", "16384")
	t.Setenv("HOOKRUN_MAX_PENDING_BYTES", "16777216")
	t.Setenv("HOOKRUN_DEDUP_WINDOW", "90m")
	t.Setenv("HOOKRUN_TRUST_PROXY", "1")
	t.Setenv("HOOKRUN_H2C", "true")
	t.Setenv("HOOKRUN_LOG_LEVEL", "WARN")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !c.TrustProxy || !c.H2C || c.LogLevel != "WARN" {
		t.Fatalf("HOOKRUN_TRUST_PROXY=1 HOOKRUN_LOG_LEVEL=WARN gave trust %v level %q", c.TrustProxy, c.LogLevel)
	}
	if c.MaxPendingBytes != 16<<20 {
		t.Fatalf("pending bytes %d, want the 16777216 of HOOKRUN_MAX_PENDING_BYTES", c.MaxPendingBytes)
	}
	if c.DefaultWindow != 90*time.Minute {
		t.Fatalf("dedup window %s, want the 90m of HOOKRUN_DEDUP_WINDOW", c.DefaultWindow)
	}
	srv := c.server(http.NotFoundHandler())
	if c.PublishTimeout != 750*time.Millisecond || srv.ReadHeaderTimeout != 2*time.Second || srv.ReadTimeout != 10*time.Second ||
		srv.IdleTimeout != time.Minute || srv.MaxHeaderBytes != 16384 || srv.WriteTimeout != 10*time.Second+4*750*time.Millisecond+time.Second+5*time.Second {
		t.Fatalf("config %+v gives server %+v", c, srv)
	}

	for _, v := range []string{"HOOKRUN_READ_HEADER_TIMEOUT", "HOOKRUN_READ_TIMEOUT", "HOOKRUN_IDLE_TIMEOUT", "HOOKRUN_MAX_HEADER_BYTES", "HOOKRUN_MAX_PENDING_BYTES", "HOOKRUN_DEDUP_WINDOW"} {
		t.Setenv(v, "")
	}
	c, err = ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultWindow != 24*time.Hour || c.MaxPendingBytes != DefaultMaxPendingBytes {
		t.Fatalf("default dedup window %s and pending bytes %d, want 24h and %d", c.DefaultWindow, c.MaxPendingBytes, DefaultMaxPendingBytes)
	}
	if srv := c.server(http.NotFoundHandler()); srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("defaults lost: %+v", srv)
	}

	for v, bad := range map[string]string{
		"HOOKRUN_PUBLISH_TIMEOUT": "0s", "HOOKRUN_DEDUP_WINDOW": "0", "HOOKRUN_READ_TIMEOUT": "-1s", "HOOKRUN_IDLE_TIMEOUT": "soon", "HOOKRUN_MAX_HEADER_BYTES": "-5", "HOOKRUN_MAX_PENDING_BYTES": "-1",
		// Typos that would silently leave a setting off (or logging at info).
		"HOOKRUN_TRUST_PROXY": "yes", "HOOKRUN_H2C": "on", "HOOKRUN_PPROF": "on", "HOOKRUN_LOG_LEVEL": "verbose",
	} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, bad)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), v) {
				t.Fatalf("%s=%s: %v, want an error naming the variable", v, bad, err)
			}
		})
	}
	// Under twice the largest body a webhook may take: a large one would
	// starve beside others.
	t.Run("HOOKRUN_MAX_PENDING_BYTES under twice the largest body", func(t *testing.T) {
		t.Setenv("HOOKRUN_MAX_PENDING_BYTES", "1048576")
		if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "HOOKRUN_MAX_PENDING_BYTES") {
			t.Fatalf("1 MiB: %v, want an error naming the variable", err)
		}
		t.Setenv("HOOKRUN_MAX_PENDING_BYTES", "0")
		if c, err := ConfigFromEnv(); err != nil || c.MaxPendingBytes != 0 {
			t.Fatalf("0: %+v, %v; want no bound", c.MaxPendingBytes, err)
		}
	})
	t.Run("HOOKRUN_TRUSTED_PROXIES", func(t *testing.T) {
		t.Setenv("HOOKRUN_TRUSTED_PROXIES", "35.191.0.0/16,130.211.0.0/22")
		t.Setenv("HOOKRUN_TRUST_PROXY", "")
		if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "HOOKRUN_TRUST_PROXY") {
			t.Fatalf("without HOOKRUN_TRUST_PROXY: %v, want an error saying to set it", err)
		}
		t.Setenv("HOOKRUN_TRUST_PROXY", "true")
		if c, err := ConfigFromEnv(); err != nil || len(c.TrustedProxies) != 2 {
			t.Fatalf("two ranges: %v, %v", c.TrustedProxies, err)
		}
		t.Setenv("HOOKRUN_TRUSTED_PROXIES", "35.191.0.0/99")
		if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "HOOKRUN_TRUSTED_PROXIES") {
			t.Fatalf("a bad range: %v, want an error naming the variable", err)
		}
	})
}

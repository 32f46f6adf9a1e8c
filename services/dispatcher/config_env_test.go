package dispatcher

import (
	"strings"
	"testing"
	"time"
)

// A setting given as zero or less is refused naming it, not silently
// replaced by its default (HOOKRUN_DEDUP_WINDOW=0 would otherwise be 24h
// here while the ingress refuses it).
func TestConfigFromEnv_RefusesSettingsThatMustBePositive(t *testing.T) {
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchSize != 100 || c.Concurrency != 2 || c.AckWait != 30*time.Second || c.PauseDelay != 2*time.Second || c.DefaultWindow != 24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	for v, bad := range map[string]string{
		"HOOKRUN_DISPATCH_BATCH": "0", "HOOKRUN_DISPATCH_CONCURRENCY": "-1", "HOOKRUN_DISPATCH_ACK_WAIT": "0s",
		"HOOKRUN_DISPATCH_PAUSE": "-2s", "HOOKRUN_DEDUP_WINDOW": "0",
	} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, bad)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), v+"="+bad+": must be positive") {
				t.Fatalf("%s=%s: %v, want it refused naming the variable", v, bad, err)
			}
		})
	}
	t.Setenv("HOOKRUN_DISPATCH_BATCH", "7")
	if c, err := ConfigFromEnv(); err != nil || c.BatchSize != 7 {
		t.Fatalf("HOOKRUN_DISPATCH_BATCH=7: %d, %v", c.BatchSize, err)
	}
}

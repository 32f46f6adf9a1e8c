package executor

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Only a Standard Webhooks secret (whsec_…) adds their headers: a hex
// secret, as the other profiles generate, is base64 too but is not one.
// Headers an HTTP job sets itself are kept.
func TestSign_StandardWebhooksHeadersOnlyForTheirSecrets(t *testing.T) {
	now := time.Now()
	hex := strings.Repeat("0123456789abcdef", 4)
	h := http.Header{}
	Sign(h, []byte(`{}`), hex, "run_1", now)
	if h.Get(HeaderSignature) == "" || h.Get("Webhook-Signature") != "" {
		t.Fatalf("hex secret: %v", h)
	}
	h = http.Header{"Webhook-Id": {"the-job's-own"}}
	Sign(h, []byte(`{}`), cbSecret, "run_1", now)
	if !strings.HasPrefix(h.Get("Webhook-Signature"), "v1,") || h.Get("Webhook-Timestamp") == "" || h.Get("Webhook-Id") != "the-job's-own" {
		t.Fatalf("whsec secret: %v", h)
	}
}

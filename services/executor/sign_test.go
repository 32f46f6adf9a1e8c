package executor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/signature"
)

// Only a Standard Webhooks secret (whsec_…) adds their headers: a hex
// secret, as the other profiles generate, is base64 too but is not one.
// An HTTP job's own webhook-id is replaced: it would not be what was
// signed, and no receiver could verify the request.
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
	if !strings.HasPrefix(h.Get("Webhook-Signature"), "v1,") || h.Get("Webhook-Timestamp") == "" || h.Get("Webhook-Id") != "run_1" {
		t.Fatalf("whsec secret: %v", h)
	}
}

// While a signing secret is rotated, each Standard Webhooks value valid
// signs (webhook-signature "v1,… v1,…"), so a receiver still holding the
// previous value verifies, as one that took the new value does; the
// Hookrun signature is the current value's.
func TestSignAll_EveryValueInItsGraceSigns(t *testing.T) {
	p, _ := signature.Lookup("standard-webhooks")
	current, _ := p.GenerateSecret()
	previous, _ := p.GenerateSecret()
	now := time.Now()
	body := []byte(`{"type":"run.succeeded"}`)
	h := http.Header{}
	SignAll(h, body, []string{current, previous}, "run_1.dlv_1.succeeded", now)
	if n := len(strings.Fields(h.Get("Webhook-Signature"))); n != 2 {
		t.Fatalf("webhook-signature %q: want 2 signatures", h.Get("Webhook-Signature"))
	}
	for name, s := range map[string]string{"current": current, "previous": previous} {
		if id, err := p.Verify(signature.Request{Header: h, Body: body}, []string{s}, now); err != nil || id != "run_1.dlv_1.succeeded" {
			t.Errorf("a receiver holding the %s value: %q, %v", name, id, err)
		}
	}
	m := hmac.New(sha256.New, []byte(current))
	m.Write(body)
	if got := h.Get(HeaderSignature); got != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("X-Hookrun-Signature %q is not the current value's", got)
	}
}

// A callback's body is not HTML-escaped: output holding <, > or & is sent
// as it is, not six times its size (the record was fitted to its bounds
// unescaped), and signed as sent.
func TestExecutor_CallbackBodyIsNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	e.cfg.Secret("default", "cb-secret", cbSecret, "", 0)
	srv := newRecorder(t, 0, 200)
	e.start(nil)
	job := e.script("html", `echo '<b>&amp;</b>'`)
	rr := e.submit(job, "{}", func(rr *message.RunRequest) {
		rr.Callback = &message.Callback{URL: srv.srv.URL + "/results", SecretRef: "cb-secret"}
	})
	e.final(rr, 10*time.Second)
	var reqs []received
	for deadline := time.Now().Add(10 * time.Second); len(reqs) < 1 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		reqs = srv.got()
	}
	if len(reqs) != 1 {
		t.Fatalf("%d callbacks", len(reqs))
	}
	checkSignature(t, reqs[0], cbSecret)
	if !strings.Contains(string(reqs[0].body), `"output":"<b>&amp;</b>\n"`) {
		t.Fatalf("callback body %s: want the output as printed", reqs[0].body)
	}
}

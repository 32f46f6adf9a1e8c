package signature

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os/exec"
	"strconv"
	"testing"
)

// opensslHMAC runs the Orloj seed's pipeline,
//
//	printf '%s' "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary
//
// (the seed pipes to xxd for hex; the hex is done here instead) and returns
// the raw digest. With hexKey set the key is given as -macopt hexkey:, for
// keys that are not text.
func opensslHMAC(t *testing.T, payload, secret string, hexKey bool) []byte {
	t.Helper()
	script := `printf '%s' "$PAYLOAD" | openssl dgst -sha256 -hmac "$SECRET" -binary`
	if hexKey {
		script = `printf '%s' "$PAYLOAD" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$SECRET" -binary`
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(cmd.Environ(), "PAYLOAD="+payload, "SECRET="+secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v: %s", err, stderr.String())
	}
	if len(out) != 32 {
		t.Fatalf("openssl printed %d bytes, want a 32-byte digest", len(out))
	}
	return out
}

func TestOpenSSL_AgreesWithSign(t *testing.T) {
	for _, tool := range []string{"sh", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH", tool)
		}
	}
	const (
		body    = `{"event":"report.trigger","topic":"AI startups"}`
		secret  = "replace-me"
		eventID = "evt-001"
	)
	ts := strconv.FormatInt(now.Unix(), 10)
	swKey, _ := standardKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

	tests := []struct {
		profile string
		header  string
		payload string // what openssl is asked to sign
		secret  string // as given to Sign
		key     string // as given to openssl, if not secret
		hexKey  bool
		encode  func([]byte) string
	}{
		{profile: "generic", header: "X-Signature", payload: ts + "." + body,
			encode: func(b []byte) string { return "sha256=" + hex.EncodeToString(b) }},
		{profile: "github", header: "X-Hub-Signature-256", payload: body,
			encode: func(b []byte) string { return "sha256=" + hex.EncodeToString(b) }},
		{profile: "stripe", header: "Stripe-Signature", payload: ts + "." + body,
			encode: func(b []byte) string { return "t=" + ts + ",v1=" + hex.EncodeToString(b) }},
		{profile: "slack", header: "X-Slack-Signature", payload: "v0:" + ts + ":" + body,
			encode: func(b []byte) string { return "v0=" + hex.EncodeToString(b) }},
		{profile: "shopify", header: "X-Shopify-Hmac-Sha256", payload: body,
			encode: base64.StdEncoding.EncodeToString},
		{profile: "standard-webhooks", header: "Webhook-Signature", payload: eventID + "." + ts + "." + body,
			secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key: hex.EncodeToString(swKey), hexKey: true,
			encode: func(b []byte) string { return "v1," + base64.StdEncoding.EncodeToString(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			if tt.secret == "" {
				tt.secret = secret
			}
			if tt.key == "" {
				tt.key = tt.secret
			}
			p, _ := Lookup(tt.profile)
			want := tt.encode(opensslHMAC(t, tt.payload, tt.key, tt.hexKey))
			if got := p.Sign([]byte(body), tt.secret, eventID, now).Get(tt.header); got != want {
				t.Fatalf("Sign %s = %s, openssl gives %s", tt.header, got, want)
			}
		})
	}
}

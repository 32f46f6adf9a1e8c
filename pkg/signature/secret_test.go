package signature

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestGenerateSecret_UsesProviderFormat(t *testing.T) {
	decode := map[string]func(string) ([]byte, error){
		"standard-webhooks": func(s string) ([]byte, error) {
			rest, ok := strings.CutPrefix(s, "whsec_")
			if !ok {
				return nil, errors.New("no whsec_ prefix")
			}
			return base64.StdEncoding.DecodeString(rest)
		},
		"stripe": func(s string) ([]byte, error) {
			rest, ok := strings.CutPrefix(s, "whsec_")
			if !ok {
				return nil, errors.New("no whsec_ prefix")
			}
			return hex.DecodeString(rest)
		},
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			p, _ := Lookup(name)
			dec, ok := decode[name]
			if !ok {
				dec = hex.DecodeString
			}
			a, b := mustSecret(t, p), mustSecret(t, p)
			if a == b {
				t.Fatal("two generated secrets are equal")
			}
			key, err := dec(a)
			if err != nil {
				t.Fatalf("secret not in the provider's format: %v", err)
			}
			if len(key) < 32 {
				t.Fatalf("secret carries %d bytes of entropy, want >= 32", len(key))
			}
			if err := ValidateSecret(p, a); err != nil {
				t.Fatalf("ValidateSecret(generated): %v", err)
			}
		})
	}
}

func TestValidateSecret_RejectsUnusableSecrets(t *testing.T) {
	tests := []struct {
		profile, secret string
		ok              bool
	}{
		{"github", "", false},
		{"github", "anything", true},
		{"gitlab", "", false},
		{"standard-webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"standard-webhooks", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"standard-webhooks", "whsec_", false},
		{"standard-webhooks", "whsec_not base64!", false},
	}
	for _, tt := range tests {
		p, _ := Lookup(tt.profile)
		err := ValidateSecret(p, tt.secret)
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ValidateSecret(%s, %q) = %v, want ok=%v", tt.profile, tt.secret, err, tt.ok)
		}
	}
}

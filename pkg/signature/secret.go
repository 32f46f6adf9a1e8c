package signature

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// secretBytes is the entropy of every generated secret.
const secretBytes = 32

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	return b, nil
}

// generateHex returns prefix followed by 32 random bytes in hex.
func generateHex(prefix string) (string, error) {
	b, err := randomBytes(secretBytes)
	if err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b), nil
}

// generateBase64 returns prefix followed by 32 random bytes in standard,
// padded base64.
func generateBase64(prefix string) (string, error) {
	b, err := randomBytes(secretBytes)
	if err != nil {
		return "", err
	}
	return prefix + base64.StdEncoding.EncodeToString(b), nil
}

// secretChecker is implemented by profiles whose secrets have a format.
type secretChecker interface {
	usableSecret(secret string) bool
}

// ValidateSecret reports whether secret can sign and verify deliveries for p,
// so configuration can be rejected when it is applied rather than when the
// first delivery fails. It returns an error wrapping ErrInvalidSecret for an
// empty secret, or one not in the profile's format.
func ValidateSecret(p Profile, secret string) error {
	ok := secret != ""
	if c, has := p.(secretChecker); has {
		ok = c.usableSecret(secret)
	}
	if !ok {
		return fmt.Errorf("%w for profile %s", ErrInvalidSecret, p.Name())
	}
	return nil
}

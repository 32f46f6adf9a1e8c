// Package apikey makes and checks Hookrun API keys.
//
// A key reads "hk_<id>_<secret>": the id is public and looks the key up
// without scanning; the secret part (256 random bits) is stored only as its
// SHA-256 hash and compared in constant time. A slow hash buys nothing for
// 256-bit random secrets and would cost every delivery.
package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/hookrun/hookrun/pkg/ident"
)

// Prefix starts every key.
const Prefix = "hk_"

// New returns a new key, its public id and the hash to store.
func New() (key, id, hash string) {
	id = ident.Random("", 10)
	secret := ident.Random("", 32)
	key = Prefix + id + "_" + secret
	return key, id, Hash(secret)
}

// Hash returns the stored form of a key's secret part.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Parse splits a presented key into id and secret; ok is false when it does
// not have a key's shape.
func Parse(key string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(key, Prefix)
	if !found {
		return "", "", false
	}
	id, secret, found = strings.Cut(rest, "_")
	if !found || id == "" || secret == "" || len(id) > 64 || len(secret) > 128 {
		return "", "", false
	}
	return id, secret, true
}

// Match reports, in constant time, whether secret hashes to storedHash.
func Match(secret, storedHash string) bool {
	h := Hash(secret)
	return subtle.ConstantTimeCompare([]byte(h), []byte(storedHash)) == 1
}

// DisplayPrefix is the part of a key safe to show in lists ("hk_<id>").
func DisplayPrefix(id string) string { return Prefix + id }

// Hide returns word, a word of a message that may hold a key, with the key
// shortened to its public part ("hk_<id>_…"), wherever in the word it
// starts (an id may begin with a tab or a quote it was sent with:
// %09hk_…). A word holding no key's shape is returned as it is.
func Hide(word string) string {
	at := strings.Index(word, Prefix)
	if at < 0 {
		return word
	}
	if id, _, ok := Parse(word[at:]); ok {
		return word[:at] + DisplayPrefix(id) + "_…"
	}
	return word
}

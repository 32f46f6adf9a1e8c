package apikey

import (
	"strings"
	"testing"
)

func TestNew_KeyParsesAndMatchesItsHash(t *testing.T) {
	key, id, hash := New()
	gotID, secret, ok := Parse(key)
	if !ok || gotID != id {
		t.Fatalf("Parse(%q) = %q, ok=%v; want id %q", key, gotID, ok, id)
	}
	if !Match(secret, hash) {
		t.Fatal("secret does not match its own hash")
	}
	if strings.Contains(hash, secret) {
		t.Fatal("hash contains the secret")
	}
	if Match(secret+"x", hash) {
		t.Fatal("wrong secret matched")
	}
}

func TestParse_RefusesMalformed(t *testing.T) {
	for _, k := range []string{"", "hk_", "hk_abc", "xx_abc_def", "hk__secret", "hk_id_"} {
		if _, _, ok := Parse(k); ok {
			t.Errorf("Parse(%q) accepted", k)
		}
	}
}

package secretbox

import (
	"bytes"
	"testing"
)

func TestBox_SealOpenRoundTripAndNoPlaintext(t *testing.T) {
	k, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("super-secret-value")
	sealed := b.Seal(pt, []byte("default.gh"))
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := b.Open(sealed, []byte("default.gh"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open(sealed, []byte("default.other")); err == nil {
		t.Fatal("opened with the wrong aad")
	}
	k2, _ := ParseKey(NewKey())
	b2, _ := New(k2)
	if _, err := b2.Open(sealed, []byte("default.gh")); err == nil {
		t.Fatal("opened with the wrong key")
	}
}

func TestParseKey_RefusesShortKeys(t *testing.T) {
	if _, err := ParseKey("c2hvcnQ="); err == nil {
		t.Fatal("accepted a 5-byte key")
	}
}

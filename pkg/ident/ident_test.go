package ident

import (
	"strings"
	"testing"
)

func TestRunID_DerivedFromWebhookAndEvent(t *testing.T) {
	a := RunID("w1", "evt-1", "")
	if a != RunID("w1", "evt-1", "") {
		t.Fatal("same event gave different run ids")
	}
	for _, other := range []string{RunID("w2", "evt-1", ""), RunID("w1", "evt-2", ""), RunID("w1", "evt-1", "dlv_x")} {
		if other == a {
			t.Fatalf("distinct inputs gave the same run id %s", a)
		}
	}
	if !strings.HasPrefix(a, "run_") || len(a) != 4+26 {
		t.Fatalf("run id %q: want run_ + 26 chars", a)
	}
}

func TestNewEndpointID_Unguessable(t *testing.T) {
	id := NewEndpointID()
	// 20 random bytes = 160 bits >= the 128 the secret-URL mode needs.
	if len(id) != len("ep_")+32 {
		t.Fatalf("endpoint id %q has %d chars", id, len(id))
	}
	if id == NewEndpointID() {
		t.Fatal("two endpoint ids are equal")
	}
}

package testenv

import "testing"

// A thousand draws from the ~28k ephemeral ports repeat one almost surely
// (birthday bound), so this fails if FreePort stops keeping its record.
func TestFreePort_NeverHandsOutAPortTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 1000 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

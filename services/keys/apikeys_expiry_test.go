package keys

import (
	"testing"
	"time"
)

// A key made for N minutes expires N minutes on; listed after that it says
// "expired": true; extending it then counts from now (the time it was
// expired for is not given back), while extending a live key adds to its
// expiry.
func TestAPIKeys_MinutesExpiredFlagAndExtendingAnExpiredKey(t *testing.T) {
	a := newTestAPI(t)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	a.svc.now = func() time.Time { return at }

	m := a.must(201, "POST", "/v1/keys", map[string]any{"name": "short", "expiration": map[string]any{"count": 30, "interval": "minutes"}}).JSON()
	id := m["id"].(string)
	if exp := parseTime(t, m["expiresAt"]); !exp.Equal(at.Add(30 * time.Minute)) {
		t.Fatalf("30 minutes: expiresAt %v", exp)
	}
	listed := func() map[string]any {
		t.Helper()
		keys, _ := a.must(200, "GET", "/v1/keys", nil).JSON()["keys"].([]any)
		for _, k := range keys {
			if path(k, "id") == id {
				return k.(map[string]any)
			}
		}
		t.Fatalf("key %s not listed", id)
		return nil
	}
	if k := listed(); k["expired"] != false {
		t.Fatalf("a live key: %v", k)
	}

	// Live: an extension adds to the expiry.
	ext := a.must(200, "PATCH", "/v1/keys/"+id+"/extend", map[string]any{"count": 10, "interval": "minutes"}).JSON()
	if exp := parseTime(t, ext["expiresAt"]); !exp.Equal(at.Add(40 * time.Minute)) {
		t.Fatalf("a live key extended by 10 minutes: expiresAt %v, want %v", exp, at.Add(40*time.Minute))
	}

	at = at.Add(2 * time.Hour)
	if k := listed(); k["expired"] != true {
		t.Fatalf("a key past its expiry: %v", k)
	}
	ext = a.must(200, "PATCH", "/v1/keys/"+id+"/extend", map[string]any{"count": 1, "interval": "hours"}).JSON()
	if exp := parseTime(t, ext["expiresAt"]); !exp.Equal(at.Add(time.Hour)) {
		t.Fatalf("an expired key extended by an hour: expiresAt %v, want an hour from now %v", exp, at.Add(time.Hour))
	}
	if k := listed(); k["expired"] != false {
		t.Fatalf("an extended key: %v", k)
	}
}

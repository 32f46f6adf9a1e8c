package redact

import (
	"strings"
	"testing"
)

func TestURL_HidesPasswordsAndTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"redis://:s3cr3tPW@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"rediss://user:s3cr3tPW@redis.example:6380/1", "rediss://user:xxxxx@redis.example:6380/1"},
		{"redis://:s3cr3tPW@127.0.0.1:notaport/0", "redis://:xxxxx@127.0.0.1:notaport/0"},
		// A password with characters a parser ends the userinfo at.
		{"redis://:s3c/r3t?P#W@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"redis://:s3c@r3tPW@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"nats://disp:s3cr3tNATS@127.0.0.1:14222", "nats://disp:xxxxx@127.0.0.1:14222"},
		{"nats://T0KEN@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222"},
		{"T0KEN@127.0.0.1:4222", "xxxxx@127.0.0.1:4222"},
		// The master's name is no secret, and the hosts have no userinfo.
		{"redis-sentinel://mymaster@s1:26379,s2:26379", "redis-sentinel://mymaster@s1:26379,s2:26379"},
		{"rediss-sentinel://mymaster@s1:26379/1", "rediss-sentinel://mymaster@s1:26379/1"},
		// The master's password goes before its name, which stays.
		{"redis-sentinel://:s3cr3tPW@mymaster@s1:26379,s2:26379/1", "redis-sentinel://:xxxxx@mymaster@s1:26379,s2:26379/1"},
		{"redis-sentinel://app:s3cr3tPW@mymaster@s1:26379", "redis-sentinel://app:xxxxx@mymaster@s1:26379"},
		{"rediss-sentinel://app:s3cr3tPW@mymaster@s1:26379", "rediss-sentinel://app:xxxxx@mymaster@s1:26379"},
		{"REDIS-SENTINEL://:s3cr3tPW@mymaster@s1:26379", "REDIS-SENTINEL://:xxxxx@mymaster@s1:26379"},
		{"redis-sentinel://:s3c@r3t/PW@mymaster@s1:26379", "redis-sentinel://:xxxxx@mymaster@s1:26379"},
		// A password without a user (taken for the user by a parser).
		{"redis-sentinel://s3cr3tPW@mymaster@s1:26379", "redis-sentinel://xxxxx@mymaster@s1:26379"},
		// A form OpenRedis refuses, redacted all the same.
		{"redis-sentinel://mymaster:s3cr3tPW@s1:26379,s2:26379", "redis-sentinel://mymaster:xxxxx@s1:26379,s2:26379"},
		// A password in the query (go-redis' Sentinel URLs take one).
		{"redis-sentinel://mymaster@s1:26379?password=s3cr3tPW&dial_timeout=1s", "redis-sentinel://mymaster@s1:26379?password=xxxxx&dial_timeout=1s"},
		{"redis://:s3cr3tPW@127.0.0.1:6379/0?sentinel_password=s3cr3tPW#f", "redis://:xxxxx@127.0.0.1:6379/0?sentinel_password=xxxxx#f"},
		{"redis://127.0.0.1:6379/0?client_name=a", "redis://127.0.0.1:6379/0?client_name=a"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"", ""},
	} {
		if got := URL(tc.raw); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestURLs_HidesEachOfAList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"nats://a:pw1@n1:4222,nats://b:pw2@n2:4222,nats://n3:4222", "nats://a:xxxxx@n1:4222,nats://b:xxxxx@n2:4222,nats://n3:4222"},
		{"nats://T0KEN@n1:4222, nats://T0KEN@n2:4222", "nats://xxxxx@n1:4222, nats://xxxxx@n2:4222"},
		// A comma in a password does not leave its first half in the clear.
		{"nats://a:pw,1@n1:4222,nats://n2:4222", "nats://a:xxxxx@n1:4222,nats://n2:4222"},
		// Nor do two commas, nor a "://" in the password.
		{"nats://user:LEAK1,pa2,pa3@n1:4222", "nats://user:xxxxx@n1:4222"},
		{"nats://user:LEAK2,x://rest@n1:4222,nats://n2:4222", "nats://user:xxxxx@n1:4222,nats://n2:4222"},
		{"nats://a:1,nats://u:p@b:2", "nats://a:1,nats://u:xxxxx@b:2"},
		// A list without user info is as it was.
		{"nats://n1:4222,nats://n2:4222", "nats://n1:4222,nats://n2:4222"},
	} {
		if got := URLs(tc.raw); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// A token or password with a comma in it cannot work (nats.go splits its
// URL list at every comma), but an operator may set one, with or without a
// scheme, and URLs logs such lists at start-up: no piece of the credential
// may be left on either side of the comma.
func TestURLs_HidesACredentialWithCommasWhole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw, want string
		pieces    []string // of the credential, none of which may remain
	}{
		{"user:pa,ss@host:4222", "user:xxxxx@host:4222", []string{"pa", "ss"}},
		{"nats://user:pa,ss@host:4222", "nats://user:xxxxx@host:4222", []string{"pa", "ss"}},
		{"nats://tok,en@host", "nats://xxxxx@host", []string{"tok", "en"}},
		{"tok,en@host:4222", "xxxxx@host:4222", []string{"tok", "en"}},
		{"nats://tok,,en@host", "nats://xxxxx@host", []string{"tok", "en"}},
		{"nats://tok/x,en@host", "nats://xxxxx@host", []string{"tok", "en"}},
		// Each URL of a list, and the hosts kept.
		{"nats://a:1,nats://tok,en@b:2", "nats://a:1,nats://xxxxx@b:2", []string{"tok", "en"}},
		{"nats://tok,en@h1:4222, nats://tok,en@h2:4222", "nats://xxxxx@h1:4222, nats://xxxxx@h2:4222", []string{"tok", "en"}},
		{"nats://a:1,user:pa,ss@b:2", "nats://a:1,user:xxxxx@b:2", []string{"pa", "ss"}},
		{"nats://[::1]:4222,nats://u:pa,ss@b:2", "nats://[::1]:4222,nats://u:xxxxx@b:2", []string{"pa", "ss"}},
		// An error message passed through URLs is prose, not a password begun.
		{"lookup n1 on 10.0.0.2:53: no such host, nats://u:pa,ss@b:2", "lookup n1 on 10.0.0.2:53: no such host, nats://u:xxxxx@b:2", []string{"pa", "ss"}},
		// A host without a port is no token when a URL of its own follows.
		{"nats://a,nats://tok@b", "nats://a,nats://xxxxx@b", []string{"tok"}},
		// Where the text cannot tell, the host goes rather than the token.
		{"nats://a,tok@b", "nats://xxxxx@b", []string{"tok"}},
	} {
		got := URLs(tc.raw)
		if got != tc.want {
			t.Errorf("URLs(%q) = %q, want %q", tc.raw, got, tc.want)
		}
		for _, piece := range tc.pieces {
			if strings.Contains(got, piece) {
				t.Errorf("URLs(%q) = %q, which holds %q of the credential", tc.raw, got, piece)
			}
		}
	}
}

func TestURLs_KeepsListsWithoutAnOpenCredential(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"nats://a:1,nats://b:2",
		"nats://a,nats://b",
		"a:4222,b:4222",
		"[::1]:4222,nats://b",
	} {
		if got := URLs(raw); got != raw {
			t.Errorf("URLs(%q) = %q, want it unchanged", raw, got)
		}
	}
}

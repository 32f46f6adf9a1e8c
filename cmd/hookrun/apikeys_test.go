package main

import (
	"fmt"
	"strings"
	"testing"
)

// --interval is the unit of --count: given alone it created a key that
// never expires (exit 0), the opposite of what it seems to ask. It is a
// usage error, as keys extend without --count is.
func TestCLI_KeysCreateIntervalWithoutCountIsAUsageError(t *testing.T) {
	f := newFakeAPI(t)
	r := f.execCLI("keys", "create", "ci", "--interval", "hours")
	if r.Code != codeUsage || !strings.Contains(r.Stderr, "--count") {
		t.Fatalf("--interval without --count: want exit %d naming --count, got %s", codeUsage, r)
	}
	if got := f.takeChanges(); len(got) > 0 {
		t.Fatalf("created %v", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "3", "--interval", "hours"}, `create key ci {"count":3,"interval":"hours"}`},
		{[]string{"--count", "3"}, `create key ci {"count":3,"interval":"days"}`},
		{nil, "create key ci"},
	} {
		r := f.execCLI(append([]string{"keys", "create", "ci"}, tc.args...)...)
		if got := f.takeChanges(); r.Code != codeOK || fmt.Sprint(got) != fmt.Sprint([]string{tc.want}) {
			t.Errorf("%v: asked %v, want %q: %s", tc.args, got, tc.want, r)
		}
	}
}

// Extending a key that never expires changes nothing (the API answers it
// unchanged): it said "extended: expires never" and exited 0. It is
// refused (4), saying how to get a key that expires; a key that expires
// is still extended.
func TestCLI_KeysExtendOfAKeyThatNeverExpiresIsRefused(t *testing.T) {
	f := newFakeAPI(t)
	r := f.execCLI("keys", "extend", "deploy", "--count", "30")
	if r.Code != codeRefused || r.Stdout != "" || !strings.Contains(r.Stderr, "key/key_default never expires, so there is nothing to extend") ||
		!strings.Contains(r.Stderr, "hookrun keys create NAME --count N") {
		t.Fatalf("extend of a key that never expires: want exit %d saying so and how to create one that expires, got %s", codeRefused, r)
	}
	r = f.execCLI("keys", "extend", "deploy", "-n", "prod", "--count", "30")
	if r.Code != codeOK || !strings.Contains(r.Stdout, "key/key_prod extended: expires 20") {
		t.Fatalf("extend of a key that expires: %s", r)
	}
}

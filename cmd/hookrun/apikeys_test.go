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

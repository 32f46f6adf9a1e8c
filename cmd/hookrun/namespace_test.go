package main

import (
	"fmt"
	"strings"
	"testing"
)

// Every command that names one key, run or delivery acts in -n's namespace
// only: a key or run of another namespace with the same name or id is not
// touched (not found), as for jobs and webhooks.
func TestCLI_KeysRunsAndReplayActInTheNamespaceOfN(t *testing.T) {
	f := newFakeAPI(t)
	cases := []struct {
		args    []string
		code    int
		out     string   // in stdout, when the command succeeds
		changes []string // what the API was asked to change
	}{
		{[]string{"keys", "list", "-n", "prod", "-o", "json"}, codeOK, `"key_prod"`, nil},
		{[]string{"get", "key", "deploy", "-n", "prod", "-o", "json"}, codeOK, `"key_prod"`, nil},
		{[]string{"keys", "extend", "deploy", "-n", "prod", "--count", "1"}, codeOK, "key/key_prod extended", []string{"extend key_prod"}},
		{[]string{"keys", "delete", "deploy", "-n", "prod"}, codeOK, "deleted 1 key", []string{"delete key_prod"}},
		{[]string{"keys", "delete", "key_prod", "key_default", "-n", "prod"}, codeNotFound, "", nil},
		{[]string{"keys", "delete", "key_default", "-n", "prod"}, codeNotFound, "", nil},
		{[]string{"keys", "extend", "key_default", "-n", "prod", "--count", "1"}, codeNotFound, "", nil},
		{[]string{"get", "run", "run_prod", "-n", "prod", "-o", "json"}, codeOK, `"run_prod"`, nil},
		{[]string{"get", "run", "run_prod", "-n", "default"}, codeNotFound, "", nil},
		{[]string{"runs", "cancel", "run_prod", "-n", "default"}, codeNotFound, "", nil},
		{[]string{"runs", "cancel", "run_prod", "-n", "prod"}, codeOK, "cancel requested", []string{"cancel run_prod"}},
		{[]string{"runs", "watch", "run_prod", "-n", "default", "--start-timeout", "0s"}, codeNotFound, "", nil},
		{[]string{"runs", "watch", "run_prod", "-n", "prod"}, codeOK, "run_prod: succeeded", nil},
		{[]string{"replay", "dlv_prod", "-n", "default"}, codeNotFound, "", nil},
		{[]string{"replay", "dlv_prod", "-n", "prod"}, codeOK, "replayed dlv_prod", []string{"replay dlv_prod"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := f.execCLI(tc.args...)
			if r.Code != tc.code || !strings.Contains(r.Stdout, tc.out) {
				t.Fatalf("want exit %d and %q in stdout, got %s", tc.code, tc.out, r)
			}
			if tc.code == codeOK && strings.Contains(r.Stdout, "key_default") {
				t.Fatalf("shows default's key:\n%s", r.Stdout)
			}
			if got := f.takeChanges(); fmt.Sprint(got) != fmt.Sprint(tc.changes) {
				t.Fatalf("changed %v, want %v", got, tc.changes)
			}
		})
	}
}

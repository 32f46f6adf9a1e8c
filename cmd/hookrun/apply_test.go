package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A document's namespace wins over HOOKRUN_NAMESPACE, as kubectl's does over
// its context's, but one that differs from a -n given on the command line is
// refused, as kubectl does, and then nothing is applied: applying it to
// team-a ignored -n team-b without a word.
func TestCLI_ApplyRefusesADocumentOfAnotherNamespaceThanN(t *testing.T) {
	f := newFakeAPI(t)
	dir := t.TempDir()
	teamA := writeFile(t, dir, "a.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: j, namespace: team-a}\n---\napiVersion: hookrun.dev/v1\nkind: Secret\nmetadata: {name: s}\n")
	noNS := writeFile(t, dir, "none.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: j}\n")

	r := f.execCLI("apply", "-f", teamA, "-n", "team-b")
	if r.Code != codeRefused || !strings.Contains(r.Stderr, `a.yaml#1: job/j: metadata.namespace "team-a" does not match --namespace "team-b"`) {
		t.Fatalf("-n team-b for a team-a document: want exit %d naming both, got %s", codeRefused, r)
	}
	if got := f.takeChanges(); len(got) > 0 {
		t.Fatalf("applied %v, want nothing", got)
	}

	for _, tc := range []struct {
		name string
		args []string
		env  string // HOOKRUN_NAMESPACE
		want []string
	}{
		{"-n of the document", []string{"-f", teamA, "-n", "team-a"}, "", []string{"put team-a/secrets/s", "put team-a/jobs/j"}},
		{"no -n", []string{"-f", teamA}, "", []string{"put default/secrets/s", "put team-a/jobs/j"}},
		{"HOOKRUN_NAMESPACE", []string{"-f", teamA}, "team-c", []string{"put team-c/secrets/s", "put team-a/jobs/j"}},
		{"no namespace in the document", []string{"-f", noNS, "-n", "team-b"}, "", []string{"put team-b/jobs/j"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOOKRUN_NAMESPACE", tc.env)
			r := f.execCLI(append([]string{"apply"}, tc.args...)...)
			if got := f.takeChanges(); r.Code != codeOK || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("applied %v, want %v: %s", got, tc.want, r)
			}
		})
	}
}

// What the CLI can check itself it checks for every document before the
// first PUT: every bad document is named, one line each, and none is
// applied (a bad document used to stop apply at the first, naming only it).
// What only the API can refuse, apply goes on after (see
// TestCLI_ExitCodesAndOneLineErrors).
func TestCLI_ApplyNamesEveryBadDocumentAndAppliesNone(t *testing.T) {
	f := newFakeAPI(t)
	dir := t.TempDir()
	writeFile(t, dir, "1.yaml", `apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: good}
spec: {command: [/bin/true]}
---
kind: Cronjob
metadata: {name: nightly}
---
kind: Webhook
metadata: {name: w}
spec:
  job: good
  auth: {apiKey: {in: header, name: X-Key}}
  auth: {none: {}}
`)
	writeFile(t, dir, "2.yaml", "kind: Job\nmetadata: {namespace: team-a}\n---\napiVersion: hookrun.dev/v1\nkind: Secret\nmetadata: {name: s, namespace: team-a}\n")
	r := f.execCLI("apply", "-f", dir, "-n", "team-b")
	want := []string{
		`1.yaml#2: kind "Cronjob": must be one of Secret, Job, Webhook`,
		`1.yaml#3: not valid YAML: line 14: mapping key "auth" already defined at line 13`,
		`2.yaml#1: metadata.name: is required`,
		`2.yaml#2: secret/s: metadata.namespace "team-a" does not match --namespace "team-b"`,
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if r.Code != codeRefused || len(lines) != len(want) {
		t.Fatalf("want exit %d and %d error lines, got %s", codeRefused, len(want), r)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "hookrun: ") || !strings.Contains(lines[i], w) {
			t.Errorf("error line %d: %q, want %q", i+1, lines[i], w)
		}
	}
	if got := f.takeChanges(); len(got) > 0 || r.Stdout != "" {
		t.Fatalf("applied %v (stdout %q), want nothing", got, r.Stdout)
	}
}

func TestCLI_ApplyHelpSaysMultiDocumentYAML(t *testing.T) {
	r := runCLI("apply", "--help")
	if !strings.Contains(r.Stdout, "Apply resources from multi-document YAML") {
		t.Fatalf("apply --help:\n%s", r.Stdout)
	}
}

// A resource given twice — a file named twice, or two documents of one
// kind and name — is refused before anything is applied: the second would
// overwrite the first, and applying the files again was never "unchanged".
func TestCLI_ApplyRefusesAResourceGivenTwice(t *testing.T) {
	f := newFakeAPI(t)
	dir := t.TempDir()
	writeFile(t, dir, "dup.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: one}\nspec: {command: [/bin/true]}\n---\napiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: one, namespace: default}\nspec: {command: [/bin/false]}\n")
	writeFile(t, dir, "ok.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: two}\nspec: {command: [/bin/true]}\n")
	r := f.execCLI("apply", "-f", filepath.Join(dir, "dup.yaml"))
	if r.Code != codeRefused || !strings.Contains(r.Stderr, "dup.yaml#2: job/one is given again (first in") {
		t.Fatalf("two documents of one job: %s", r)
	}
	r = f.execCLI("apply", "-f", filepath.Join(dir, "ok.yaml"), "-f", filepath.Join(dir, "ok.yaml"))
	if r.Code != codeRefused || !strings.Contains(r.Stderr, "job/two is given again") {
		t.Fatalf("one file given twice: %s", r)
	}
	if got := f.takeChanges(); len(got) > 0 {
		t.Fatalf("applied %v, want nothing", got)
	}
	// The same name in two namespaces is two resources.
	writeFile(t, dir, "two-ns.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: one}\nspec: {command: [/bin/true]}\n---\napiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: one, namespace: team-a}\nspec: {command: [/bin/true]}\n")
	if r := f.execCLI("apply", "-f", filepath.Join(dir, "two-ns.yaml")); r.Code != codeOK {
		t.Fatalf("one name in two namespaces: %s", r)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitYAML_SplitsAtDocumentMarkers(t *testing.T) {
	in := "a: 1\n---\nb: 2\n--- # comment\nc: 3\n--- {d: 4}\n...\n---\n\n"
	docs := splitYAML([]byte(in))
	var got []string
	var lines []int
	for _, d := range docs {
		got = append(got, strings.TrimSpace(string(d.text)))
		lines = append(lines, d.line)
	}
	want := []string{"a: 1", "b: 2", "# comment\nc: 3", "{d: 4}", ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("splitYAML = %q, want %q", got, want)
	}
	// Each document knows the line it starts on, for messages.
	if fmt.Sprint(lines) != "[1 3 4 6 9]" {
		t.Fatalf("documents start on lines %v, want [1 3 4 6 9]", lines)
	}
	// A "---" inside a block scalar is indented, so it is not a marker.
	docs = splitYAML([]byte("a: |\n  ---\n  x\n"))
	if len(docs) != 1 {
		t.Fatalf("indented --- split the document into %d", len(docs))
	}
}

func TestParseManifest_ReadsResourcesAndRefusesWhatIsNotOne(t *testing.T) {
	docs, err := parseManifest("m.yaml", []byte(`
# only a comment
---
apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: weekly-report, namespace: team-a}
spec:
  command: ["/bin/bash", "-c", "echo \"$HOOKRUN_ARG_TOPIC\""]
  args:
    - {name: topic, default: "AI startups", value: "{{ .body.topic }}"}
---
- {apiVersion: hookrun.dev/v1, kind: Secret, metadata: {name: s1}, spec: {}}
- {apiVersion: hookrun.dev/v1, kind: Webhook, metadata: {name: w1}, spec: {job: weekly-report}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 3 || docs[0].Kind != "Job" || docs[0].Name != "weekly-report" || docs[0].Namespace != "team-a" ||
		docs[1].Kind != "Secret" || docs[2].Name != "w1" || docs[0].Source != "m.yaml#2" || docs[2].Source != "m.yaml#3[1]" {
		t.Fatalf("docs: %+v", docs)
	}
	var job struct {
		Spec struct {
			Command []string `json:"command"`
			Args    []struct {
				Value string `json:"value"`
			} `json:"args"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(docs[0].JSON, &job); err != nil || job.Spec.Command[2] != `echo "$HOOKRUN_ARG_TOPIC"` || job.Spec.Args[0].Value != "{{ .body.topic }}" {
		t.Fatalf("YAML to JSON: %s %v", docs[0].JSON, err)
	}

	for in, msg := range map[string]string{
		"kind: Cron\nmetadata: {name: x}\n":                                 `kind "Cron": must be one of Secret, Job, Webhook`,
		"kind: Job\nspec: {}\n":                                             "metadata.name: is required",
		"kind: Job\nmetadata: {name: a/b}\n":                                "metadata.name: must match",
		"just a string\n":                                                   "a resource must be a mapping",
		"kind: Job\nmetadata: {name: [unclosed\n":                           "not valid YAML",
		"kind: Job\nmetadata: {name: x, namespace: a&b}":                    "metadata.namespace",
		"apiVersion: hookrun.dev/v1beta1\nkind: Job\nmetadata: {name: x}\n": "apiVersion: must be hookrun.dev/v1",
		"kind: Job\nmetadata: {name: Bad_Name}\n":                           "metadata.name: must match",
	} {
		if _, err := parseManifest("bad.yaml", []byte(in)); err == nil || !strings.Contains(err.Error(), msg) || !strings.HasPrefix(err.Error(), "bad.yaml#1") {
			t.Errorf("%q: error %v, want one about %q", in, err, msg)
		}
	}
}

func TestOrderForApply_SecretsThenJobsThenWebhooksKeepingFileOrder(t *testing.T) {
	docs := []manifestDoc{{Kind: "Webhook", Name: "w1"}, {Kind: "Job", Name: "j1"}, {Kind: "Secret", Name: "s1"}, {Kind: "Webhook", Name: "w2"}, {Kind: "Job", Name: "j2"}, {Kind: "Secret", Name: "s2"}}
	orderForApply(docs)
	var got []string
	for _, d := range docs {
		got = append(got, d.Name)
	}
	if strings.Join(got, ",") != "s1,s2,j1,j2,w1,w2" {
		t.Fatalf("order %v", got)
	}
}

func TestReadManifests_ReadsADirectoryAndStdin(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"b.yaml":     "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: j}\n",
		"a.yml":      "apiVersion: hookrun.dev/v1\nkind: Secret\nmetadata: {name: s}\n",
		"c.json":     `{"apiVersion": "hookrun.dev/v1", "kind": "Webhook", "metadata": {"name": "w"}}`,
		"notes.txt":  "not a manifest",
		"sub/d.yaml": "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: nested}\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	docs, err := readManifests([]string{dir, "-"}, strings.NewReader("apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: from-stdin}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Name)
	}
	if strings.Join(got, ",") != "s,j,w,from-stdin" {
		t.Fatalf("read %v (a directory: its manifests in name order, not subdirectories)", got)
	}
	if _, err := readManifests([]string{filepath.Join(dir, "sub", "none.yaml")}, nil); err == nil {
		t.Fatal("a missing file: want an error")
	}
	empty := t.TempDir()
	if _, err := readManifests([]string{empty}, nil); err == nil || !strings.Contains(err.Error(), "no .yaml") {
		t.Fatalf("an empty directory: %v", err)
	}
}

// FuzzParseManifest checks that no input makes the manifest reader panic,
// and that what it accepts has a known kind and a name.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(reportManifest))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("- kind: Job\n  metadata: {name: x}\n"))
	f.Add([]byte("--- {kind: Secret, metadata: {name: s}}\n...\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := parseManifest("fuzz", data)
		if err != nil {
			return
		}
		for _, d := range docs {
			if collectionOf(d.Kind) == "" || d.Name == "" || !json.Valid(d.JSON) {
				t.Fatalf("accepted %+v", d)
			}
		}
	})
}

// A key that a mapping repeats is refused, as kubectl does: the YAML
// conversion kept the last one, so a webhook's second auth: (none) silently
// replaced its API key. The message names the document, the key and the
// file's lines. A key that overrides one merged in with "<<" is not a
// repeat, and stays allowed.
func TestParseManifest_RefusesARepeatedKey(t *testing.T) {
	for _, tc := range []struct{ name, in, msg string }{
		{"webhook auth", `apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: j}
spec: {command: [/bin/true]}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: w}
spec:
  job: j
  auth: {apiKey: {in: header, name: X-Key}}
  methods: [POST]
  auth: {none: {}}
`, `m.yaml#2: not valid YAML: line 13: mapping key "auth" already defined at line 11`},
		{"job command", "kind: Job\nmetadata: {name: j}\nspec:\n  command: [/bin/true]\n  command: [/bin/false]\n",
			`m.yaml#1: not valid YAML: line 5: mapping key "command" already defined at line 4`},
		{"JSON", `{"kind": "Job", "metadata": {"name": "j"}, "kind": "Secret"}`, `mapping key "kind" already defined`},
		{"in a list", "- kind: Job\n  metadata: {name: j, name: k}\n", `m.yaml#1: not valid YAML: line 2: mapping key "name" already defined`},
		// Keys YAML reads as one value are one key in JSON.
		{"one number written twice", "kind: Job\nmetadata: {name: j}\nspec:\n  env: {1: int, 0x1: hex}\n", `line 4: mapping key "0x1" already defined at line 4`},
		{"a float and an int", "kind: Job\nmetadata: {name: j}\nspec:\n  env: {1.0: a, 1: b}\n", `mapping key "1" already defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseManifest("m.yaml", []byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one containing %q", err, tc.msg)
			}
		})
	}
	docs, err := parseManifest("m.yaml", []byte(`
apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: j}
spec:
  <<: {command: [/bin/true], timeout: 1m}
  timeout: 2m
`))
	if err != nil || len(docs) != 1 || !strings.Contains(string(docs[0].JSON), `"timeout":"2m"`) {
		t.Fatalf("a key overriding a merged one: %+v %v", docs, err)
	}
}

// Every bad document is named, not only the first: the others are parsed
// on, and the good ones returned with the errors.
func TestReadManifests_NamesEveryBadDocument(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "apiVersion: hookrun.dev/v1\nkind: Job\nmetadata: {name: good}\n---\nkind: Cronjob\nmetadata: {name: c}\n---\nkind: Job\nmetadata: {}\n")
	writeFile(t, dir, "b.yaml", "- apiVersion: hookrun.dev/v1\n  kind: Secret\n  metadata: {name: s}\n- kind: Gadget\n  metadata: {name: g}\n---\nkind: [unclosed\n")
	docs, err := readManifests([]string{dir}, nil)
	if len(docs) != 2 || docs[0].Name != "good" || docs[1].Name != "s" {
		t.Fatalf("good documents: %+v", docs)
	}
	var got []string
	for _, e := range errorList(err) {
		got = append(got, e.Error())
	}
	want := []string{"a.yaml#2: kind \"Cronjob\"", "a.yaml#3: metadata.name", "b.yaml#1[1]: kind \"Gadget\"", "b.yaml#2: not valid YAML"}
	if len(got) != len(want) {
		t.Fatalf("errors %q, want %d: %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("error %d: %q, want %q", i, got[i], w)
		}
	}
}

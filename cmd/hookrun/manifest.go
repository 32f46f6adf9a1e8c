package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/hookrun/hookrun/pkg/resource"
)

// manifestDoc is one resource read from a manifest, as JSON for the API.
type manifestDoc struct {
	Source    string // "file.yaml#2", for messages
	Kind      string
	Name      string
	Namespace string // "" when the document names none
	JSON      []byte
}

// manifestKinds maps a resource kind to its API collection, in apply order: what a
// resource refers to is applied before it (a webhook names a job and
// secrets, a job may name a secret).
var manifestKinds = []struct{ kind, collection string }{
	{"Secret", "secrets"},
	{"Job", "jobs"},
	{"Webhook", "webhooks"},
}

func kindRank(kind string) int {
	for i, k := range manifestKinds {
		if k.kind == kind {
			return i
		}
	}
	return len(manifestKinds)
}

func collectionOf(kind string) string {
	for _, k := range manifestKinds {
		if k.kind == kind {
			return k.collection
		}
	}
	return ""
}

// manifestExts are the file extensions read from a directory.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// readManifests reads every document of the given files and directories
// ("-" is stdin). A directory contributes its *.yaml, *.yml and *.json
// files, in name order, not its subdirectories. A file that cannot be read
// ends the reading with its *fs.PathError; documents that are not resources
// do not: it returns the good ones with the errors of all bad ones
// (errors.Join, one error a document), so that apply names every mistake.
func readManifests(paths []string, stdin io.Reader) ([]manifestDoc, error) {
	var docs []manifestDoc
	var bad []error
	add := func(source string, b []byte) {
		d, err := parseManifest(source, b)
		docs = append(docs, d...)
		bad = append(bad, errorList(err)...)
	}
	for _, p := range paths {
		if p == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, err
			}
			add("stdin", b)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files := []string{p}
		if st.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, e := range entries {
				if !e.IsDir() && manifestExts[strings.ToLower(filepath.Ext(e.Name()))] {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			if len(files) == 0 {
				bad = append(bad, fmt.Errorf("%s: no .yaml, .yml or .json files", p))
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			add(f, b)
		}
	}
	return docs, errors.Join(bad...)
}

// errorList is the errors joined in err (errors.Join), or err alone.
func errorList(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var list []error
	for _, e := range j.Unwrap() {
		list = append(list, errorList(e)...)
	}
	return list
}

// orderForApply sorts documents Secret → Job → Webhook, keeping the
// manifest order within a kind.
func orderForApply(docs []manifestDoc) {
	sort.SliceStable(docs, func(i, j int) bool { return kindRank(docs[i].Kind) < kindRank(docs[j].Kind) })
}

// parseManifest parses a multi-document YAML (or JSON) manifest. A
// document that is a list holds resources too (what `get -o yaml` prints).
// It returns the resources of the good documents and the errors of the
// bad ones (errors.Join), each prefixed with its document ("m.yaml#2").
func parseManifest(source string, data []byte) ([]manifestDoc, error) {
	var docs []manifestDoc
	var bad []error
	for i, raw := range splitYAML(data) {
		src := fmt.Sprintf("%s#%d", source, i+1)
		j, err := yamlToJSON(raw)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: not valid YAML: %s", src, fileLines(err.Error(), raw.line)))
			continue
		}
		j = bytes.TrimSpace(j)
		if len(j) == 0 || string(j) == "null" {
			continue // only comments or blank
		}
		if j[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(j, &items); err != nil {
				bad = append(bad, fmt.Errorf("%s: %v", src, err))
				continue
			}
			for k, it := range items {
				d, err := parseManifestDoc(fmt.Sprintf("%s[%d]", src, k), it)
				if err != nil {
					bad = append(bad, err)
					continue
				}
				docs = append(docs, d)
			}
			continue
		}
		d, err := parseManifestDoc(src, j)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		docs = append(docs, d)
	}
	return docs, errors.Join(bad...)
}

// yamlToJSON converts one document to JSON, refusing a key that one of its
// mappings repeats. The conversion alone keeps the last of repeated keys,
// so a webhook with `auth: {apiKey: …}` and, further down, `auth: {none: {}}`
// would be applied without a key. sigs.k8s.io/yaml's strict mode refuses
// repeated keys but also a key that overrides one merged in with "<<",
// which YAML allows; repeatedKeys refuses only the former, as kubectl does.
func yamlToJSON(doc yamlDoc) ([]byte, error) {
	var root yamlv3.Node
	// A syntax error is left to the conversion, whose message scripts and
	// tests know.
	if yamlv3.Unmarshal(doc.text, &root) == nil {
		if dups := repeatedKeys(&root, nil); len(dups) > 0 {
			return nil, errors.New(strings.Join(dups, "; "))
		}
	}
	return yaml.YAMLToJSON(doc.text)
}

// repeatedKeys appends to dups, in kubectl's words, every key that a mapping
// in n repeats. An alias is not followed: the mapping it names is checked
// where it is defined.
func repeatedKeys(n *yamlv3.Node, dups []string) []string {
	if n.Kind == yamlv3.MappingNode {
		first := map[string]int{} // key → its line
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yamlv3.ScalarNode {
				continue
			}
			// As the conversion to JSON names it: 1, 0x1 and 1.0 are
			// one key "1".
			key := k.Value
			var v any
			if k.Tag != "!!merge" && k.Decode(&v) == nil && v != nil {
				key = fmt.Sprint(v)
			}
			if at, ok := first[key]; ok {
				dups = append(dups, fmt.Sprintf("line %d: mapping key %q already defined at line %d", k.Line, k.Value, at))
				continue
			}
			first[key] = k.Line
		}
	}
	for _, c := range n.Content {
		dups = repeatedKeys(c, dups)
	}
	return dups
}

// yamlLineNumber is a line number in a YAML parser's message.
var yamlLineNumber = regexp.MustCompile(`\bline (\d+)`)

// fileLines turns the line numbers of a message about a document that
// starts on line first of its file into the file's line numbers: the
// parsers count from the document's start.
func fileLines(msg string, first int) string {
	return yamlLineNumber.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+first-1)
	})
}

// parseManifestDoc checks what the CLI needs of a resource — its kind and
// name — and the API's fixed rules for them and apiVersion, and leaves the
// rest to the API's validation, which names fields.
func parseManifestDoc(src string, j []byte) (manifestDoc, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return manifestDoc{}, fmt.Errorf("%s: a resource must be a mapping with apiVersion, kind, metadata and spec", src)
	}
	if collectionOf(head.Kind) == "" {
		return manifestDoc{}, fmt.Errorf("%s: kind %q: must be one of Secret, Job, Webhook", src, head.Kind)
	}
	if head.Metadata.Name == "" {
		return manifestDoc{}, fmt.Errorf("%s: metadata.name: is required", src)
	}
	// The API's fixed rules, checked for every document before any is
	// sent, so that a manifest is not applied in part.
	if err := resource.CheckName("metadata.name", head.Metadata.Name); err != nil {
		return manifestDoc{}, fmt.Errorf("%s: %v", src, err)
	}
	if head.Metadata.Namespace != "" {
		if err := resource.CheckName("metadata.namespace", head.Metadata.Namespace); err != nil {
			return manifestDoc{}, fmt.Errorf("%s: %v", src, err)
		}
	}
	if head.APIVersion != resource.APIVersion {
		return manifestDoc{}, fmt.Errorf("%s: apiVersion: must be %s", src, resource.APIVersion)
	}
	return manifestDoc{Source: src, Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace, JSON: j}, nil
}

// yamlDoc is one document of a YAML stream.
type yamlDoc struct {
	text []byte
	line int // the stream's line its text starts on, from 1
}

// splitYAML splits a YAML stream into documents at "---" lines (which may
// carry content after a space: "--- {a: 1}") and drops "..." end markers.
func splitYAML(data []byte) []yamlDoc {
	var docs []yamlDoc
	var cur bytes.Buffer
	start, n := 1, 0 // the current document's first line; the line read
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	flush := func(next int) {
		docs = append(docs, yamlDoc{text: append([]byte(nil), cur.Bytes()...), line: start})
		cur.Reset()
		start = next
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimRight(line, " \t\r")
		switch {
		case trimmed == "---":
			flush(n + 1)
			continue
		case strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t"):
			flush(n)
			line = strings.TrimLeft(line[3:], " \t")
		case trimmed == "...":
			if cur.Len() == 0 {
				start = n + 1
			}
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush(0)
	return docs
}

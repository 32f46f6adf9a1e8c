package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
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
// files, in name order, not its subdirectories.
func readManifests(paths []string, stdin io.Reader) ([]manifestDoc, error) {
	var docs []manifestDoc
	for _, p := range paths {
		if p == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, err
			}
			d, err := parseManifest("stdin", b)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
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
				return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", p)
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			d, err := parseManifest(f, b)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	return docs, nil
}

// orderForApply sorts documents Secret → Job → Webhook, keeping the
// manifest order within a kind.
func orderForApply(docs []manifestDoc) {
	sort.SliceStable(docs, func(i, j int) bool { return kindRank(docs[i].Kind) < kindRank(docs[j].Kind) })
}

// parseManifest parses a multi-document YAML (or JSON) manifest. A
// document that is a list holds resources too (what `get -o yaml` prints).
func parseManifest(source string, data []byte) ([]manifestDoc, error) {
	var docs []manifestDoc
	for i, raw := range splitYAML(data) {
		src := fmt.Sprintf("%s#%d", source, i+1)
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: not valid YAML: %v", src, err)
		}
		j = bytes.TrimSpace(j)
		if len(j) == 0 || string(j) == "null" {
			continue // only comments or blank
		}
		if j[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(j, &items); err != nil {
				return nil, fmt.Errorf("%s: %v", src, err)
			}
			for k, it := range items {
				d, err := parseManifestDoc(fmt.Sprintf("%s[%d]", src, k), it)
				if err != nil {
					return nil, err
				}
				docs = append(docs, d)
			}
			continue
		}
		d, err := parseManifestDoc(src, j)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// parseManifestDoc checks what the CLI needs of a resource — its kind and
// name — and leaves the rest to the API's validation, which names fields.
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
	if strings.ContainsAny(head.Metadata.Name, "/?#%") || strings.ContainsAny(head.Metadata.Namespace, "/?#%&=") {
		return manifestDoc{}, fmt.Errorf("%s: metadata.name: must match [a-z0-9]([a-z0-9-]*[a-z0-9])?", src)
	}
	return manifestDoc{Source: src, Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace, JSON: j}, nil
}

// splitYAML splits a YAML stream into documents at "---" lines (which may
// carry content after a space: "--- {a: 1}") and drops "..." end markers.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	flush := func() {
		docs = append(docs, append([]byte(nil), cur.Bytes()...))
		cur.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimRight(line, " \t\r")
		switch {
		case trimmed == "---":
			flush()
			continue
		case strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t"):
			flush()
			line = strings.TrimLeft(line[3:], " \t")
		case trimmed == "...":
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hookrun/hookrun/pkg/resource"
)

// With -o json or -o yaml, stdout is one document a script can parse even
// with --wait: the run's progress goes to stderr; the exit code says how
// the run ended.
func TestCLI_WaitWithStructuredOutputPrintsOneDocument(t *testing.T) {
	f := newFakeAPI(t)
	w := testWebhook(resource.Auth{None: &struct{}{}})
	w.Metadata.Namespace = "prod"
	b, _ := json.Marshal(w)
	f.webhooks["prod/w"] = string(b)
	for _, args := range [][]string{
		{"send", "w", "-d", `{}`, "--wait", "-n", "prod", "-o", "json"},
		{"send", "w", "-d", `{}`, "--wait", "-n", "prod", "-o", "yaml"},
		{"replay", "dlv_prod", "--wait", "-n", "prod", "-o", "json"},
		{"replay", "dlv_prod", "--wait", "-n", "prod", "-o", "yaml"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := f.execCLI(args...)
			if r.Code != codeOK {
				t.Fatalf("want exit 0, got %s", r)
			}
			var doc map[string]any
			if err := yaml.UnmarshalStrict([]byte(r.Stdout), &doc); err != nil || doc["executionId"] != "run_prod" {
				t.Fatalf("stdout is not one document with the answer (%v):\n%s", err, r.Stdout)
			}
			if args[len(args)-1] == "json" && !json.Valid([]byte(r.Stdout)) {
				t.Fatalf("stdout is not JSON:\n%s", r.Stdout)
			}
			if !strings.Contains(r.Stderr, "hello\nrun run_prod: succeeded") {
				t.Fatalf("the run's progress is not on stderr: %s", r)
			}
		})
	}
	// A table keeps everything on stdout.
	if r := f.execCLI("send", "w", "-d", `{}`, "--wait", "-n", "prod"); r.Code != codeOK || !strings.Contains(r.Stdout, "accepted: delivery dlv_1") || !strings.Contains(r.Stdout, "run run_prod: succeeded") {
		t.Fatalf("send --wait as a table: %s", r)
	}
}

// send --wait follows the run of the delivery it sent; a duplicate's answer
// may name a delivery that never runs (one the dedup claim told apart, not
// JetStream), so for a duplicate it follows the run the event has.
func TestCLI_WaitFollowsTheDeliverySentOrForADuplicateTheRun(t *testing.T) {
	f := newFakeAPI(t)
	w := testWebhook(resource.Auth{None: &struct{}{}})
	w.Metadata.Namespace = "prod"
	b, _ := json.Marshal(w)
	f.webhooks["prod/w"] = string(b)
	for _, dup := range []bool{false, true} {
		f.mu.Lock()
		f.duplicate, f.eventsAsk = dup, nil
		f.mu.Unlock()
		if r := f.execCLI("send", "w", "-d", `{}`, "--wait", "-n", "prod"); r.Code != codeOK {
			t.Fatalf("duplicate %v: %s", dup, r)
		}
		f.mu.Lock()
		asked := strings.Join(f.eventsAsk, " ")
		f.mu.Unlock()
		if followsDelivery := strings.Contains(asked, "delivery=dlv_1"); followsDelivery == dup {
			t.Fatalf("duplicate %v: events asked with %q", dup, asked)
		}
	}
}

package executor

import (
	"strings"
	"testing"

	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/resource"
)

// lastValue is the value os/exec gives the process for key: the last one.
func lastValue(env []string, key string) (string, bool) {
	v, found := "", false
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v, found = val, true
		}
	}
	return v, found
}

// A job's own variables (and its secret ones) may set PATH, but never the
// input contract: a job
// stored before the keys service refused such names (an argument named
// webhook_payload, spec.env naming the run id) cannot hide the body or the
// markers the sweep kills leftover processes by.
func TestEnvironment_JobVariablesNeverReplaceTheContract(t *testing.T) {
	def := "the default"
	job := &resource.Job{Spec: resource.JobSpec{
		EnvPrefix: "JANUS",
		Args:      []resource.Arg{{Name: "webhook_payload", Default: &def}},
		Env:       map[string]string{"PATH": "/opt/tools/bin", "JANUS_RUN_ID": "fake", "JANUS_WEBHOOK_PAYLOAD_FILE": "/etc/passwd"},
	}}
	rr := &message.RunRequest{ID: "run_real", Payload: []byte("PAY"), Args: map[string]string{"webhook_payload": def}}
	secretEnv := map[string]string{"JANUS_RUN_ID": "secret-fake", "JANUS_WEBHOOK_EVENT_ID": "secret-fake", "DEPLOY_TOKEN": "tok"}
	env, _ := Environment(job, rr, 2, "/work/run", "/work/run/payload", secretEnv)
	for key, want := range map[string]string{
		"DEPLOY_TOKEN":               "tok",
		"JANUS_WEBHOOK_EVENT_ID":     "",
		"PATH":                       "/opt/tools/bin",
		"JANUS_RUN_ID":               "run_real",
		"JANUS_RUN_ATTEMPT":          "2",
		"JANUS_WEBHOOK_PAYLOAD_FILE": "/work/run/payload",
		"JANUS_ARG_WEBHOOK_PAYLOAD":  "PAY",
	} {
		if got, _ := lastValue(env, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}

// An argument the job gained after the run was resolved (the run waited in
// the queue or out a retry's backoff) has its default, as any argument
// without a value; one the dispatcher resolved keeps its value, even "".
func TestEnvironment_ArgumentAddedSinceTheRunWasResolvedHasItsDefault(t *testing.T) {
	def, empty := "weekly", ""
	job := &resource.Job{Spec: resource.JobSpec{EnvPrefix: "HOOKRUN", Args: []resource.Arg{
		{Name: "topic", Default: &def}, {Name: "period", Default: &def}, {Name: "region"}, {Name: "note", Default: &empty},
	}}}
	rr := &message.RunRequest{ID: "run_a", Args: map[string]string{"topic": ""}}
	env, _ := Environment(job, rr, 1, "/work/run", "/work/run/payload", nil)
	for key, want := range map[string]string{
		"HOOKRUN_ARG_TOPIC":  "",
		"HOOKRUN_ARG_PERIOD": "weekly",
		"HOOKRUN_ARG_REGION": "",
		"HOOKRUN_ARG_NOTE":   "",
	} {
		if got, ok := lastValue(env, key); !ok || got != want {
			t.Errorf("%s = %q (set %v), want %q", key, got, ok, want)
		}
	}
	if len(rr.Args) != 1 {
		t.Errorf("the request's args were changed: %v", rr.Args)
	}
}

// The payload variable is left out when "<PREFIX>_ARG_WEBHOOK_PAYLOAD=" and
// the payload together pass what Linux takes for one variable, whatever
// the prefix's length: exec would refuse to start the job.
func TestEnvironment_PayloadVariableFitsWithALongPrefix(t *testing.T) {
	prefix := "P" + strings.Repeat("X", 60)
	job := &resource.Job{Spec: resource.JobSpec{EnvPrefix: prefix}}
	for _, n := range []int{maxEnvPayload - len(prefix+"_ARG_WEBHOOK_PAYLOAD="), maxEnvPayload - len(prefix+"_ARG_WEBHOOK_PAYLOAD=") + 1} {
		rr := &message.RunRequest{ID: "run_b", Payload: []byte(strings.Repeat("a", n))}
		env, _ := Environment(job, rr, 1, "/work/run", "/work/run/payload", nil)
		v, ok := lastValue(env, prefix+"_ARG_WEBHOOK_PAYLOAD")
		if fits := n+len(prefix+"_ARG_WEBHOOK_PAYLOAD=") <= maxEnvPayload; ok != fits || ok && len(v) != n {
			t.Errorf("payload of %d bytes: variable set %v (%d bytes), want set %v", n, ok, len(v), fits)
		}
		for _, kv := range env {
			if len(kv) > maxEnvPayload {
				t.Errorf("a variable of %d bytes: over %d", len(kv), maxEnvPayload)
			}
		}
	}
}

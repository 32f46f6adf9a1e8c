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

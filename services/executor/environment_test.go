package executor

import (
	"os/exec"
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

// A run whose environment would pass what Linux starts a program with
// (many arguments filled from the body, 64 KiB each, beside large variables
// of the job's, a large payload and large headers) still starts: the
// payload variable is left out (the payload is in its file), then the
// headers go to their file. It failed to start ("argument list too long")
// on every attempt.
func TestEnvironment_ACrowdedEnvironmentStillStarts(t *testing.T) {
	big := strings.Repeat("v", 60<<10)
	job := &resource.Job{Spec: resource.JobSpec{Command: []string{"/bin/true"}, Env: map[string]string{}}}
	args := map[string]string{}
	for i := range 24 {
		name := "arg" + string(rune('a'+i))
		job.Spec.Args = append(job.Spec.Args, resource.Arg{Name: name})
		args[name] = big
	}
	for i := range 8 { // 480 KiB of the job's own variables
		job.Spec.Env["BIG"+string(rune('A'+i))] = big
	}
	header := map[string][]string{}
	for i := range 10 { // about 120 KiB: a variable of its own still
		header["X-Big-"+string(rune('a'+i))] = []string{strings.Repeat("h", 12<<10)}
	}
	rr := &message.RunRequest{ID: "run_crowded", Payload: []byte(strings.Repeat("p", 100<<10)), Args: args, Header: header}
	env, headersFile := Environment(job, rr, 1, "/work/run", "/work/run/payload", nil)
	if _, ok := lastValue(env, "HOOKRUN_ARG_WEBHOOK_PAYLOAD"); ok {
		t.Error("the payload variable kept in a crowded environment")
	}
	if _, ok := lastValue(env, "HOOKRUN_WEBHOOK_HEADERS_FILE"); !ok || headersFile == nil {
		t.Error("the headers kept in a variable in a crowded environment")
	}
	if v, _ := lastValue(env, "HOOKRUN_ARG_ARGT"); v != big {
		t.Error("an argument lost")
	}
	cmd := exec.Command("/bin/true")
	cmd.Env = env
	if err := cmd.Run(); err != nil {
		t.Fatalf("a run's crowded environment (%d bytes): %v", execSize(env), err)
	}
	// An ordinary one keeps both variables.
	rr = &message.RunRequest{ID: "run_small", Payload: []byte("{}"), Header: map[string][]string{"X-A": {"b"}}}
	env, headersFile = Environment(&resource.Job{Spec: resource.JobSpec{Command: []string{"/bin/true"}}}, rr, 1, "/work/run", "/work/run/payload", nil)
	if v, _ := lastValue(env, "HOOKRUN_ARG_WEBHOOK_PAYLOAD"); v != "{}" || headersFile != nil {
		t.Errorf("an ordinary environment: payload %q, headers file %v", v, headersFile != nil)
	}
}

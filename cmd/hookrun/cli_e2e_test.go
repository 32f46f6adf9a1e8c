package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/testenv"
)

// reportManifest is API.md's example, in dependency-reversed order so that
// apply has to sort it.
const reportManifest = `# Orloj-style: a template job and a GitHub webhook
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: report-github-push}
spec:
  job: weekly-report
  methods: [POST]
  auth:
    signature: {profile: github, secretRef: github-secret}
  dedupWindow: 72h
---
apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: weekly-report, namespace: default}
spec:
  command: ["/bin/sh", "-c", "echo \"topic=$HOOKRUN_ARG_TOPIC\""]
  args:
    - {name: topic, default: "AI startups", value: "{{ .body.topic }}"}
  timeout: 1m
--- # the signing secret
apiVersion: hookrun.dev/v1
kind: Secret
metadata: {name: github-secret}
spec: {value: gh-secret-one, previousValidFor: 1h}
`

func TestCLI_ApplyIsIdempotentAndGetDescribeDeleteShowWhatItDid(t *testing.T) {
	d := startDev(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "report.yaml", reportManifest)

	out := d.ok("apply", "-f", f)
	want := []string{"secret/github-secret created", "job/weekly-report created", "webhook/report-github-push created"}
	lines := strings.Split(out, "\n")
	for i, w := range want {
		if lines[i] != w {
			t.Fatalf("apply line %d = %q, want %q (dependency order)\n%s", i, lines[i], w, out)
		}
	}
	ep := afterColon(lineWith(out, "endpoint:"))
	if !strings.HasPrefix(ep, d.Ingress+"/v1/hooks/ep_") {
		t.Fatalf("apply did not print the endpoint URL: %s", out)
	}

	out = d.ok("apply", "-f", f)
	for _, w := range []string{"secret/github-secret unchanged", "job/weekly-report unchanged", "webhook/report-github-push unchanged"} {
		if !strings.Contains(out, w) {
			t.Fatalf("second apply: want %q in\n%s", w, out)
		}
	}
	// A changed job is configured; the rest stays unchanged.
	writeFile(t, dir, "report.yaml", strings.Replace(reportManifest, "timeout: 1m", "timeout: 2m", 1))
	out = d.ok("apply", "-f", dir)
	if !strings.Contains(out, "job/weekly-report configured") || !strings.Contains(out, "webhook/report-github-push unchanged") {
		t.Fatalf("apply of a changed job:\n%s", out)
	}

	// get: tables, JSON, YAML.
	tbl := d.ok("get", "webhooks")
	if !strings.Contains(tbl, "NAME") || !strings.Contains(tbl, "report-github-push") || !strings.Contains(tbl, "signature (github)") || !strings.Contains(tbl, ep) {
		t.Fatalf("get webhooks:\n%s", tbl)
	}
	var jobs []map[string]any
	d.okJSON(&jobs, "get", "jobs", "-o", "json")
	if len(jobs) != 1 || jobs[0]["metadata"].(map[string]any)["name"] != "weekly-report" || jobs[0]["spec"].(map[string]any)["timeout"] != "2m0s" {
		t.Fatalf("get jobs -o json: %v", jobs)
	}
	var wh map[string]any
	d.okJSON(&wh, "get", "webhook", "report-github-push", "-o", "json")
	if st, _ := wh["status"].(map[string]any); st["endpointPath"] == nil || !strings.HasSuffix(ep, st["endpointPath"].(string)) {
		t.Fatalf("get webhook -o json: %v", wh)
	}
	var secrets []map[string]any
	d.okJSON(&secrets, "get", "secrets", "-o", "json")
	if len(secrets) != 1 || strings.Contains(fmt.Sprint(secrets), "gh-secret-one") {
		t.Fatalf("get secrets -o json: %v", secrets)
	}
	if y := d.ok("get", "jobs", "weekly-report", "-o", "yaml"); !strings.Contains(y, "kind: Job") || !strings.Contains(y, "name: weekly-report") {
		t.Fatalf("get job -o yaml:\n%s", y)
	}
	// What get -o yaml prints, apply reads back (unchanged).
	all := d.ok("get", "jobs", "-o", "yaml")
	r := d.runWith(nil, all, "apply", "-f", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, "job/weekly-report unchanged") {
		t.Fatalf("apply of get -o yaml: %s", r)
	}
	if out := d.ok("get", "runs"); !strings.Contains(out, "No runs") {
		t.Fatalf("get runs without runs:\n%s", out)
	}

	desc := d.ok("describe", "webhook", "report-github-push")
	for _, w := range []string{"Name:", "report-github-push", "Job:", "weekly-report", "Endpoint:", ep, "signature, profile github, secret github-secret",
		"Dedup window:", "72h0m0s", "Last delivery:", "Last error:", "Recent runs:"} {
		if !strings.Contains(desc, w) {
			t.Fatalf("describe lacks %q:\n%s", w, desc)
		}
	}

	// Namespaces: documents without one go to -n; the same names there are
	// other resources.
	noNS := writeFile(t, dir, "nons.yml", strings.Replace(reportManifest, "{name: weekly-report, namespace: default}", "{name: weekly-report}", 1))
	out = d.ok("apply", "-f", noNS, "-n", "team-b")
	for _, w := range []string{"secret/github-secret created (namespace team-b)", "job/weekly-report created (namespace team-b)", "webhook/report-github-push created (namespace team-b)"} {
		if !strings.Contains(out, w) {
			t.Fatalf("apply -n team-b: want %q in\n%s", w, out)
		}
	}
	d.ok("get", "job", "weekly-report", "-n", "team-b")
	d.expectCode(codeNotFound, "job team-c/weekly-report not found", "get", "job", "weekly-report", "-n", "team-c")

	out = d.ok("delete", "webhook", "report-github-push", "-n", "team-b")
	if !strings.Contains(out, "webhook/report-github-push deleted") {
		t.Fatalf("delete: %s", out)
	}
	d.expectCode(codeNotFound, "not found", "delete", "webhook", "report-github-push", "-n", "team-b")
	d.ok("get", "webhook", "report-github-push")
}

// signedSend is `hookrun send` of the report webhook with a secret.
func signedSend(d *devServer, secret, eventID, topic string, extra ...string) cliResult {
	d.t.Helper()
	args := append([]string{"send", "report-github-push", "--secret", secret, "--event-id", eventID, "-d", `{"ref":"refs/heads/main","topic":"` + topic + `"}`}, extra...)
	return d.run(args...)
}

var (
	runIDRE      = regexp.MustCompile(`run (run_[a-z0-9]+)`)
	deliveryIDRE = regexp.MustCompile(`delivery (dlv_[a-z0-9]+)`)
)

func TestCLI_SendSignsForTheProfileAndWatchReplayFollowTheRuns(t *testing.T) {
	d := startDev(t)
	d.ok("apply", "-f", writeFile(t, t.TempDir(), "report.yaml", reportManifest))

	// A correctly signed GitHub delivery becomes a run that succeeds.
	r := signedSend(d, "gh-secret-one", "gh-evt-1", "robots", "--wait")
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: delivery dlv_") || !strings.Contains(r.Stdout, "topic=robots") || !strings.Contains(r.Stdout, ": succeeded (exit 0)") {
		t.Fatalf("send --wait: %s", r)
	}
	runID := runIDRE.FindStringSubmatch(r.Stdout)[1]
	deliveryID := deliveryIDRE.FindStringSubmatch(r.Stdout)[1]

	// The same event again is a duplicate with the first run's id.
	var ans map[string]any
	d.okJSON(&ans, "send", "report-github-push", "--secret", "gh-secret-one", "--event-id", "gh-evt-1", "-d", `{"topic":"robots"}`, "-o", "json")
	if ans["duplicate"] != true || ans["executionId"] != runID {
		t.Fatalf("duplicate send: %v (first run %s)", ans, runID)
	}
	// A wrong secret is refused: signature_invalid, exit 4.
	checkCode(t, signedSend(d, "wrong-secret", "gh-evt-2", "x"), codeRefused, "signature_invalid", nil)

	// runs watch of a finished run replays its statuses and output.
	out := d.ok("runs", "watch", runID)
	for _, w := range []string{runID + ": queued", runID + ": running (attempt 1)", "topic=robots", runID + ": succeeded (exit 0)"} {
		if !strings.Contains(out, w) {
			t.Fatalf("runs watch lacks %q:\n%s", w, out)
		}
	}
	var runs []map[string]any
	d.okJSON(&runs, "get", "runs", "--webhook", "report-github-push", "-o", "json")
	if len(runs) != 1 || runs[0]["id"] != runID || runs[0]["status"] != "succeeded" || runs[0]["webhook_event_id"] != "gh-evt-1" {
		t.Fatalf("get runs: %v", runs)
	}
	var one map[string]any
	d.okJSON(&one, "get", "run", runID, "-o", "json")
	if one["webhook_payload"] != `{"ref":"refs/heads/main","topic":"robots"}` {
		t.Fatalf("get run: %v", one)
	}

	// replay: a new delivery and a new run of the same body.
	out = d.ok("replay", deliveryID, "--wait")
	if !strings.Contains(out, "replayed "+deliveryID+" as delivery dlv_") || !strings.Contains(out, "topic=robots") || strings.Contains(out, "run "+runID+" ") {
		t.Fatalf("replay --wait:\n%s", out)
	}
	if replayRun := runIDRE.FindStringSubmatch(out)[1]; replayRun == runID {
		t.Fatalf("the replay reused run %s", runID)
	}
	d.expectCode(codeNotFound, "delivery dlv_nope not found", "replay", "dlv_nope")
	// Ids are unique across namespaces: a miss says where it looked.
	d.expectCode(codeNotFound, "looked for in namespace team-z: one of another namespace needs -n", "replay", "dlv_nope", "-n", "team-z")

	// runs watch without RUN polls the newest runs and prints changes.
	watcher := exec.Command(d.bin, "runs", "watch", "--webhook", "report-github-push", "--every", "200ms", "--timeout", "20s")
	watcher.Env = []string{"HOOKRUN_API_URL=" + d.API, "HOOKRUN_ADMIN_TOKEN=" + d.Token}
	var wout testenv.Buffer
	watcher.Stdout, watcher.Stderr = &wout, &wout
	if err := watcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watcher.Process.Kill(); _ = watcher.Wait() })
	testenv.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(wout.String(), runID) {
			return fmt.Errorf("the poller has not shown the existing run yet: %q", wout.String())
		}
		return nil
	})
	r = signedSend(d, "gh-secret-one", "gh-evt-3", "poll")
	newRun := runIDRE.FindStringSubmatch(r.Stdout)[1]
	testenv.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(wout.String(), newRun+"  webhook/report-github-push  job/weekly-report  succeeded") {
			return fmt.Errorf("the poller has not shown %s succeed: %q", newRun, wout.String())
		}
		return nil
	})

	// Replacing the secret keeps the old one valid for previousValidFor.
	d.ok("apply", "-f", writeFile(t, t.TempDir(), "r.yaml", strings.Replace(reportManifest, "gh-secret-one", "gh-secret-two", 1)))
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := signedSend(d, "gh-secret-two", "gh-evt-new-"+time.Now().Format("150405.000"), "new"); r.Code != 0 {
			return fmt.Errorf("new secret: %s", r)
		}
		return nil
	})
	if r := signedSend(d, "gh-secret-one", "gh-evt-old", "old", "--wait"); r.Code != 0 {
		t.Fatalf("the previous secret within its grace: %s", r)
	}

	// A run that fails: send --wait and runs watch exit 6.
	failing := strings.Replace(reportManifest, `echo \"topic=$HOOKRUN_ARG_TOPIC\"`, `echo \"failing $HOOKRUN_ARG_TOPIC\"; exit 3`, 1)
	d.ok("apply", "-f", writeFile(t, t.TempDir(), "f.yaml", failing))
	r = signedSend(d, "gh-secret-two", "gh-evt-fail", "doomed", "--wait")
	checkCode(t, r, codeRunFailed, "ended failed (exit 3)", nil)
	if !strings.Contains(r.Stdout, "failing doomed") {
		t.Fatalf("the failed run's output: %s", r)
	}
	failedRun := runIDRE.FindStringSubmatch(r.Stdout)[1]
	checkCode(t, d.run("runs", "watch", failedRun), codeRunFailed, "ended failed", nil)

	// rotate-secret: a new random value, shown once, at once the only one
	// accepted with --previous-valid-for 0s (a leak): the value it replaced
	// (gh-secret-one, applied again with the failing job) and the one
	// still in its grace (gh-secret-two) are refused.
	out = d.ok("rotate-secret", "github-secret", "--previous-valid-for", "0s")
	rotated := afterColon(lineWith(out, "new value (shown only now):"))
	if !strings.HasPrefix(out, "secret/github-secret rotated") || len(rotated) != 64 || !strings.Contains(out, "previous value valid until: ") {
		t.Fatalf("rotate-secret: %s", out)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		for _, old := range []string{"gh-secret-one", "gh-secret-two"} {
			if r := signedSend(d, old, "gh-evt-leaked-"+time.Now().Format("150405.000"), "leaked"); r.Code != codeRefused || !strings.Contains(r.Stderr, "signature_invalid") {
				return fmt.Errorf("%s, rotated out with no grace: %s", old, r)
			}
		}
		return nil
	})
	if r := signedSend(d, rotated, "gh-evt-rotated", "rotated"); r.Code != 0 {
		t.Fatalf("the rotated value: %s", r)
	}
	// Without the flag, the secret's previousValidFor (1h) applies: once
	// the new value is in use, the one it replaced still works.
	out = d.ok("rotate-secret", "github-secret")
	next := afterColon(lineWith(out, "new value (shown only now):"))
	if next == rotated || len(next) != 64 {
		t.Fatalf("second rotate-secret: %s", out)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := signedSend(d, next, "gh-evt-next-"+time.Now().Format("150405.000"), "next"); r.Code != 0 {
			return fmt.Errorf("the new value: %s", r)
		}
		return nil
	})
	if r := signedSend(d, rotated, "gh-evt-grace", "grace"); r.Code != 0 {
		t.Fatalf("the previous value within the spec's grace: %s", r)
	}
	d.expectCode(codeNotFound, "secret default/nope not found", "rotate-secret", "nope")
	d.expectCode(codeUsage, "must not be negative", "rotate-secret", "github-secret", "--previous-valid-for", "-1s")
}

// Workjet: a compromised secret URL is regenerated; the old URL answers 404.
func TestCLI_RotateEndpointRetiresTheOldURLAtTheIngress(t *testing.T) {
	d := startDev(t)
	out := d.ok("apply", "-f", writeFile(t, t.TempDir(), "w.yaml", `
apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: triage}
spec: {command: ["/bin/sh", "-c", "echo triaged"]}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: tickets}
spec: {job: triage, auth: {none: {}}}
`))
	oldURL := afterColon(lineWith(out, "endpoint:"))
	post := func(u string) int {
		resp, err := http.Post(u, "application/json", bytes.NewReader([]byte(`{"event":"ticket.created"}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if c := post(oldURL); c != 202 {
			return fmt.Errorf("old URL before rotation: %d", c)
		}
		return nil
	})
	out = d.ok("rotate-endpoint", "tickets")
	newURL := afterColon(lineWith(out, "endpoint:"))
	if newURL == oldURL || !strings.HasPrefix(newURL, d.Ingress+"/v1/hooks/ep_") {
		t.Fatalf("rotate-endpoint: %s", out)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if c := post(oldURL); c != 404 {
			return fmt.Errorf("old URL after rotation: %d, want 404", c)
		}
		if c := post(newURL); c != 202 {
			return fmt.Errorf("new URL: %d, want 202", c)
		}
		return nil
	})
	// The stored endpoint is the new one. -o json leaves a secret URL
	// out (it is the webhook's credential); describe shows it.
	if stored := afterColon(lineWith(d.ok("describe", "webhook", "tickets"), "Endpoint:")); stored != newURL {
		t.Fatalf("stored endpoint %s, printed %s", stored, newURL)
	}
	d.expectCode(codeNotFound, "webhook default/nope not found", "rotate-endpoint", "nope")

	// Orloj: a delivery that cannot become a run is refused with a generic
	// message, and the reason lands in the webhook's status.lastError.
	// Deleting the job a webhook uses is allowed, with a warning.
	if del := d.run("delete", "job", "triage"); del.Code != 0 || !strings.Contains(del.Stderr, "Warning: job/triage: webhook tickets triggers it") {
		t.Fatalf("delete of a job a webhook uses: %s", del)
	}
	var r cliResult
	testenv.Eventually(t, 5*time.Second, func() error {
		if r = d.run("send", "tickets", "-d", `{}`); r.Code != codeError {
			return fmt.Errorf("send to a webhook without its job: %s", r)
		}
		return nil
	})
	if !strings.Contains(r.Stderr, "job_not_runnable") {
		t.Fatalf("send to a webhook without its job: %s", r)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		desc := d.ok("describe", "webhook", "tickets")
		if l := lineWith(desc, "Last error:"); strings.Contains(l, "<none>") || !strings.Contains(l, "triage") {
			return fmt.Errorf("describe shows no lastError about the job:\n%s", desc)
		}
		return nil
	})
}

func TestCLI_KeysCreateExtendDeleteAndTheIngressHonoursThem(t *testing.T) {
	d := startDev(t)
	out := d.ok("apply", "-f", writeFile(t, t.TempDir(), "k.yaml", `
apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: deploy}
spec: {command: ["/bin/sh", "-c", "echo deployed"], args: [{name: env, default: staging}]}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: deploy}
spec: {job: deploy, methods: [GET, POST], auth: {apiKey: {}}, response: {status: 200}}
`))
	generated := afterColon(lineWith(out, "generated API key"))
	if !strings.HasPrefix(generated, "hk_") {
		t.Fatalf("apply did not show the generated key:\n%s", out)
	}
	if again := d.ok("apply", "-f", writeFile(t, t.TempDir(), "k.yaml", `
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: deploy}
spec: {job: deploy, methods: [GET, POST], auth: {apiKey: {}}, response: {status: 200}}
`)); strings.Contains(again, "hk_") {
		t.Fatalf("the key was shown again:\n%s", again)
	}
	// Janus: the generated key works in X-API-KEY, and the answer is 200.
	if r := d.run("send", "deploy", "--key", generated, "-d", `{"message":"Hello from webhook"}`, "--wait"); r.Code != 0 || !strings.Contains(r.Stdout, "deployed") {
		t.Fatalf("send with the generated key: %s", r)
	}
	checkCode(t, d.run("send", "deploy", "-d", `{}`), codeUsage, "needs an API key", nil)
	checkCode(t, d.run("send", "deploy", "--key", "hk_nope_nope", "-d", `{}`), codeRefused, "invalid_credentials", nil)

	// Jac Cloud: create with scopes and expiration; shown once, listed without secret.
	var created map[string]any
	d.okJSON(&created, "keys", "create", "ci", "--webhook", "deploy", "--count", "1", "--interval", "hours", "-o", "json")
	key, _ := created["key"].(string)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(key, "hk_"+id+"_") || created["expiresAt"] == nil {
		t.Fatalf("keys create: %v", created)
	}
	list := d.ok("get", "keys")
	if !strings.Contains(list, id) || !strings.Contains(list, "hk_"+id) || strings.Contains(list, key) || !strings.Contains(list, "in 1h") {
		t.Fatalf("get keys:\n%s", list)
	}
	var listed []map[string]any
	d.okJSON(&listed, "keys", "list", "-o", "json")
	if strings.Contains(fmt.Sprint(listed), key) || len(listed) != 2 {
		t.Fatalf("keys list -o json: %v", listed)
	}
	if r := d.runWith([]string{"HOOKRUN_API_KEY=" + key}, "", "send", "deploy", "-d", `{}`); r.Code != 0 {
		t.Fatalf("send with HOOKRUN_API_KEY: %s", r)
	}
	// A key scoped to another webhook is refused here.
	var other map[string]any
	d.okJSON(&other, "keys", "create", "other", "--webhook", "elsewhere", "-o", "json")
	// elsewhere does not exist: the key is made, with a warning on stderr.
	if r := d.run("keys", "create", "third", "--webhook", "elsewhere"); r.Code != 0 || !strings.Contains(r.Stderr, `Warning: key/third: no webhook "elsewhere"`) {
		t.Fatalf("keys create for a webhook that does not exist: %s", r)
	}
	checkCode(t, d.run("send", "deploy", "--key", other["key"].(string), "-d", `{}`), codeRefused, "key_not_allowed", nil)
	// A key for every namespace (the CLI sends its -n as well).
	var everywhere map[string]any
	d.okJSON(&everywhere, "keys", "create", "everywhere", "--all-namespaces", "-o", "json")
	if r := d.run("send", "deploy", "--key", fmt.Sprint(everywhere["key"]), "-d", `{}`); r.Code != 0 {
		t.Fatalf("send with a key for every namespace: %s (created %v)", r, everywhere)
	}

	out = d.ok("keys", "extend", "ci", "--count", "2", "--interval", "days")
	if !strings.Contains(out, "key/"+id+" extended") || !strings.Contains(out, "(in 2d)") {
		t.Fatalf("keys extend: %s", out)
	}
	d.expectCode(codeUsage, "--count", "keys", "extend", "ci")

	out = d.ok("keys", "delete", "ci", other["id"].(string))
	if !strings.Contains(out, "deleted 2 keys") {
		t.Fatalf("keys delete: %s", out)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := d.run("send", "deploy", "--key", key, "-d", `{}`); r.Code != codeRefused {
			return fmt.Errorf("a deleted key still works: %s", r)
		}
		return nil
	})
	d.expectCode(codeNotFound, "API key ci not found", "keys", "delete", "ci")
	d.expectCode(codeNotFound, "API key ci not found", "keys", "extend", "ci", "--count", "1")
}

func TestCLI_ExitCodesAndOneLineErrors(t *testing.T) {
	d := startDev(t)
	dir := t.TempDir()
	invalid := writeFile(t, dir, "invalid.yaml", `
apiVersion: hookrun.dev/v1
kind: Job
metadata: {name: j}
spec: {command: [/bin/true]}
---
apiVersion: hookrun.dev/v1
kind: Webhook
metadata: {name: w}
spec: {job: j, auth: {apiKey: {in: cookie}}}
`)
	cases := []struct {
		name string
		args []string
		env  []string
		code int
		msg  string
	}{
		{"unknown job", []string{"get", "job", "nope"}, nil, codeNotFound, "job default/nope not found"},
		{"unknown run", []string{"get", "run", "run_nope"}, nil, codeNotFound, "run run_nope not found"},
		{"unknown run, its namespace said", []string{"get", "run", "run_nope"}, nil, codeNotFound, "looked for in namespace default"},
		{"unknown webhook to describe", []string{"describe", "webhook", "nope"}, nil, codeNotFound, "not found"},
		{"unknown webhook to send to", []string{"send", "nope"}, nil, codeNotFound, "webhook default/nope not found"},
		{"unknown key", []string{"keys", "delete", "nope"}, nil, codeNotFound, "API key nope not found"},
		{"run watch of nothing", []string{"runs", "watch", "run_nope", "--start-timeout", "0s"}, nil, codeNotFound, "run run_nope not found"},
		{"invalid field", []string{"apply", "-f", invalid}, nil, codeRefused, "webhook/w: spec.auth.apiKey.in: must be one of header, query, path, body"},
		{"unknown kind", []string{"apply", "-f", writeFile(t, dir, "k.yaml", "apiVersion: hookrun.dev/v1\nkind: Cron\nmetadata: {name: x}\n")}, nil, codeRefused, `kind "Cron"`},
		{"not YAML", []string{"apply", "-f", writeFile(t, dir, "y.yaml", "kind: [unclosed\n")}, nil, codeRefused, "not valid YAML"},
		{"wrong token", []string{"get", "jobs"}, []string{"HOOKRUN_ADMIN_TOKEN=wrong"}, codeRefused, "admin token"},
		{"bad namespace", []string{"get", "jobs", "-n", "Not.Valid"}, nil, codeUsage, "--namespace"},
		{"unknown flag", []string{"get", "jobs", "--colour"}, nil, codeUsage, "unknown flag: --colour"},
		{"missing argument", []string{"send"}, nil, codeUsage, "accepts 1 arg"},
		{"unknown resource", []string{"get", "gadgets"}, nil, codeUsage, `cannot get "gadgets"`},
		{"bad output", []string{"get", "jobs", "-o", "xml"}, nil, codeUsage, `-o "xml"`},
		{"apply without -f", []string{"apply"}, nil, codeUsage, "-f FILE|DIR"},
		{"no token", []string{"get", "jobs"}, []string{"HOOKRUN_ADMIN_TOKEN="}, codeUsage, "HOOKRUN_ADMIN_TOKEN"},
		{"API down", []string{"get", "jobs", "--api-url", "http://127.0.0.1:1"}, nil, codeUnavailable, "cannot reach the API"},
		{"missing file", []string{"apply", "-f", dir + "/none.yaml"}, nil, codeError, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := d.runWith(tc.env, "", tc.args...)
			checkCode(t, r, tc.code, tc.msg, tc.args)
		})
	}
	// apply reports every refused document, one line each, and applies the rest.
	r := d.run("apply", "-f", invalid)
	if !strings.Contains(r.Stdout, "job/j unchanged") || strings.Count(r.Stderr, "\n") != 1 {
		t.Fatalf("partial apply: %s", r)
	}
}

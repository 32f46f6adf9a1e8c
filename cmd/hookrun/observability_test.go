package main

// Observability, end to end: the four services as processes, a real
// Prometheus scraping them with deploy/prometheus/prometheus.yml (only the
// service discovery swapped for the test's addresses) and loading
// deploy/prometheus/alerts.yml, traffic that produces every outcome, and then
// every PromQL expression of every Grafana dashboard and every alert rule
// evaluated through Prometheus' HTTP API and compared with what was sent.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/ident"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// promWindow replaces Grafana's $__rate_interval and $__range: longer than
// the whole test, so every increment the test caused is inside the window.
const promWindow = "5m"

// promWindowSeconds is promWindow for Grafana's $__range_s.
const promWindowSeconds = "300"

// Dashboard variable values the panels must show data for: the webhook and
// the job that see the most kinds of traffic below.
const (
	drillWebhook = "default/signed"
	drillJob     = "default/fail"
)

// TestObservability_PromtoolChecks runs promtool on the compose scrape
// config, the alerting rules and the rules' unit tests.
func TestObservability_PromtoolChecks(t *testing.T) {
	promtool := needBinary(t, "promtool")
	dir := filepath.Join(workspaceRoot(t), "deploy", "prometheus")
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(tests) == 0 {
		t.Fatal("no rule unit tests in deploy/prometheus/tests/")
	}
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "rules", filepath.Join(dir, "alerts.yml")},
		append([]string{"test", "rules"}, tests...),
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestObservability_EveryMetricAndAlertDocumented pins docs/OPERATIONS.md to
// the code, the dashboards and the alerts: every metric the services define
// or the dashboards and alerts use is described, every alert has a runbook
// section, and every dashboard query goes to the provisioned datasource.
func TestObservability_EveryMetricAndAlertDocumented(t *testing.T) {
	root := workspaceRoot(t)
	doc := readFile(t, filepath.Join(root, "docs", "OPERATIONS.md"))
	metricName := regexp.MustCompile(`hookrun_[a-z0-9_]+[a-z0-9]`)
	used, envVars := map[string]string{}, map[string]string{}
	defined := regexp.MustCompile(`Name:\s*"(hookrun_[a-z0-9_]+)"`)
	// service.Env*("NAME", …), a {"NAME", &cfg.…} table, os.Getenv("HOOKRUN_…").
	env := regexp.MustCompile(`(?:\bEnv(?:Int|Duration)?\("([A-Z][A-Z0-9_]+)",|\{"([A-Z][A-Z0-9_]+)", &)|(?:Getenv|envDefault|persisted)\("HOOKRUN_([A-Z0-9_]+)"`)
	for _, dir := range []string{"services", "pkg", "cmd/hookrun"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				src, rel := readFile(t, p), strings.TrimPrefix(p, root+"/")
				for _, m := range defined.FindAllStringSubmatch(src, -1) {
					used[m[1]] = rel
				}
				for _, m := range env.FindAllStringSubmatch(src, -1) {
					if !strings.HasPrefix(rel, "pkg/testenv/") { // the tests' own knobs
						envVars["HOOKRUN_"+m[1]+m[2]+m[3]] = rel
					}
				}
			}
			return nil
		})
	}
	for v, where := range envVars {
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("%s (read in %s) is not described in docs/OPERATIONS.md", v, where)
		}
	}
	for _, d := range loadDashboards(t, root) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Datasource.UID != "prometheus" {
					t.Errorf("%s / %q: datasource uid %q, want the provisioned \"prometheus\"", d.file, p.Title, tg.Datasource.UID)
				}
				for _, m := range metricName.FindAllString(tg.Expr, -1) {
					used[baseMetric(m)] = d.file
				}
			}
		}
	}
	for _, r := range loadAlerts(t, root) {
		for _, m := range metricName.FindAllString(r.Expr, -1) {
			used[baseMetric(m)] = "alerts.yml " + r.Alert
		}
		if !regexp.MustCompile(`(?m)^### ` + r.Alert + `\s*$`).MatchString(doc) {
			t.Errorf("alert %s has no runbook: add a section \"### %s\" to docs/OPERATIONS.md", r.Alert, r.Alert)
		}
	}
	for m, where := range used {
		if !strings.Contains(doc, "`"+m+"`") {
			t.Errorf("metric %s (%s) is not described in docs/OPERATIONS.md", m, where)
		}
	}
}

// TestObservability_PanelsAndAlertsAgreeWithTraffic is the proof that every
// panel shows real data from a real Prometheus scraping the real services.
func TestObservability_PanelsAndAlertsAgreeWithTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the services and a Prometheus")
	}
	promBin := needBinary(t, "prometheus")
	root := workspaceRoot(t)
	n := testenv.StartNATS(t)
	s := StartStack(t, n.URL, testenv.RedisURL(t))
	prom := startPrometheus(t, promBin, root, s)
	_, js := n.Connect()

	tr := newTraffic(t, s, js)
	// Two rounds with a scrape between them: a labelled counter is born on
	// its first increment, and rate() needs a later increment to see any.
	for round := 1; round <= 2; round++ {
		tr.round(round)
		tr.waitRunsAndCallbacks()
		prom.waitAgrees(t, tr.want, 20*time.Second)
	}

	for _, d := range loadDashboards(t, root) {
		checkDashboard(t, prom, d, tr)
	}
	checkAlerts(t, prom, loadAlerts(t, root))
}

// ---------------------------------------------------------------- traffic

// traffic sends deliveries and keeps, per Prometheus query, the values the
// services' counters must reach: the tally of what the ingress answered and
// what must follow from it.
type traffic struct {
	t      *testing.T
	s      *Stack
	js     jetstream.JetStream
	paths  map[string]string // webhook name -> endpoint path
	key    string            // API key of webhook "keyed"
	sink   *callbackSink
	runs   map[string]string // run id -> final status to wait for
	want   map[string]map[string]float64
	toSend int // callbacks the sink must have received
}

const (
	qCodes         = `sum by (code) (hookrun_ingress_requests_total)`
	qWebhookCodes  = `sum by (webhook, code) (hookrun_ingress_requests_total)`
	qAuthFailures  = `sum by (webhook, reason) (hookrun_ingress_auth_failures_total)`
	qDuplicates    = `sum by (webhook) (hookrun_ingress_duplicates_total)`
	qAnswered      = `sum(hookrun_ingress_request_duration_seconds_count)`
	qPublished     = `sum(hookrun_ingress_publish_duration_seconds_count)`
	qBodies        = `sum(hookrun_ingress_body_bytes_count)`
	qOutcomes      = `sum by (webhook, outcome) (hookrun_dispatcher_deliveries_total)`
	qDispatched    = `sum(hookrun_dispatcher_accept_to_dispatch_seconds_count)`
	qRuns          = `sum by (job, status) (hookrun_executor_runs_total) > 0` // a job's series start at 0
	qRetries       = `sum by (job) (hookrun_executor_retries_total)`
	qAttempts      = `sum by (job) (hookrun_executor_run_duration_seconds_count)`
	qStarted       = `sum by (job) (hookrun_executor_accept_to_start_seconds_count)`
	qFinished      = `sum by (job) (hookrun_executor_accept_to_finish_seconds_count)`
	qCallbacks     = `sum by (outcome) (hookrun_executor_callbacks_total)`
	qRunning       = `sum(hookrun_executor_running_runs)`
	qDeliveryQueue = `max by (stream, consumer) (hookrun_consumer_pending_messages{stream="DELIVERIES"})`
	qRunQueues     = `max by (consumer) (hookrun_consumer_pending_messages{stream="RUNS",consumer=~"job_default_(ok|fail|slow|needsref)"})`
	// Every job but the deleted "gone" has a queue; gone's series went with it.
	qQueued = `max by (job) (hookrun_executor_queued_runs)`
	// The keys API routes only this test calls: the route template, never
	// the URL, and the status the error handler wrote.
	qKeysRequests = `sum by (route, method, code) (hookrun_keys_requests_total{route=~"/v1/jobs/:name|unmatched"})`
	qKeysTimed    = `sum by (route) (hookrun_keys_request_duration_seconds_count{route=~"/v1/jobs/:name|unmatched"})`
)

func newTraffic(t *testing.T, s *Stack, js jetstream.JetStream) *traffic {
	tr := &traffic{t: t, s: s, js: js, paths: map[string]string{}, runs: map[string]string{},
		sink: newCallbackSink(t), want: map[string]map[string]float64{}}
	tr.add(qRunning, "", 0)
	tr.add(qDeliveryQueue, "consumer=dispatcher,stream=DELIVERIES", 0)
	for _, j := range []string{"ok", "fail", "slow", "needsref"} { // executors poll every 5s
		tr.add(qRunQueues, "consumer=job_default_"+j, 0)
		tr.add(qQueued, "job=default/"+j, 0)
	}

	mustPut := func(path string, doc map[string]any, out any) {
		t.Helper()
		if code := s.API("PUT", path, doc, out); code != 201 {
			t.Fatalf("PUT %s: HTTP %d", path, code)
		}
		if strings.HasPrefix(path, "/v1/jobs/") {
			tr.addKeys("PUT", "/v1/jobs/:name", 201)
		}
	}
	okJob := job("ok", "/bin/sh", "-c", "echo ok")
	failJob := job("fail", "/bin/sh", "-c", "echo failing; exit 7")
	failJob["spec"].(map[string]any)["retries"] = 1
	failJob["spec"].(map[string]any)["retryBackoff"] = "100ms"
	slowJob := job("slow", "sleep", "30")
	slowJob["spec"].(map[string]any)["timeout"] = "1s"
	refJob := job("needsref", "/bin/sh", "-c", `echo "ref=$HOOKRUN_ARG_REF"`)
	refJob["spec"].(map[string]any)["args"] = []map[string]any{{"name": "ref", "value": "{{ .body.ref }}"}}
	for _, j := range []map[string]any{okJob, failJob, slowJob, refJob, job("gone", "/bin/true")} {
		mustPut("/v1/jobs/"+j["metadata"].(map[string]any)["name"].(string), j, nil)
	}
	mustPut("/v1/secrets/s", map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Secret",
		"metadata": map[string]any{"name": "s"}, "spec": map[string]any{"value": "obs-secret"}}, nil)

	none := map[string]any{"none": map[string]any{}}
	open := webhook("open", "ok", none)
	open["spec"].(map[string]any)["callback"] = map[string]any{"url": tr.sink.URL}
	signed := webhook("signed", "ok", map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "s"}})
	signed["spec"].(map[string]any)["filter"] = `body.kind == "go"`
	for _, w := range []map[string]any{open, signed, webhook("keyed", "fail", map[string]any{"apiKey": map[string]any{"in": "header", "name": "X-API-KEY"}}),
		webhook("slow", "slow", none), webhook("templated", "needsref", none), webhook("orphan", "gone", none)} {
		var ans struct {
			Status       struct{ EndpointPath string } `json:"status"`
			GeneratedKey *struct{ Key string }         `json:"generatedKey"`
		}
		name := w["metadata"].(map[string]any)["name"].(string)
		mustPut("/v1/webhooks/"+name, w, &ans)
		tr.paths[name] = ans.Status.EndpointPath
		if ans.GeneratedKey != nil {
			tr.key = ans.GeneratedKey.Key
		}
	}
	if tr.key == "" {
		t.Fatal("PUT webhook keyed answered no generatedKey")
	}
	// A webhook whose job is deleted answers 500 job_not_runnable.
	if code := s.API("DELETE", "/v1/jobs/gone", nil, nil); code != 200 {
		t.Fatalf("DELETE job gone: HTTP %d", code)
	}
	tr.addKeys("DELETE", "/v1/jobs/:name", 200)
	return tr
}

func (tr *traffic) add(query, labels string, n float64) {
	if tr.want[query] == nil {
		tr.want[query] = map[string]float64{}
	}
	tr.want[query][labels] += n
}

// round sends one delivery of every kind. Configuration reaches the ingress
// through KV watches, so the first delivery of a kind is repeated until the
// ingress answers as configured; every answer, early ones too, is tallied.
func (tr *traffic) round(r int) {
	t := tr.t
	for i := 0; i < 3; i++ {
		tr.sendUntil(202, "open", fmt.Sprintf(`{"round":%d,"n":%d}`, r, i), nil)
	}
	goEvent := fmt.Sprintf("evt-%d-go", r)
	goBody := fmt.Sprintf(`{"kind":"go","round":%d}`, r)
	ans := tr.sendUntil(202, "signed", goBody, tr.signed(goBody, "obs-secret", goEvent))
	if code, dup := tr.send("signed", goBody, tr.signed(goBody, "obs-secret", goEvent)); code != 202 || dup["duplicate"] != true {
		t.Fatalf("same X-Event-Id again: HTTP %d %v, want 202 duplicate", code, dup)
	}
	stopBody := `{"kind":"stop"}`
	tr.expect(202, "signed", stopBody, tr.signed(stopBody, "obs-secret", fmt.Sprintf("evt-%d-stop", r)))
	for i := 0; i < 2; i++ {
		tr.expect(401, "signed", goBody, tr.signed(goBody, "not-the-secret", fmt.Sprintf("evt-%d-bad-%d", r, i)))
	}
	tr.sendUntil(202, "keyed", `{}`, map[string]string{"X-API-KEY": tr.key})
	tr.expect(401, "keyed", `{}`, nil)
	tr.expect(401, "keyed", `{}`, map[string]string{"X-API-KEY": "hrk_not_a_key"})
	tr.sendUntil(202, "slow", `{}`, nil)
	tr.sendUntil(202, "templated", `{"ref":"main"}`, nil)
	tr.expect(202, "templated", `{}`, nil)
	tr.sendUntil(500, "orphan", `{}`, nil)
	tr.expect(404, "", `{}`, nil)
	tr.lateRetry(ans["deliveryId"].(string))

	tr.keysAPI(200, "/v1/jobs/ok", "/v1/jobs/:name", true)
	tr.keysAPI(401, "/v1/jobs/ok", "/v1/jobs/:name", false)
	tr.keysAPI(404, "/v1/jobs/nope", "/v1/jobs/:name", true)
	tr.keysAPI(404, "/v1/nope", "unmatched", true)
}

// keysAPI GETs path from the keys API, with the admin token or without,
// and tallies the answer under the route the keys service labels it with.
func (tr *traffic) keysAPI(want int, path, route string, token bool) {
	tr.t.Helper()
	req, _ := http.NewRequest("GET", tr.s.Keys+path, nil)
	if token {
		req.Header.Set("Authorization", "Bearer "+tr.s.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tr.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		tr.t.Fatalf("GET %s: HTTP %d, want %d", path, resp.StatusCode, want)
	}
	tr.addKeys("GET", route, want)
}

func (tr *traffic) addKeys(method, route string, code int) {
	tr.add(qKeysRequests, "code="+strconv.Itoa(code)+",method="+method+",route="+route, 1)
	tr.add(qKeysTimed, "route="+route, 1)
}

// signed returns generic-profile signature headers.
func (tr *traffic) signed(body, secret, eventID string) map[string]string {
	p, ok := signature.Lookup("generic")
	if !ok {
		tr.t.Fatal("no generic signature profile")
	}
	h := map[string]string{}
	for k, v := range p.Sign([]byte(body), secret, eventID, time.Now()) {
		h[k] = v[0]
	}
	return h
}

func (tr *traffic) expect(want int, webhook, body string, hdr map[string]string) map[string]any {
	tr.t.Helper()
	code, ans := tr.send(webhook, body, hdr)
	if code != want {
		tr.t.Fatalf("delivery to %q: HTTP %d %v, want %d", webhook, code, ans, want)
	}
	return ans
}

func (tr *traffic) sendUntil(want int, webhook, body string, hdr map[string]string) map[string]any {
	tr.t.Helper()
	var ans map[string]any
	testenv.Eventually(tr.t, 10*time.Second, func() error {
		var code int
		if code, ans = tr.send(webhook, body, hdr); code != want {
			return fmt.Errorf("delivery to %q: HTTP %d %v, want %d", webhook, code, ans, want)
		}
		return nil
	})
	return ans
}

// send delivers once and tallies the answer and everything it implies.
func (tr *traffic) send(webhook, body string, hdr map[string]string) (int, map[string]any) {
	path := "/v1/hooks/ep_doesnotexist"
	if webhook != "" {
		path = tr.paths[webhook]
	}
	code, ans := tr.s.Deliver(path, body, hdr)
	label := "default/" + webhook
	if code == 404 {
		label = "_unknown"
	}
	c := strconv.Itoa(code)
	tr.add(qCodes, "code="+c, 1)
	tr.add(qWebhookCodes, "code="+c+",webhook="+label, 1)
	tr.add(qAnswered, "", 1)
	if code == 401 || code == 403 {
		reason, _ := ans["error"].(map[string]any)["code"].(string)
		tr.add(qAuthFailures, "reason="+reason+",webhook="+label, 1)
	}
	if code/100 != 2 {
		return code, ans
	}
	tr.add(qPublished, "", 1)
	tr.add(qBodies, "", 1)
	if ans["duplicate"] == true {
		tr.add(qDuplicates, "webhook="+label, 1)
		return code, ans
	}
	outcome := "dispatched"
	switch {
	case webhook == "signed" && !strings.Contains(body, `"kind":"go"`):
		outcome = "filtered"
	case webhook == "templated" && !strings.Contains(body, `"ref"`):
		outcome = "failed"
	}
	tr.add(qOutcomes, "outcome="+outcome+",webhook="+label, 1)
	if outcome != "dispatched" {
		return code, ans
	}
	tr.add(qDispatched, "", 1)
	jobName, status, attempts := map[string]string{"open": "ok", "signed": "ok", "keyed": "fail", "slow": "slow", "templated": "needsref"}[webhook], "succeeded", 1
	switch jobName {
	case "fail":
		status, attempts = "failed", 2 // retries: 1
		tr.add(qRetries, "job=default/fail", 1)
	case "slow":
		status = "timed_out"
	}
	j := "job=default/" + jobName
	tr.add(qRuns, j+",status="+status, 1)
	tr.add(qAttempts, j, float64(attempts))
	tr.add(qStarted, j, float64(attempts))
	tr.add(qFinished, j, 1)
	tr.runs[ans["executionId"].(string)] = status
	if webhook == "open" {
		tr.toSend++
		tr.add(qCallbacks, "outcome=success", 1)
	}
	return code, ans
}

// lateRetry stores the same event as a delivery again the way a sender's
// retry after JetStream's 2-minute duplicate window arrives (a new
// Nats-Msg-Id), without waiting 2 minutes: only the dispatcher's Redis claim
// can recognise it.
func (tr *traffic) lateRetry(deliveryID string) {
	t := tr.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := tr.js.Stream(ctx, bus.StreamDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, bus.DeliverySubject("default", "signed", deliveryID))
	if err != nil {
		t.Fatalf("delivery %s: %v", deliveryID, err)
	}
	var d message.Delivery
	if err := json.Unmarshal(raw.Data, &d); err != nil {
		t.Fatal(err)
	}
	d.ID, d.ReceivedAt = ident.NewDeliveryID(), time.Now().UTC()
	m := nats.NewMsg(bus.DeliverySubject(d.Namespace, d.Webhook, d.ID))
	m.Data, _ = json.Marshal(&d)
	m.Header.Set(bus.HeaderSchema, message.SchemaDelivery)
	if _, err := tr.js.PublishMsg(ctx, m, jetstream.WithMsgID(d.ID)); err != nil {
		t.Fatal(err)
	}
	tr.add(qOutcomes, "outcome=duplicate,webhook=default/signed", 1)
}

func (tr *traffic) waitRunsAndCallbacks() {
	for id, status := range tr.runs {
		tr.s.WaitRun(id, status, 20*time.Second)
	}
	testenv.Eventually(tr.t, 15*time.Second, func() error {
		if got := tr.sink.successes(); got != tr.toSend {
			return fmt.Errorf("callbacks received: %d, want %d", got, tr.toSend)
		}
		return nil
	})
	tr.want[qCallbacks]["outcome=retry"] = 1  // the sink refuses the very first callback once
	tr.want[qCallbacks]["outcome=failed"] = 0 // every outcome's series exists from the executor's start
	tr.want[qCallbacks]["outcome=dropped"] = 0
}

// callbackSink receives run callbacks; it answers the first one 500 so the
// executor retries it.
type callbackSink struct {
	*httptest.Server
	mu        sync.Mutex
	calls, ok int
}

func newCallbackSink(t *testing.T) *callbackSink {
	c := &callbackSink{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.calls++; c.calls == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		c.ok++
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *callbackSink) successes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok
}

// ---------------------------------------------------------------- Prometheus

// promServer is a running Prometheus.
type promServer struct {
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
}

func (p *promServer) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startPrometheus runs the prometheus binary with the compose scrape config,
// its DNS service discovery replaced by the stack's addresses, every
// interval at 1s, and the project's alerting rules.
func startPrometheus(t *testing.T, bin, root string, s *Stack) *promServer {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))), &cfg); err != nil {
		t.Fatalf("deploy/prometheus/prometheus.yml: %v", err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []string{filepath.Join(root, "deploy", "prometheus", "alerts.yml")}
	for _, sc := range cfg["scrape_configs"].([]any) {
		sc := sc.(map[string]any)
		name := sc["job_name"].(string)
		target := addr
		if name != "prometheus" {
			p, ok := s.Procs[strings.TrimPrefix(name, "hookrun-")]
			if !ok {
				t.Fatalf("prometheus.yml scrape job %q: no service of the stack to point it at", name)
			}
			target = p.addr
		}
		delete(sc, "dns_sd_configs")
		sc["static_configs"] = []map[string]any{{"targets": []string{target}}}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &promServer{url: "http://" + addr}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = lockedWriter{&p.mu, &p.logs}, lockedWriter{&p.mu, &p.logs}
	testenv.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- prometheus config ---\n%s\n--- prometheus logs ---\n%s", b, tail(p.Logs(), 4000))
		}
	})
	// Every target up, the rules loaded.
	testenv.Eventually(t, 30*time.Second, func() error {
		var targets struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := p.api("/api/v1/targets", nil, &targets); err != nil {
			return err
		}
		if len(targets.ActiveTargets) != len(cfg["scrape_configs"].([]any)) {
			return fmt.Errorf("%d active targets", len(targets.ActiveTargets))
		}
		for _, tg := range targets.ActiveTargets {
			if tg.Health != "up" {
				return fmt.Errorf("target %s: %s %s", tg.Labels["job"], tg.Health, tg.LastError)
			}
		}
		return nil
	})
	return p
}

func (p *promServer) api(path string, q url.Values, out any) error {
	u := p.url + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates expr now; an invalid expression or a result that is not
// an instant vector is an error.
func (p *promServer) query(expr string) ([]sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", data.ResultType)
	}
	out := make([]sample, len(data.Result))
	for i, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("value %v: %w", r.Value[1], err)
		}
		out[i] = sample{Metric: r.Metric, Value: v}
	}
	return out, nil
}

// byLabels keys samples by their labels, "a=x,b=y" in label order.
func byLabels(ss []sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		var kv []string
		for k, v := range s.Metric {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		out[strings.Join(kv, ",")] = s.Value
	}
	return out
}

// waitAgrees polls until every query returns exactly the wanted values.
func (p *promServer) waitAgrees(t *testing.T, want map[string]map[string]float64, total time.Duration) {
	t.Helper()
	testenv.Eventually(t, total, func() error {
		var diffs []string
		for q, w := range want {
			ss, err := p.query(q)
			if err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			if got := byLabels(ss); !mapsEqual(got, w) {
				diffs = append(diffs, fmt.Sprintf("%s\n    got  %v\n    want %v", q, got, w))
			}
		}
		if len(diffs) > 0 {
			sort.Strings(diffs)
			return fmt.Errorf("Prometheus disagrees with the traffic sent:\n  %s", strings.Join(diffs, "\n  "))
		}
		return nil
	})
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- dashboards

type dashboard struct {
	file       string
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"` // "label_values(…)" or {"query": "label_values(…)"}
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of collapsed rows
}

func loadDashboards(t *testing.T, root string) []dashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if len(files) < 3 {
		t.Fatalf("deploy/grafana/dashboards: %d dashboards, want overview, webhook and job", len(files))
	}
	var out []dashboard
	uids := map[string]bool{}
	for _, f := range files {
		var d dashboard
		if err := json.Unmarshal([]byte(readFile(t, f)), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		if d.UID == "" || uids[d.UID] {
			t.Fatalf("%s: uid %q empty or not unique", d.file, d.UID)
		}
		uids[d.UID] = true
		var flat []panel
		ids := map[int]bool{}
		for _, p := range d.Panels {
			for _, q := range append([]panel{p}, p.Panels...) {
				if ids[q.ID] {
					t.Errorf("%s: panel id %d used twice", d.file, q.ID)
				}
				ids[q.ID] = true
				if q.Type != "row" {
					flat = append(flat, q)
				}
			}
		}
		d.Panels = flat
		out = append(out, d)
	}
	return out
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// checkDashboard evaluates every target of every panel: for the drill-down
// values each must return finite data; for every other value of the
// dashboard's variable each must at least be valid PromQL.
func checkDashboard(t *testing.T, p *promServer, d dashboard, tr *traffic) {
	vars := map[string][]string{}
	chosen := map[string]string{"webhook": drillWebhook, "job": drillJob}
	for _, v := range d.Templating.List {
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct{ Query string }
			_ = json.Unmarshal(v.Query, &obj)
			q = obj.Query
		}
		m := labelValuesRE.FindStringSubmatch(q)
		if v.Type != "query" || m == nil {
			t.Fatalf("%s: variable %s: want a query variable label_values(selector, label), got %s", d.file, v.Name, v.Query)
		}
		var series []map[string]string
		if err := p.api("/api/v1/series", url.Values{"match[]": {m[1]}}, &series); err != nil {
			t.Fatalf("%s: variable %s: %v", d.file, v.Name, err)
		}
		for _, s := range series {
			if val := s[m[2]]; val != "" && !slices.Contains(vars[v.Name], val) {
				vars[v.Name] = append(vars[v.Name], val)
			}
		}
		if !slices.Contains(vars[v.Name], chosen[v.Name]) {
			t.Fatalf("%s: variable %s offers %v, not %q", d.file, v.Name, vars[v.Name], chosen[v.Name])
		}
	}
	// One evaluation per value combination; the drill-down one comes first.
	combos := []map[string]string{{}}
	for name := range vars {
		combos[0][name] = chosen[name]
		for _, val := range vars[name] {
			if val != chosen[name] {
				combos = append(combos, map[string]string{name: val})
			}
		}
	}
	for i, combo := range combos {
		for _, pn := range d.Panels {
			for _, tg := range pn.Targets {
				expr := substitute(tg.Expr, combo)
				if strings.Contains(expr, "$__") || regexp.MustCompile(`\$\{?[a-zA-Z]`).MatchString(expr) {
					t.Errorf("%s / %q: unsubstituted variable in %s", d.file, pn.Title, expr)
					continue
				}
				ss, err := p.query(expr)
				switch {
				case err != nil:
					t.Errorf("%s / %q %v: %s: %v", d.file, pn.Title, combo, expr, err)
				case i > 0:
				case len(ss) == 0:
					t.Errorf("%s / %q %v: no data: %s", d.file, pn.Title, combo, expr)
				default:
					for _, s := range ss {
						if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
							t.Errorf("%s / %q %v: %v is %v: %s", d.file, pn.Title, combo, s.Metric, s.Value, expr)
						}
					}
				}
			}
		}
	}
	checkPanelLabels(t, p, d, combos[0], tr)
}

// checkPanelLabels compares the series the main breakdown panels show with
// the traffic: one series per answer code, auth failure reason, dispatcher
// outcome and run status that the test caused, and no other.
func checkPanelLabels(t *testing.T, p *promServer, d dashboard, combo map[string]string, tr *traffic) {
	values := func(query, label string, keep func(string) bool) []string {
		var out []string
		for k := range tr.want[query] {
			for _, kv := range strings.Split(k, ",") {
				name, v, _ := strings.Cut(kv, "=")
				if name == label && keep(k) && !slices.Contains(out, v) {
					out = append(out, v)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	all := func(string) bool { return true }
	of := func(label, v string) func(string) bool {
		return func(k string) bool { return slices.Contains(strings.Split(k, ","), label+"="+v) }
	}
	want := map[string]struct {
		label  string
		values []string
	}{
		"hookrun-overview.json/Deliveries by answer":    {"code", values(qCodes, "code", all)},
		"hookrun-overview.json/Auth failures by reason": {"reason", values(qAuthFailures, "reason", all)},
		"hookrun-overview.json/Dispatcher outcomes":     {"outcome", values(qOutcomes, "outcome", all)},
		"hookrun-overview.json/Runs by final status":    {"status", values(qRuns, "status", all)},
		"hookrun-webhook.json/Answers by code":          {"code", values(qWebhookCodes, "code", of("webhook", drillWebhook))},
		"hookrun-webhook.json/Auth failures by reason":  {"reason", values(qAuthFailures, "reason", of("webhook", drillWebhook))},
		"hookrun-webhook.json/Dispatcher outcomes":      {"outcome", values(qOutcomes, "outcome", of("webhook", drillWebhook))},
		"hookrun-job.json/Runs by final status":         {"status", values(qRuns, "status", of("job", drillJob))},
		// The panel shows every API route; the others this test calls
		// (GET /v1/runs/:id, PUT of secrets and webhooks) answer 200,
		// 201 or 404 too.
		"hookrun-overview.json/Keys API requests by code": {"code", values(qKeysRequests, "code", all)},
	}
	for _, pn := range d.Panels {
		w, ok := want[d.file+"/"+pn.Title]
		if !ok {
			continue
		}
		delete(want, d.file+"/"+pn.Title)
		ss, err := p.query(substitute(pn.Targets[0].Expr, combo))
		if err != nil {
			t.Errorf("%s / %q: %v", d.file, pn.Title, err)
			continue
		}
		var got []string
		for _, s := range ss {
			// A series at 0 of a value the traffic did not have is a
			// flat line: counters made before their first event (a
			// job's run statuses) show so.
			if s.Value != 0 || slices.Contains(w.values, s.Metric[w.label]) {
				got = append(got, s.Metric[w.label])
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, w.values) {
			t.Errorf("%s / %q shows %s %v, the traffic had %v", d.file, pn.Title, w.label, got, w.values)
		}
	}
	for k := range want {
		if strings.HasPrefix(k, d.file+"/") {
			t.Errorf("%s: no panel %q", d.file, strings.TrimPrefix(k, d.file+"/"))
		}
	}
}

// substitute replaces Grafana's variables the way Grafana would
// ($__range_s before $__range: the replacer takes the first that matches).
func substitute(expr string, vars map[string]string) string {
	pairs := []string{"$__rate_interval", promWindow, "$__range_s", promWindowSeconds, "$__range", promWindow, "$__interval", "15s"}
	for name, v := range vars {
		pairs = append(pairs, "${"+name+"}", v, "$"+name, v)
	}
	return strings.NewReplacer(pairs...).Replace(expr)
}

// ---------------------------------------------------------------- alerts

type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func loadAlerts(t *testing.T, root string) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "deploy", "prometheus", "alerts.yml"))), &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

// quietWhenHealthy are the alerts about a broken stack: on this healthy
// one their expressions must be empty.
var quietWhenHealthy = []string{"HookrunServiceDown", "HookrunServiceNotReady", "HookrunDispatcherNotReady",
	"HookrunDispatcherAbsent", "HookrunIngressAbsent", "HookrunExecutorAbsent", "HookrunKeysAbsent", "HookrunDispatcherPaused", "HookrunNATSDisconnected", "HookrunRedisDisconnected", "HookrunExecutorSaturated"}

// emptyParts are alert conditions the test cannot produce in a minute.
var emptyParts = map[string]string{
	"HookrunCallbacksFailing":     "a callback is given up only after its whole retry schedule, about a day",
	"HookrunRedisMemoryHigh":      "only with a Redis maxmemory, which the test's Redis (shared) does not set",
	"HookrunJetStreamStorageHigh": "only with an account JetStream storage limit, which the test's NATS does not set",
}

var (
	selectorRE   = regexp.MustCompile(`\b(hookrun_[a-z0-9_]+|up)\s*(\{[^}]*\})?`)
	thresholdRE  = regexp.MustCompile(`\s*(>=|<=|==|!=|>|<)\s*[0-9.]+\s*$`)
	conjunctions = regexp.MustCompile(`^\s*(and|or|unless)(\s+on\s*\([^)]*\))?\s+`)
)

// checkAlerts evaluates every rule's expression (it must be valid), every
// part of it between and/or/unless without its threshold (each must return
// data: the signal the alert watches exists), and every metric selector in
// it; then it checks that Prometheus itself evaluates every rule without
// error.
func checkAlerts(t *testing.T, p *promServer, rules []alertRule) {
	for _, r := range rules {
		ss, err := p.query(r.Expr)
		if err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
			continue
		}
		if slices.Contains(quietWhenHealthy, r.Alert) && len(ss) > 0 {
			t.Errorf("alert %s would fire on a healthy stack: %v", r.Alert, ss)
		}
		for _, part := range splitTopLevel(r.Expr) {
			part = strings.TrimSpace(thresholdRE.ReplaceAllString(strings.TrimSpace(part), ""))
			if strings.HasPrefix(part, "absent(") {
				continue // empty by design while things are fine
			}
			ss, err := p.query(part)
			if err != nil {
				t.Errorf("alert %s: part %s: %v", r.Alert, part, err)
			} else if _, ok := emptyParts[r.Alert]; len(ss) == 0 && !ok {
				t.Errorf("alert %s: part without threshold returns no data: %s", r.Alert, part)
			}
		}
		for _, m := range selectorRE.FindAllString(r.Expr, -1) {
			name, _, _ := strings.Cut(m, "{")
			if ss, err := p.query(fmt.Sprintf("count(%s)", strings.TrimSpace(name))); err != nil || len(ss) == 0 {
				t.Errorf("alert %s: metric %s has no series (%v)", r.Alert, name, err)
			}
		}
	}
	var data struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", nil, &data); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health != "ok" {
				t.Errorf("Prometheus evaluates alert %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if loaded != len(rules) {
		t.Errorf("Prometheus loaded %d rules, alerts.yml has %d", loaded, len(rules))
	}
}

// splitTopLevel splits a PromQL expression at and/or/unless outside
// parentheses, and strips parentheses around a whole part.
func splitTopLevel(expr string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '(':
			depth++
		case ')':
			depth--
		case '"':
			for i++; i < len(expr) && expr[i] != '"'; i++ {
			}
		default:
			if depth == 0 && (i == 0 || expr[i-1] == ' ' || expr[i-1] == '\n') {
				if m := conjunctions.FindStringIndex(expr[i:]); m != nil {
					parts = append(parts, expr[start:i])
					start = i + m[1]
					i = start - 1
				}
			}
		}
	}
	parts = append(parts, expr[start:])
	for i, p := range parts {
		p = strings.TrimSpace(p)
		for strings.HasPrefix(p, "(") && strings.HasSuffix(p, ")") && balanced(p[1:len(p)-1]) {
			p = strings.TrimSpace(p[1 : len(p)-1])
		}
		parts[i] = p
	}
	return parts
}

func balanced(s string) bool {
	depth := 0
	for _, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// ---------------------------------------------------------------- helpers

// needBinary returns the path of a Prometheus binary; without it the test
// is skipped, or fails under CI=true (.ci/run installs Debian's prometheus).
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not on PATH: install it (apt-get install prometheus) to run the observability tests", name)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// baseMetric strips a histogram's series suffix.
func baseMetric(m string) string {
	for _, s := range []string{"_bucket", "_count", "_sum"} {
		if strings.HasSuffix(m, s) && (strings.HasSuffix(m, "_seconds"+s) || strings.HasSuffix(m, "_bytes"+s) || strings.HasSuffix(m, "_size"+s)) {
			return strings.TrimSuffix(m, s)
		}
	}
	return m
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/signature"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// TestSecurity_NoCredentialInLogsStreamsOrJobs sends a delivery through
// every auth mode and then searches everything Hookrun wrote — every
// service's logs, every message in DELIVERIES, RUNS and STATUS, and the
// environment the job saw — for the credentials and secrets used.
func TestSecurity_NoCredentialInLogsStreamsOrJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	n := testenv.StartSecuredNATS(t)
	s := StartStackOn(t, n, testenv.RedisURL(t))
	t.Cleanup(func() {
		if v := n.Violations(); len(v) > 0 {
			t.Errorf("NATS permission violations:\n%s", strings.Join(v, "\n"))
		}
	})

	const genericSecret = "generic-secret-VALUE-7f3a9c"
	const githubSecret = "github-secret-VALUE-4b2e8d"
	for name, v := range map[string]string{"gen": genericSecret, "gh": githubSecret} {
		sec := map[string]any{"apiVersion": "hookrun.dev/v1", "kind": "Secret", "metadata": map[string]any{"name": name}, "spec": map[string]any{"value": v}}
		if code := s.API("PUT", "/v1/secrets/"+name, sec, nil); code >= 300 {
			t.Fatalf("PUT secret %s: %d", name, code)
		}
	}
	// The job prints its whole environment: the output lands in STATUS.
	if code := s.API("PUT", "/v1/jobs/env", job("env", "/usr/bin/env"), nil); code >= 300 {
		t.Fatalf("PUT job: %d", code)
	}
	type mode struct {
		name string
		auth map[string]any
	}
	modes := []mode{
		{"url", map[string]any{"none": map[string]any{}}},
		{"hdr", map[string]any{"apiKey": map[string]any{"in": "header", "name": "X-API-KEY"}}},
		{"qry", map[string]any{"apiKey": map[string]any{"in": "query", "name": "api_key"}}},
		{"pth", map[string]any{"apiKey": map[string]any{"in": "path", "name": "key"}}},
		{"bdy", map[string]any{"apiKey": map[string]any{"in": "body", "name": "api_key"}}},
		{"gen", map[string]any{"signature": map[string]any{"profile": "generic", "secretRef": "gen"}}},
		{"gh", map[string]any{"signature": map[string]any{"profile": "github", "secretRef": "gh"}}},
	}
	var secrets = []string{genericSecret, githubSecret, "Bearer " + s.Token, s.Token}
	var runIDs []string
	for _, m := range modes {
		var w struct {
			Status       struct{ EndpointID, EndpointPath string } `json:"status"`
			GeneratedKey *struct{ Key string }                     `json:"generatedKey"`
		}
		if code := s.API("PUT", "/v1/webhooks/"+m.name, webhook(m.name, "env", m.auth), &w); code >= 300 {
			t.Fatalf("PUT webhook %s: %d", m.name, code)
		}
		body := `{"hello":"world"}`
		url := s.Ingress + "/v1/hooks/" + w.Status.EndpointID
		hdr := map[string]string{"Authorization": "Bearer sender-bearer-SECRET", "Cookie": "session=cookie-SECRET"}
		secrets = append(secrets, "sender-bearer-SECRET", "cookie-SECRET")
		now := time.Now()
		switch m.name {
		case "hdr":
			hdr["X-API-KEY"] = w.GeneratedKey.Key
		case "qry":
			url += "?api_key=" + w.GeneratedKey.Key + "&keep=1"
		case "pth":
			url += "/" + w.GeneratedKey.Key
		case "bdy":
			body = `{"hello":"world","api_key":"` + w.GeneratedKey.Key + `"}`
		case "gen":
			for k, v := range mustProfile("generic").Sign([]byte(body), genericSecret, "evt-gen", now) {
				hdr[k] = v[0]
				if k == "X-Signature" {
					secrets = append(secrets, strings.TrimPrefix(v[0], "sha256="))
				}
			}
		case "gh":
			for k, v := range mustProfile("github").Sign([]byte(body), githubSecret, "evt-gh", now) {
				hdr[k] = v[0]
				if k == "X-Hub-Signature-256" {
					secrets = append(secrets, strings.TrimPrefix(v[0], "sha256="))
				}
			}
		}
		if w.GeneratedKey != nil {
			secrets = append(secrets, w.GeneratedKey.Key)
		}
		var ans map[string]any
		testenv.Eventually(t, 5*time.Second, func() error {
			code, a := postTo(t, url, body, hdr)
			ans = a
			if code != 202 {
				return fmt.Errorf("%s: %d %v", m.name, code, a)
			}
			return nil
		})
		runIDs = append(runIDs, ans["executionId"].(string))
	}
	for _, id := range runIDs {
		r := s.WaitRun(id, "succeeded", 20*time.Second)
		if !strings.Contains(r.Output, "HOOKRUN_RUN_ID=") {
			t.Fatalf("the env job printed no environment: %q", r.Output)
		}
		for _, leak := range []string{"HOOKRUN_SECRET_KEY", "HOOKRUN_ADMIN_TOKENS", "HOOKRUN_NATS_URL", "HOOKRUN_REDIS_URL"} {
			if strings.Contains(r.Output, leak) {
				t.Errorf("the job's environment holds the executor's %s", leak)
			}
		}
	}

	var haystacks []string
	for name, p := range s.Procs {
		haystacks = append(haystacks, "log of "+name+":\n"+p.Logs())
	}
	_, js := n.Connect()
	for _, stream := range []string{"DELIVERIES", "RUNS", "STATUS"} {
		haystacks = append(haystacks, dumpStream(t, js, stream))
	}
	for _, h := range haystacks {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(h, sec) {
				t.Errorf("credential %q found in %s", sec[:min(8, len(sec))]+"…", h[:min(40, len(h))])
			}
		}
	}
	if !strings.Contains(haystacks[len(haystacks)-3], "keep") {
		t.Errorf("the stored query lost its non-credential parameter")
	}
}

func mustProfile(name string) signature.Profile {
	p, _ := signature.Lookup(name)
	return p
}

func postTo(t *testing.T, url, body string, hdr map[string]string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = jsonDecode(resp.Body, &m)
	return resp.StatusCode, m
}

// dumpStream returns every message of a stream (subject, headers, data) as text.
func dumpStream(t *testing.T, js jetstream.JetStream, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	var b strings.Builder
	b.WriteString("stream " + name + ":\n")
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %v %s\n", m.Subject, m.Header, m.Data)
		// Bodies are base64 in JSON: search the decoded form too.
		b.WriteString(decodeB64Fields(m.Data))
	}
	return b.String()
}

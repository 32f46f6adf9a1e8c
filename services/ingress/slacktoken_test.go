package ingress

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// Slack still sends its deprecated verification token in every request
// (an Events API body's "token", a slash command's token field, the
// "token" of an interaction's payload JSON). It is a credential: it is
// not stored, so no job, filter or run view sees it; the rest of the body
// is kept as sent, and the delivery is still named by its event.
func TestSlack_VerificationTokenIsNotStored(t *testing.T) {
	t.Parallel()
	const token = "xyzz0WbapA4vBCDEFasx0q6G"
	e := newEnv(t)
	e.job("report")
	p, _ := signature.Lookup("slack")
	secret, _ := p.GenerateSecret()
	e.secret("sl", secret, "", 0)
	w := e.webhook("slack", resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "slack", SecretRef: "sl"}}})
	payload := `{"type":"block_actions","token":"` + token + `","user":{"id":"U1"}}`
	for _, tc := range []struct {
		name, ct, body, want, eventID string
	}{
		{"events api", "application/json",
			`{"token":"` + token + `","team_id":"T1","type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}`,
			`{"team_id":"T1","type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}`, "Ev1"},
		{"slash command", "application/x-www-form-urlencoded",
			"team_id=T1&token=" + token + "&command=%2Fdeploy&text=prod+now",
			"team_id=T1&command=%2Fdeploy&text=prod+now", ""},
		{"interaction", "application/x-www-form-urlencoded; charset=utf-8",
			"payload=" + url.QueryEscape(payload),
			"payload=" + url.QueryEscape(`{"type":"block_actions","user":{"id":"U1"}}`), ""},
		// The body's bytes are not written over when the token is empty.
		{"empty token", "application/json",
			`{"token":"","team_id":"T1","event_id":"Ev2","event":{"type":"app_mention"}}`,
			`{"team_id":"T1","event_id":"Ev2","event":{"type":"app_mention"}}`, "Ev2"},
		{"token given twice", "application/json",
			`{"token":"` + token + `","type":"event_callback","token":"` + token + `2","event_id":"Ev3"}`,
			`{"type":"event_callback","event_id":"Ev3"}`, "Ev3"},
		// Read as JSON whatever its content type, as filters read it.
		{"JSON sent as a form", "application/x-www-form-urlencoded",
			`{"token":"` + token + `","event_id":"Ev4"}`, `{"event_id":"Ev4"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			// The token anywhere else the request carries it goes too.
			r := e.do(signed(e.request("POST", hookPath(w), body, "Content-Type", tc.ct, "X-Forwarded-Slack-Token", token), "slack", body, secret, "", time.Now()))
			wantAccepted(t, r, 202)
			d := e.stored(r.Acc.DeliveryID)
			if bytes.Contains(d.Body, []byte(token)) || string(d.Body) != tc.want {
				t.Fatalf("stored body %q, want %q", d.Body, tc.want)
			}
			if tc.eventID != "" && r.Acc.EventID != tc.eventID {
				t.Fatalf("event id %q, want %q", r.Acc.EventID, tc.eventID)
			}
			for k, vs := range d.Header {
				if strings.EqualFold(k, "Content-Length") {
					t.Fatalf("Content-Length %v stored for a body made shorter", vs)
				}
				if strings.EqualFold(k, "X-Forwarded-Slack-Token") && tc.name != "empty token" {
					t.Fatalf("the token stored in header %s: %v", k, vs)
				}
			}
		})
	}
}

func TestSentSecret_OnlyAWholeSecret(t *testing.T) {
	secrets := []string{"glpat-current-token", "glpat-previous"}
	for v, want := range map[string]bool{"glpat-current-token": true, "glpat-previous": true, "glpat-current": false, "": false, "glpat-previous-x": false} {
		if got := sentSecret(secrets, v); got != want {
			t.Errorf("sentSecret(%q) = %v, want %v", v, got, want)
		}
	}
	if sentSecret(nil, "x") {
		t.Error("sentSecret of no secrets")
	}
}

// A signed delivery without its event id is answered in the order API.md
// gives: the rate limit is spent and the job checked before the 400, as
// for every authenticated request.
func TestAuth_MissingEventIDComesAfterTheRateLimitAndTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	p, _ := signature.Lookup("github")
	secret, _ := p.GenerateSecret()
	e.secret("gh", secret, "", 0)
	sig := resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "gh"}}
	body := []byte(`{"ref":"refs/heads/main"}`)
	send := func(w *resource.Webhook, eventID string) reply {
		return e.do(signed(e.request("POST", hookPath(w), body, "Content-Type", "application/json"), "github", body, secret, eventID, time.Now()))
	}

	orphan := e.webhook("orphan", resource.WebhookSpec{Job: "ghost", Auth: sig})
	wantError(t, send(orphan, ""), 500, "job_not_runnable")

	limited := e.webhook("limited", resource.WebhookSpec{Auth: sig, RateLimit: &resource.RateLimit{PerSecond: 0.01, Burst: 1}})
	wantError(t, send(limited, ""), 400, "missing_event_id")
	if r := send(limited, "gh-1"); r.Status != 429 {
		t.Fatalf("after an authenticated delivery without its id spent the burst: %d %s, want 429", r.Status, r.Body)
	}
}

func TestRemoveMembers(t *testing.T) {
	for _, tc := range []struct{ in, want, removed string }{
		{`{"token":"a","b":1}`, `{"b":1}`, "a"},
		{` { "b" : 1 , "token" : "a" } `, ` {"b" : 1} `, "a"},
		{"\xef\xbb\xbf{\"token\":\"a\",\"b\":{\"token\":\"nested\"}}", "\xef\xbb\xbf{\"b\":{\"token\":\"nested\"}}", "a"},
		{`{"token":"a","token":2,"c":[1,{"token":"x"}],"token":"b"}`, `{"c":[1,{"token":"x"}]}`, "a b"},
		{`{"tok\u0065n":"a"}`, `{}`, "a"},
		{`{"b":1}`, `{"b":1}`, ""},
		{`["token","a"]`, `["token","a"]`, ""},
		{`not json`, `not json`, ""},
	} {
		in := []byte(tc.in)
		orig := string(in)
		got, removed := removeMembers(in, "token")
		if string(got) != tc.want || strings.Join(removed, " ") != tc.removed || string(in) != orig {
			t.Errorf("removeMembers(%q) = %q, %q (input now %q); want %q, %q", orig, got, removed, in, tc.want, tc.removed)
		}
	}
}

package ingress

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/signature"
)

// benchDeliver measures the whole handler — endpoint match, checks,
// authentication, stripping, encoding and the JetStream round trip — from
// many goroutines, without the network in front (see `make bench` for
// that). setup stores what the webhook needs and returns what adds the
// request's credential; i makes event ids unique.
func benchDeliver(b *testing.B, spec resource.WebhookSpec, setup func(e *env) func(r *http.Request, body []byte, i int64)) {
	e := newEnv(b)
	e.job("report")
	var set func(r *http.Request, body []byte, i int64)
	if setup != nil {
		set = setup(e)
	}
	w := e.webhook("bench", spec)
	h := e.in.Handler()
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/repo"},"pusher":{"name":"octocat"}}`)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			r := httptest.NewRequest(http.MethodPost, hookPath(w), bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("User-Agent", "GitHub-Hookshot/abc123")
			if set != nil {
				set(r, body, i)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("answer %d %s", rec.Code, rec.Body)
			}
		}
	})
}

func BenchmarkDeliver_SecretURL(b *testing.B) {
	benchDeliver(b, resource.WebhookSpec{}, nil)
}

func BenchmarkDeliver_APIKeyHeader(b *testing.B) {
	benchDeliver(b, resource.WebhookSpec{Auth: resource.Auth{APIKey: &resource.APIKeyAuth{}}}, func(e *env) func(*http.Request, []byte, int64) {
		key := e.apiKey(nil, nil, nil)
		return func(r *http.Request, _ []byte, _ int64) { r.Header.Set("X-API-KEY", key) }
	})
}

func BenchmarkDeliver_GitHubSignature(b *testing.B) {
	p, _ := signature.Lookup("github")
	benchDeliver(b, resource.WebhookSpec{Auth: resource.Auth{Signature: &resource.SignatureAuth{Profile: "github", SecretRef: "gh"}}},
		func(e *env) func(*http.Request, []byte, int64) {
			e.secret("gh", "bench-secret", "", 0)
			return func(r *http.Request, body []byte, i int64) {
				for k, v := range p.Sign(body, "bench-secret", "gh-"+strconv.FormatInt(i, 10), time.Time{}) {
					r.Header[k] = v
				}
			}
		})
}

func BenchmarkExtractBodyKey(b *testing.B) {
	body := []byte(`{"event":"ticket.created","data":{"id":"TICKET-456","title":"Login button not working","priority":"high"},"api_key":"hk_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"}`)
	buf := make([]byte, len(body))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, body)
		if _, _, err := extractBodyKey(buf, "api_key"); err != nil {
			b.Fatal(err)
		}
	}
}

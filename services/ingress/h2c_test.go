package ingress

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrun/hookrun/pkg/resource"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// With HOOKRUN_H2C, a proxy speaking HTTP/2 to its upstreams without TLS
// (prior knowledge) delivers; without it such a client gets no answer.
func TestRun_H2CServesHTTP2WithoutTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.job("report")
	w := e.webhook("h2c", resource.WebhookSpec{})
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &h2}}
	post := func(addr string) (*http.Response, error) {
		return client.Post("http://"+addr+hookPath(w), "application/json", strings.NewReader(`{"a":1}`))
	}

	on, _, _ := runIngress(t, e, Config{PublishTimeout: 2 * time.Second, H2C: true})
	var resp *http.Response
	testenv.Eventually(t, 10*time.Second, func() error { // the catalog loads
		var err error
		if resp, err = post(on); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				return errNotReady
			}
		}
		return err
	})
	if resp.StatusCode != http.StatusAccepted || resp.ProtoMajor != 2 {
		t.Fatalf("over h2c: %d %s, want 202 over HTTP/2", resp.StatusCode, resp.Proto)
	}

	off, _, _ := runIngress(t, e, Config{PublishTimeout: 2 * time.Second})
	if resp, err := post(off); err == nil {
		resp.Body.Close()
		t.Fatalf("without H2C an h2c client got %d %s", resp.StatusCode, resp.Proto)
	}
}

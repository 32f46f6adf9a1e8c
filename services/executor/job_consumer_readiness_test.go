package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/message"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// readyz is what the executor's /readyz answers: its status, and the
// reason it is not ready or the check it is degraded by.
func (r *xrun) readyz(t *testing.T) (status, reason, degraded string) {
	t.Helper()
	e := echo.New()
	r.x.health.MountProbes(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/readyz: %v: %s", err, rec.Body)
	}
	return body["status"], body["reason"], body["degraded"]
}

// A job whose consumer cannot be made does not make the executor not
// ready (every other job runs here): /readyz names it as degraded.
func TestExecutor_AJobConsumerThatCannotBeMadeIsReportedNotRequired(t *testing.T) {
	t.Parallel()
	e := newXEnv(t)
	// A push consumer of the job's name: NATS refuses to turn it into the
	// pull consumer the executor makes.
	name := bus.JobConsumer("default", "pushed")
	if _, err := e.js.CreateOrUpdateConsumer(context.Background(), bus.StreamRuns, jetstream.ConsumerConfig{
		Durable: name, DeliverSubject: "elsewhere", FilterSubject: bus.RunSubject("default", "pushed"), AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	e.script("pushed", `echo hi`)
	r := e.start(nil)
	testenv.Eventually(t, 15*time.Second, func() error {
		if _, _, degraded := r.readyz(t); !strings.Contains(degraded, name) {
			return fmt.Errorf("not degraded by %s: %q", name, degraded)
		}
		return nil
	})
	status, reason, _ := r.readyz(t)
	want(t, "status", status, "ready")
	want(t, "reason", reason, "")
	other := e.script("other", `echo hi`)
	want(t, "another job's run", e.final(e.submit(other, "{}"), 10*time.Second).Status, message.StatusSucceeded)
}

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hookrun/hookrun/pkg/bus"
	"github.com/hookrun/hookrun/pkg/testenv"
)

// The second baseline must pay for what the ingress' publish uses: a
// stream configured as DELIVERIES, a subject per request and a message id
// that JetStream's duplicate window checks. A baseline without them would
// make the ingress' own cost look larger than it is; one with more would
// make it look smaller.
func TestBarePublishHandler_WithFeaturesUsesTheIngressJetStreamFeatures(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect()
	ctx := context.Background()
	for _, features := range []bool{false, true} {
		h, closeNATS, err := barePublishHandler(ctx, n.URL, features)
		if err != nil {
			t.Fatal(err)
		}
		e := echo.New()
		e.POST("/v1/hooks/:id", h)
		for _, id := range []string{"evt-1", "evt-2", "evt-1"} {
			req := httptest.NewRequest(http.MethodPost, "/v1/hooks/x", strings.NewReader(`{"a":1}`))
			req.Header.Set("X-Event-Id", id) // the generic profile's, which the bench signs
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("features=%v: %d %s", features, rec.Code, rec.Body)
			}
		}
		closeNATS()
		name := "BENCH"
		if features {
			name = "BENCHF"
		}
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !features {
			if info.State.Msgs != 3 || info.State.NumSubjects != 1 {
				t.Errorf("plain: %d messages on %d subjects, want 3 on 1", info.State.Msgs, info.State.NumSubjects)
			}
			continue
		}
		// The repeated event id is dropped by the duplicate window; each
		// stored request has a subject of its own.
		if info.State.Msgs != 2 || info.State.NumSubjects != 2 {
			t.Errorf("features: %d messages on %d subjects, want 2 on 2", info.State.Msgs, info.State.NumSubjects)
		}
		var want, got = bus.StreamConfigs(bus.Options{})[0], info.Config
		if want.Name != bus.StreamDeliveries || got.Duplicates != want.Duplicates || got.MaxAge != want.MaxAge || got.AllowDirect != want.AllowDirect || got.Storage != want.Storage {
			t.Errorf("features stream %+v, want DELIVERIES' %+v", got, want)
		}
	}
}

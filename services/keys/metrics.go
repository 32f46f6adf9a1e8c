package keys

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// unmatchedRoute labels requests that match no route, so a scan of random
// paths cannot blow up label cardinality.
const unmatchedRoute = "unmatched"

var (
	mRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrun_keys_requests_total",
		Help: "Keys API requests answered, by route template, method and HTTP status code.",
	}, []string{"route", "method", "code"})
	mRequestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookrun_keys_request_duration_seconds",
		Help:    "Time to answer a keys API request, by route template.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
)

// untimedRoutes are streams, not answers: a run's events last as long as
// the client watches the run, so timing them would pin the answer-time
// quantiles at the top bucket whenever someone follows a run. They are
// still counted in hookrun_keys_requests_total.
var untimedRoutes = map[string]bool{"/v1/runs/:id/events": true}

// knownMethods bounds the method label: any other method counts as "other".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// recordRequests counts every request by its route template (c.Path(),
// never the URL, which holds names and ids) and the status it was answered
// with. It must be the outermost middleware: a handler's error is turned
// into its answer here, by the service's error handler, so the status
// counted is the one written (a panic reaches here as a 500 already
// written by the recover middleware).
func recordRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || errors.Is(err, echo.ErrNotFound) {
			route = unmatchedRoute
		}
		method := c.Request().Method
		if !knownMethods[method] {
			method = "other"
		}
		mRequests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
		if !untimedRoutes[route] {
			mRequestSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
		return nil
	}
}

package service

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Names are the services; each one's metrics are named hookrun_<name>_….
var Names = []string{"ingress", "dispatcher", "executor", "keys"}

// ownMetrics is what service name's /metrics serves when it shares its
// process with the other services (`hookrun dev`), which all register on
// the one default registry: without it each of the four addresses would
// serve every service's metrics, and a Prometheus scraping them as four
// jobs (as deploy/prometheus does) would count every series four times.
// It drops the families of the other services (hookrun_<other>_…) and,
// of a family with a "service" label (hookrun_ready, the connection
// gauges), the series of the others. The process' own families (go_…,
// process_…), the consumer backlog gauges and what NATS and Redis hold
// (hookrun_stream_…, hookrun_jetstream_…, hookrun_redis_…_bytes) stay on every address:
// they describe the one process, and the dashboards take the max of the
// backlog gauges over the services that report them.
func ownMetrics(g prometheus.Gatherer, name string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		out := mfs[:0]
		for _, mf := range mfs {
			if ownFamily(mf.GetName(), name) && keepOwnSeries(mf, name) {
				out = append(out, mf)
			}
		}
		return out, err
	})
}

// ownFamily reports whether family is not another service's.
func ownFamily(family, name string) bool {
	for _, n := range Names {
		if n != name && strings.HasPrefix(family, "hookrun_"+n+"_") {
			return false
		}
	}
	return true
}

// keepOwnSeries drops the series of mf labelled with another service, and
// reports whether any series is left.
func keepOwnSeries(mf *dto.MetricFamily, name string) bool {
	ms := mf.Metric[:0]
	for _, m := range mf.Metric {
		if serviceLabel(m) == "" || serviceLabel(m) == name {
			ms = append(ms, m)
		}
	}
	mf.Metric = ms
	return len(ms) > 0
}

func serviceLabel(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "service" {
			return l.GetValue()
		}
	}
	return ""
}

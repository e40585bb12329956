package metrics

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Totals sums a few families into the figures a dashboard shows of a node
// (it derives rates from two readings): requests, server errors, calls made
// and failed, calls served, requests in flight. Nil for a nil Set.
func (s *Set) Totals() map[string]float64 {
	if s == nil {
		return nil
	}
	mfs, _ := s.gather.Gather() // a slow worker's last figures stand in; partial is fine here
	t := map[string]float64{"http_requests": 0, "http_errors": 0, "rpc_calls": 0, "rpc_errors": 0, "rpc_served": 0, "http_in_flight": 0}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			switch mf.GetName() {
			case "hornbeam_http_requests_total":
				v := m.GetCounter().GetValue()
				t["http_requests"] += v
				if strings.HasPrefix(label(m, "status"), "5") {
					t["http_errors"] += v
				}
			case "hornbeam_rpc_calls_total":
				v := m.GetCounter().GetValue()
				t["rpc_calls"] += v
				if label(m, "result") != "ok" {
					t["rpc_errors"] += v
				}
			case "hornbeam_rpc_served_total":
				t["rpc_served"] += m.GetCounter().GetValue()
			case "hornbeam_http_in_flight":
				t["http_in_flight"] += m.GetGauge().GetValue()
			}
		}
	}
	return t
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Handler serves the families in Prometheus's exposition formats. A worker
// that cannot be read leaves its last figures in and the scrape goes on.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

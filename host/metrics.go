package host

import (
	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/metrics"
	"github.com/hornbeam-go/hornbeam/state"
)

// registerMetrics adds the figures read at scrape time from what the node
// owns: its interpreter's threads, and, where this process holds them, the
// state, the inference cache and the cluster membership.
func (n *Node) registerMetrics() {
	m := n.cfg.Metrics
	if m == nil {
		return
	}
	m.GaugeFunc("hornbeam_python_threads", "Python threads for synchronous calls.", func() float64 {
		t, _ := n.py.PoolThreads()
		return float64(t)
	})
	m.GaugeFunc("hornbeam_python_threads_busy", "Python threads running calls now.", func() float64 {
		_, b := n.py.PoolThreads()
		return float64(b)
	})
	if m.Role() == metrics.Worker {
		return // the supervisor counts the node's state, cache and cluster
	}
	if n.state != nil {
		registerStateMetrics(m, n.state)
	}
	if lc, ok := n.cache.(LocalCache); ok {
		registerCacheMetrics(m, lc.Cache)
	}
	registerClusterMetrics(m, n.cluster)
}

// RegisterMetrics adds the supervisor's figures read at scrape time: state,
// inference cache and cluster membership.
func (s *SupervisorNode) RegisterMetrics(m *metrics.Set) {
	if m == nil {
		return
	}
	s.metrics.Store(m)
	registerStateMetrics(m, s.state)
	if s.cache != nil {
		registerCacheMetrics(m, s.cache)
	}
	registerClusterMetrics(m, s.bus.Load)
}

func registerStateMetrics(m *metrics.Set, st *state.Store) {
	m.GaugeFunc("hornbeam_state_entries", "Entries in the node-wide state.", func() float64 { return float64(st.Len()) })
	m.GaugeFunc("hornbeam_state_bytes", "Bytes of keys and values in the node-wide state.", func() float64 { return float64(st.Bytes()) })
}

func registerCacheMetrics(m *metrics.Set, c *state.Cache) {
	m.CounterFunc("hornbeam_ml_cache_hits_total", "Inference cache hits.", func() float64 { return float64(c.Stats().Total.Hits) })
	m.CounterFunc("hornbeam_ml_cache_misses_total", "Inference cache misses.", func() float64 { return float64(c.Stats().Total.Misses) })
}

func registerClusterMetrics(m *metrics.Set, b func() *bus.Bus) {
	m.GaugeFunc("hornbeam_cluster_nodes", "Other nodes this node sees (as nodes() lists them).", func() float64 {
		bb := b()
		if bb == nil {
			return 0
		}
		return float64(len(bb.Nodes(bus.Visible)))
	})
}

// withTotals adds the node's request and call totals to its node_info, for
// dashboards that derive rates from two readings.
func withTotals(info map[string]any, m *metrics.Set) map[string]any {
	if t := m.Totals(); t != nil {
		info["metrics"] = t
	}
	return info
}

// Package metrics counts what a node does, in Prometheus families named
// hornbeam_*, and serves them. The other packages call a *Set's methods at
// their counting points; a nil *Set counts nothing, so a node without
// --metrics-bind pays one nil check per point.
//
// A node with worker processes splits its families: each worker counts what
// its Python does (HTTP, calls it makes and serves, batches, threads) and
// hands its figures to the supervising process over a Unix socket
// (ServeWorker); the supervisor counts the node's cluster, state and workers,
// and sums its workers' figures into one scrape (AddWorkers).
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Role says which families a process of a node registers.
type Role int

const (
	// Single: the node's one process; every family.
	Single Role = iota
	// Supervisor: the process that supervises workers: cluster, state and
	// worker families, the Go runtime and the process.
	Supervisor
	// Worker: a worker process: HTTP, RPC, batching and Python families.
	Worker
)

// Result is the outcome of a call, a cast or a served call: a label value
// from a fixed set, so the label stays bounded.
type Result int

// The outcomes, as hornbeam_rpc_*_total{result} names them.
const (
	OK Result = iota
	Timeout
	NodeDown
	BadRPC
	RemoteError
	Busy
	Error // anything else: payload too large, node leaving, malformed
	numResults
)

var resultNames = [numResults]string{"ok", "timeout", "nodedown", "badrpc", "remote_error", "busy", "error"}

func (r Result) String() string {
	if r < 0 || r >= numResults {
		return "error"
	}
	return resultNames[r]
}

// Buckets for request and call durations, in seconds: 100 µs to 30 s, which
// covers a same-host call and a model inference alike.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// maxStatus bounds the status label: codes outside 100..599 count as "other".
const maxStatus = 600

// Set is one process's families.
type Set struct {
	role Role
	reg  *prometheus.Registry
	// gather is what a scrape reads: reg, plus the workers' sums in a supervisor.
	gather prometheus.Gatherers

	httpReqs     *prometheus.CounterVec
	httpByStatus [maxStatus + 1]atomic.Pointer[prometheus.Counter] // [maxStatus] is "other"
	httpDur      prometheus.Histogram
	httpInFlight prometheus.Gauge

	rpcCalls  [numResults]prometheus.Counter
	rpcDur    prometheus.Histogram
	rpcServed [numResults]prometheus.Counter
	rpcCasts  [numResults]prometheus.Counter

	nodedown       prometheus.Counter
	batchSize      prometheus.Histogram
	workerRestarts prometheus.Counter

	workers *workerSums
}

// New makes the families of a process in role. The Go runtime and process
// collectors go with every role but Worker (a node is scraped as one process:
// its supervisor).
func New(role Role) *Set {
	s := &Set{role: role, reg: prometheus.NewRegistry()}
	s.gather = prometheus.Gatherers{s.reg}
	s.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hornbeam_http_requests_total", Help: "HTTP requests served, by status code.",
	}, []string{"status"})
	s.httpDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hornbeam_http_request_duration_seconds", Help: "Time from a request's headers to its last byte.", Buckets: durationBuckets,
	})
	s.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hornbeam_http_in_flight", Help: "HTTP requests being served.",
	})
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hornbeam_rpc_calls_total", Help: "Remote calls this node made, by outcome.",
	}, []string{"result"})
	served := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hornbeam_rpc_served_total", Help: "Calls from other nodes this node served, by outcome.",
	}, []string{"result"})
	casts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hornbeam_rpc_casts_total", Help: "Casts (rpc_cast) this node sent, by outcome.",
	}, []string{"result"})
	for r := Result(0); r < numResults; r++ {
		s.rpcCalls[r] = calls.WithLabelValues(r.String())
		s.rpcServed[r] = served.WithLabelValues(r.String())
		s.rpcCasts[r] = casts.WithLabelValues(r.String())
	}
	s.rpcDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hornbeam_rpc_call_duration_seconds", Help: "Time of the remote calls this node made.", Buckets: durationBuckets,
	})
	s.nodedown = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hornbeam_cluster_nodedown_total", Help: "Peers this node saw go down.",
	})
	s.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hornbeam_batch_size", Help: "Items per batch a @batched function ran.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	s.workerRestarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hornbeam_worker_restarts_total", Help: "Worker processes replaced after they exited.",
	})
	worker := []prometheus.Collector{s.httpReqs, s.httpDur, s.httpInFlight, calls, s.rpcDur, served, casts, s.batchSize}
	node := []prometheus.Collector{s.nodedown}
	switch role {
	case Worker:
		s.reg.MustRegister(worker...)
	case Supervisor:
		s.reg.MustRegister(node...)
		s.reg.MustRegister(s.workerRestarts)
	default:
		s.reg.MustRegister(worker...)
		s.reg.MustRegister(node...)
	}
	if role != Worker {
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return s
}

// Role returns the role the Set was made for.
func (s *Set) Role() Role { return s.role }

// HTTPBegin counts a request in flight; HTTPEnd ends it.
func (s *Set) HTTPBegin() {
	if s != nil {
		s.httpInFlight.Inc()
	}
}

// HTTPEnd counts a finished request with its status and duration.
func (s *Set) HTTPEnd(status int, d time.Duration) {
	if s == nil {
		return
	}
	s.httpInFlight.Dec()
	s.httpDur.Observe(d.Seconds())
	if status < 100 || status >= maxStatus {
		status = maxStatus
	}
	cp := s.httpByStatus[status].Load()
	if cp == nil {
		// Children are made on first use (WithLabelValues is idempotent, so a
		// race here only makes the same child twice).
		label := "other"
		if status < maxStatus {
			label = itoa3(status)
		}
		c := s.httpReqs.WithLabelValues(label)
		cp = &c
		s.httpByStatus[status].Store(cp)
	}
	(*cp).Inc()
}

// RPCCall counts a remote call this node made.
func (s *Set) RPCCall(r Result, d time.Duration) {
	if s != nil {
		s.rpcCalls[clamp(r)].Inc()
		s.rpcDur.Observe(d.Seconds())
	}
}

// RPCServed counts a call this node served for another.
func (s *Set) RPCServed(r Result) {
	if s != nil {
		s.rpcServed[clamp(r)].Inc()
	}
}

// RPCCast counts a cast this node sent.
func (s *Set) RPCCast(r Result) {
	if s != nil {
		s.rpcCasts[clamp(r)].Inc()
	}
}

// NodeDown counts a peer seen going down.
func (s *Set) NodeDown() {
	if s != nil {
		s.nodedown.Inc()
	}
}

// BatchSize records the items of one batch.
func (s *Set) BatchSize(n int) {
	if s != nil {
		s.batchSize.Observe(float64(n))
	}
}

// WorkerRestart counts a worker replaced after it exited.
func (s *Set) WorkerRestart() {
	if s != nil {
		s.workerRestarts.Inc()
	}
}

// GaugeFunc registers a gauge read at scrape time, e.g. hornbeam_state_entries.
func (s *Set) GaugeFunc(name, help string, f func() float64) {
	if s != nil {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
}

// CounterFunc registers a counter read at scrape time from a total kept
// elsewhere, e.g. the inference cache's hits.
func (s *Set) CounterFunc(name, help string, f func() float64) {
	if s != nil {
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
}

// Gatherer returns what a scrape of this process reads, workers included.
func (s *Set) Gatherer() prometheus.Gatherer { return s.gather }

func clamp(r Result) Result {
	if r < 0 || r >= numResults {
		return Error
	}
	return r
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

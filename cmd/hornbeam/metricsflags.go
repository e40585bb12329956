package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/dashboard"
	"github.com/hornbeam-go/hornbeam/metrics"
)

// envNodeMetrics tells a worker where to hand its figures to its supervisor.
const envNodeMetrics = "HORNBEAM_NODE_METRICS"

// metricsFlags are start's --metrics-bind.
type metricsFlags struct {
	bind string
}

func (f *metricsFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.bind, "metrics-bind", os.Getenv("HORNBEAM_METRICS_BIND"),
		"HOST:PORT serving Prometheus metrics (/metrics) and the cluster dashboard (/) (env HORNBEAM_METRICS_BIND; default: off)")
}

// single returns the figures of a node served from one process, or nil
// without --metrics-bind.
func (f *metricsFlags) single() *metrics.Set {
	if f.bind == "" {
		return nil
	}
	return metrics.New(metrics.Single)
}

// worker returns a worker process's figures when its supervisor collects
// them, and the directory of its socket.
func (f *metricsFlags) worker() (*metrics.Set, string) {
	dir := os.Getenv(envNodeMetrics)
	os.Unsetenv(envNodeMetrics)
	if dir == "" {
		return nil, ""
	}
	return metrics.New(metrics.Worker), dir
}

// supervisor returns a supervising process's figures, which sum its workers'
// read from sockets in a private directory, and the environment that tells
// the workers where it is; stop removes the directory.
func (f *metricsFlags) supervisor() (set *metrics.Set, env []string, stop func(), err error) {
	if f.bind == "" {
		return nil, nil, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "hornbeam-metrics-") // 0700: this user's processes only
	if err != nil {
		return nil, nil, nil, fmt.Errorf("metrics: %w", err)
	}
	set = metrics.New(metrics.Supervisor)
	set.AddWorkers(dir)
	return set, []string{envNodeMetrics + "=" + dir}, func() { os.RemoveAll(dir) }, nil
}

// serve starts the metrics bind; stop ends it (a no-op without one).
func (f *metricsFlags) serve(set *metrics.Set, b func() *bus.Bus, name string, log *slog.Logger) (stop func(), err error) {
	if set == nil || f.bind == "" {
		return func() {}, nil
	}
	srv, err := dashboard.Start(dashboard.Config{Addr: f.bind, Metrics: set, Bus: b, Name: name, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("serving metrics and the dashboard", "metrics", "http://"+srv.Addr()+"/metrics", "dashboard", "http://"+srv.Addr()+"/")
	return func() { srv.Close() }, nil
}

// serveWorker hands a worker's figures to its supervisor until ctx ends.
func serveWorkerMetrics(ctx context.Context, set *metrics.Set, dir string, log *slog.Logger) {
	if set == nil {
		return
	}
	if err := set.ServeWorker(ctx, dir, log); err != nil {
		log.Warn("this worker's figures will be missing from the node's metrics", "err", err)
	}
}

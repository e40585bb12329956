package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/host"
)

func newStartCmd() *cobra.Command {
	var (
		nf         nodeFlags
		pythonPath []string
		threads    int
		spinUS     int
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "start [flags]",
		Short: "Start a node that serves remote calls until SIGINT/SIGTERM",
		Long: `Start a node. With --name (or --sname) it joins a cluster: other nodes call
its Python functions with rpc_call, importing modules from --pythonpath.

Example, a worker node and a second node joining it:
  hornbeam start --name worker1@127.0.0.1 --cluster-port 4370 --pythonpath ./app
  hornbeam start --name worker2@127.0.0.1 --join 127.0.0.1:4370 --pythonpath ./app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cluster, err := nf.config()
			if err != nil {
				return err
			}
			node, err := host.New(host.Config{
				Threads: threads, SpinWait: spinWait(spinUS), PythonPath: absPaths(pythonPath),
				Argv: []string{"hornbeam"}, Cluster: cluster, Logger: log,
			})
			if err != nil {
				return err
			}
			addr := ""
			if b := node.Bus(); b != nil {
				addr = b.ClusterAddr()
			}
			log.Info("node started", "node", node.Name(), "cluster", addr, "pid", os.Getpid())
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			s := <-sig
			log.Info("stopping", "signal", s.String())
			signal.Stop(sig)
			return node.Close()
		},
	}
	f := cmd.Flags()
	nf.add(f, false)
	f.StringArrayVar(&pythonPath, "pythonpath", nil, "add a directory to sys.path (repeatable)")
	f.IntVar(&threads, "threads", envInt("HORNBEAM_THREADS", 0), "threads for synchronous Python calls (0: 2 per CPU, at least 4)")
	f.IntVar(&spinUS, "spin-us", envInt("HORNBEAM_SPIN_US", 0), "µs a Python thread spins for the next call before sleeping, when nothing else runs (0: 150; -1: never)")
	f.StringVar(&logLevel, "log-level", "", "log level: debug, info, warning, error (env HORNBEAM_LOG_LEVEL)")
	return cmd
}

package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/host"
	"github.com/hornbeam-go/hornbeam/web"
)

func newStartCmd() *cobra.Command {
	var (
		nf         nodeFlags
		pythonPath []string
		threads    int
		spinUS     int
		wf         webFlags
		configFile string
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "start [APP] [flags]",
		Short: "Start a node: serve a WSGI app (APP = module:attribute) and/or remote calls",
		Long: `Start a node, until SIGINT/SIGTERM. With APP (module:attribute, attribute
defaulting to "application") it serves that WSGI app over HTTP, importing it
from --pythonpath (and the current directory). With --name (or --sname) it joins
a cluster: other nodes call its Python functions with rpc_call.

Examples:
  hornbeam start app:application --bind 0.0.0.0:8000 --pythonpath ./app
  hornbeam start --name worker1@127.0.0.1 --cluster-port 4370 --pythonpath ./app
  hornbeam start --name worker2@127.0.0.1 --join 127.0.0.1:4370 --pythonpath ./app`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if configFile != "" {
				if err := applyConfigFile(cmd.Flags(), configFile); err != nil {
					return err
				}
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cluster, err := nf.config()
			if err != nil {
				return err
			}
			var webCfg *web.Config
			if len(args) == 1 {
				if webCfg, err = wf.config(args[0], log); err != nil {
					return err
				}
				if cwd, err := os.Getwd(); err == nil {
					pythonPath = append(pythonPath, cwd)
				}
			}
			node, err := host.New(host.Config{
				Threads: threads, SpinWait: spinWait(spinUS), PythonPath: absPaths(pythonPath),
				Argv: []string{"hornbeam"}, Cluster: cluster, Web: webCfg,
				GracefulTimeout: secDuration(wf.gracefulTimeout), Logger: log,
			})
			if err != nil {
				return err
			}
			addr := ""
			if b := node.Bus(); b != nil {
				addr = b.ClusterAddr()
			}
			log.Info("node started", "node", node.Name(), "cluster", addr, "http", strings.Join(node.WebAddrs(), ","), "pid", os.Getpid())
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
	wf.add(f)
	f.StringVarP(&configFile, "config", "c", "", "TOML file of settings named as the long flags, e.g. bind = [\"0.0.0.0:8000\"], timeout = 60")
	f.StringArrayVar(&pythonPath, "pythonpath", nil, "add a directory to sys.path (repeatable)")
	f.IntVar(&threads, "threads", envInt("HORNBEAM_THREADS", 0), "threads for synchronous Python calls (0: 2 per CPU, at least 4)")
	f.IntVar(&spinUS, "spin-us", envInt("HORNBEAM_SPIN_US", 0), "µs a Python thread spins for the next call before sleeping, when nothing else runs (0: 150; -1: never)")
	f.StringVar(&logLevel, "log-level", "", "log level: debug, info, warning, error (env HORNBEAM_LOG_LEVEL)")
	return cmd
}

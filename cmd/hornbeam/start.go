package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/host"
	"github.com/hornbeam-go/hornbeam/internal/cpusched"
	"github.com/hornbeam-go/hornbeam/internal/pywatch"
	"github.com/hornbeam-go/hornbeam/internal/sharedstate"
	"github.com/hornbeam-go/hornbeam/pybridge"
	"github.com/hornbeam-go/hornbeam/state"
	"github.com/hornbeam-go/hornbeam/supervisor"
	"github.com/hornbeam-go/hornbeam/web"
)

// Environment a supervising process gives its workers (besides supervisor's own).
const (
	envNodeState     = "HORNBEAM_NODE_STATE"
	envNodeNATS      = "HORNBEAM_NODE_NATS"
	envNodeNATSToken = "HORNBEAM_NODE_NATS_TOKEN"
)

// startOptions are start's settings besides the node and web flags.
type startOptions struct {
	nf                nodeFlags
	pf                procFlags
	wf                webFlags
	pythonPath        []string
	threads           int
	spinUS            int
	inlineSteps       bool
	schedBatch        bool
	configFile        string
	logLevel          string
	workers           int
	maxRequests       int
	maxRequestsJitter int
	reload            bool
	ml                mlFlags
	metrics           metricsFlags
	ops               opsFlags
	lf                limitFlags
}

func newStartCmd() *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use:   "start [APP] [flags]",
		Short: "Start a node: serve a WSGI/ASGI app (APP = module:attribute) and/or remote calls",
		Long: `Start a node, until SIGINT/SIGTERM. With APP (module:attribute, attribute
defaulting to "application", or "app" with -k asgi) it serves that app over
HTTP, importing it from --pythonpath (and the current directory). With --name
(or --sname) it joins a cluster: other nodes call its Python functions with
rpc_call.

With --workers N the node runs N worker processes, each with its own
interpreter, sharing the listening sockets; state_* stays node-wide and
rpc_call works from every worker. The supervising process replaces a worker
that dies and answers signals as gunicorn's master does:
  SIGTERM, SIGINT  finish requests in flight (--graceful-timeout), then stop
  SIGHUP           replace every worker with a fresh one, without dropping connections
  SIGTTIN/SIGTTOU  add/remove a worker

Examples:
  hornbeam start app:application --bind 0.0.0.0:8000 --pythonpath ./app
  hornbeam start main:app -k asgi --workers 4 --max-requests 10000
  hornbeam start --name worker1@127.0.0.1 --cluster-port 4370 --pythonpath ./app
  hornbeam start --name worker2@127.0.0.1 --join 127.0.0.1:4370 --pythonpath ./app`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.configFile != "" {
				if err := applyConfigFile(cmd.Flags(), o.configFile); err != nil {
					return err
				}
			}
			log, err := newLogger(o.logLevel)
			if err != nil {
				return err
			}
			log = nodeLogger(log, &o.nf)
			if o.workers < 0 || o.maxRequests < 0 || o.maxRequestsJitter < 0 {
				return errors.New("--workers, --max-requests and --max-requests-jitter must not be negative")
			}
			if err := o.ml.apply(log); err != nil {
				return err
			}
			if o.schedBatch {
				// Before Python's threads exist, so that they inherit it,
				// as worker processes do.
				if err := cpusched.SetBatch(); err != nil {
					log.Warn("threads stay under the default CPU policy", "err", err)
				}
			}
			w, isWorker, err := supervisor.Attach()
			if err != nil {
				return err
			}
			if isWorker {
				return o.runWorker(w, args, log.With("worker", w.ID, "pid", os.Getpid()))
			}
			if len(args) == 0 {
				// Worker processes serve an app; a node without one has
				// nothing to give them ($WEB_CONCURRENCY alone is ignored).
				for _, f := range []string{"workers", "max-requests", "reload"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--%s needs an APP to serve", f)
					}
				}
			}
			if o.workers == 0 && (o.maxRequests > 0 || o.reload) && len(args) == 1 {
				o.workers = 1 // recycling needs a worker process to recycle
			}
			if o.workers > 0 && len(args) == 1 {
				return o.runSupervisor(args[0], log)
			}
			return o.runSingle(args, log)
		},
	}
	f := cmd.Flags()
	o.nf.add(f, false)
	o.wf.add(f)
	o.ml.add(f)
	o.pf.add(f)
	o.metrics.add(f)
	o.ops.add(f)
	o.lf.add(f)
	f.StringVarP(&o.configFile, "config", "c", "", "TOML file of settings named as the long flags, e.g. bind = [\"0.0.0.0:8000\"], timeout = 60")
	f.StringArrayVar(&o.pythonPath, "pythonpath", nil, "add a directory to sys.path (repeatable)")
	f.IntVar(&o.threads, "threads", envInt("HORNBEAM_THREADS", 0), "threads for synchronous Python calls, per worker (0: 2 per CPU, at least 4)")
	f.IntVar(&o.spinUS, "spin-us", envInt("HORNBEAM_SPIN_US", 0), "µs a Python thread spins for the next call before sleeping, when nothing else runs (0, the default: never)")
	f.BoolVar(&o.inlineSteps, "inline-steps", envBool("HORNBEAM_INLINE_STEPS", false), "run a lone coroutine call's first step (an ASGI request, an async rpc_call target) on the thread that took it while the event loop sleeps, instead of waking the loop's thread for it: about 0.6x the CPU and two thirds of the latency one request at a time. The rest of the call then runs on the loop's thread, which breaks code tied to one thread across an await (SQLAlchemy asyncio, sqlite3 connections, threading.local)")
	f.BoolVar(&o.schedBatch, "sched-batch", envBool("HORNBEAM_SCHED_BATCH", true), "run the node's threads under Linux's SCHED_BATCH policy: a thread that wakes another on a busy CPU keeps it until it blocks, so the node's threads hand work over in batches rather than preempt one another per request (false: the default policy)")
	f.StringVar(&o.logLevel, "log-level", "", "log level: debug, info, warning, error (env HORNBEAM_LOG_LEVEL)")
	f.IntVarP(&o.workers, "workers", "w", envInt("HORNBEAM_WORKERS", envInt("WEB_CONCURRENCY", 0)),
		"worker processes, each with its own interpreter (env HORNBEAM_WORKERS, else WEB_CONCURRENCY; 0: serve from this process)")
	f.IntVar(&o.maxRequests, "max-requests", envInt("HORNBEAM_MAX_REQUESTS", 0), "retire a worker after this many requests, for a fresh one (0: never; implies --workers 1)")
	f.IntVar(&o.maxRequestsJitter, "max-requests-jitter", envInt("HORNBEAM_MAX_REQUESTS_JITTER", 0), "add up to this many to each worker's --max-requests, so workers do not retire together")
	f.BoolVar(&o.reload, "reload", false, "replace the workers when a .py file under the current directory or --pythonpath changes (development; implies --workers 1)")
	return cmd
}

// node makes the host configuration shared by a single process and a worker.
func (o *startOptions) hostConfig(args []string, log *slog.Logger) (host.Config, error) {
	cluster, err := o.nf.config()
	if err != nil {
		return host.Config{}, err
	}
	var webCfg *web.Config
	pythonPath := o.pythonPath
	if len(args) == 1 {
		if webCfg, err = o.wf.config(args[0], log); err != nil {
			return host.Config{}, err
		}
		if err := o.ops.applyWeb(webCfg); err != nil {
			return host.Config{}, err
		}
		if cwd, err := os.Getwd(); err == nil {
			pythonPath = append(pythonPath, cwd)
		}
	}
	cfg := host.Config{
		Threads: o.threads, SpinWait: spinWait(o.spinUS), InlineSteps: o.inlineSteps, PythonPath: absPaths(pythonPath),
		Argv: []string{"hornbeam"}, Cluster: cluster, Web: webCfg,
		GracefulTimeout: secDuration(o.wf.gracefulTimeout), Logger: log, Cache: o.ml.cacheConfig(),
		Processes: o.pf.limits(),
	}
	if err := o.lf.apply(&cfg); err != nil {
		return host.Config{}, err
	}
	return cfg, nil
}

// runSingle serves from this process.
func (o *startOptions) runSingle(args []string, log *slog.Logger) error {
	cfg, err := o.hostConfig(args, log)
	if err != nil {
		return err
	}
	if len(args) == 1 && os.Getenv("GOMAXPROCS") == "" {
		// Before the interpreter starts, which reads GOMAXPROCS (see
		// pybridge); the pool keeps its size of 2 threads per CPU.
		if cfg.Threads == 0 {
			cfg.Threads = pybridge.DefaultThreads()
		}
		runtime.GOMAXPROCS(goProcsBesidePython(runtime.GOMAXPROCS(0)))
	}
	cfg.Metrics = o.metrics.single()
	rmPID, err := writePIDFile(o.ops.pidFile)
	if err != nil {
		return err
	}
	defer rmPID()
	node, err := host.New(cfg)
	if err != nil {
		return err
	}
	stopMetrics, err := o.metrics.serve(cfg.Metrics, node.Bus, node.Name(), log)
	if err != nil {
		node.Close()
		return err
	}
	defer stopMetrics()
	unregister := registerName(&o.nf, node.Bus(), log)
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
	unregister() // before the node leaves: nobody is sent to a closing port
	return node.Close()
}

// runWorker serves as one of a supervising process's workers until told to
// stop, until the supervisor is gone, or until it has served --max-requests.
func (o *startOptions) runWorker(w *supervisor.Worker, args []string, log *slog.Logger) error {
	cfg, err := o.hostConfig(args, log)
	if err != nil {
		return err
	}
	if len(args) != 1 || cfg.Web == nil {
		return errors.New("a worker process needs an APP")
	}
	cfg.Web.Listeners = w.Listeners
	cfg.Web.Multiprocess = o.workers > 1
	if o.maxRequests > 0 {
		cfg.Web.MaxRequests = int64(o.maxRequests)
		if o.maxRequestsJitter > 0 {
			cfg.Web.MaxRequests += rand.Int64N(int64(o.maxRequestsJitter) + 1)
		}
	}
	sock := os.Getenv(envNodeState)
	natsURL, natsToken := os.Getenv(envNodeNATS), os.Getenv(envNodeNATSToken)
	for _, k := range []string{envNodeState, envNodeNATS, envNodeNATSToken} {
		os.Unsetenv(k)
	}
	shared, err := sharedstate.Dial(sock)
	if err != nil {
		return fmt.Errorf("worker: reaching the node's state: %w", err)
	}
	defer shared.Close()
	cfg.SharedState = shared
	cfg.SharedCache = shared
	var metricsDir string
	cfg.Metrics, metricsDir = o.metrics.worker()
	if cfg.Cluster != nil {
		cfg.Cluster.Mode = bus.Worker
		cfg.Cluster.NATSURL, cfg.Cluster.NATSToken = natsURL, natsToken
	}
	// Signals first: a SIGTERM while booting must still stop us gracefully.
	// SIGTERM (from the supervisor, or from systemd to the whole group)
	// drains; it stays caught afterwards, so that the second one, which the
	// supervisor sends when the first came to the group, does not kill us
	// mid-drain.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	// These are the supervisor's to act on; a terminal sends them to the
	// whole process group (Ctrl-C is SIGINT): the supervisor drives the drain.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU)
	node, err := host.New(cfg)
	if err != nil {
		return err
	}
	mctx, stopMetrics := context.WithCancel(context.Background())
	defer stopMetrics()
	serveWorkerMetrics(mctx, cfg.Metrics, metricsDir, log)
	if err := w.Ready(); err != nil {
		log.Warn("telling the supervisor we are ready", "err", err)
	}
	select {
	case s := <-sig:
		log.Debug("worker stopping", "signal", s.String())
	case <-w.Orphaned():
		log.Warn("the supervising process is gone; stopping")
	case <-node.Exhausted():
		log.Info("worker served --max-requests; retiring")
	case <-node.Wedged(secDuration(o.wf.timeout)):
		// As gunicorn does with a worker past --timeout: Python blocked in C
		// cannot be interrupted, and closing would wait for it, so the process
		// ends and the supervisor starts a fresh one.
		log.Error("every Python thread of this worker is stuck past --timeout; recycling the worker", "timeout", o.wf.timeout)
		os.Exit(3)
	}
	return node.Close()
}

// runSupervisor runs the node's state and cluster membership, and supervises
// its worker processes.
func (o *startOptions) runSupervisor(app string, log *slog.Logger) error {
	cluster, err := o.nf.config()
	if err != nil {
		return err
	}
	webCfg, err := o.wf.config(app, log) // validates the web flags before any worker starts
	if err != nil {
		return err
	}
	var files []*os.File
	var addrs []string
	for _, b := range webCfg.Binds {
		ln, err := web.Listen(b)
		if err != nil {
			return err
		}
		f, err := supervisor.ListenerFile(ln)
		if err != nil {
			return err
		}
		addrs = append(addrs, ln.Addr().String())
		defer ln.Close()
		files = append(files, f)
	}
	if err := o.ops.applyWeb(webCfg); err != nil {
		return err
	}
	rmPID, err := writePIDFile(o.ops.pidFile)
	if err != nil {
		return err
	}
	defer rmPID()
	mset, menv, rmMetrics, err := o.metrics.supervisor()
	if err != nil {
		return err
	}
	defer rmMetrics()
	if cluster != nil {
		cluster.Metrics = mset
	}
	node, err := host.StartSupervisor(state.Config{}, o.ml.cacheConfig(), cluster, log)
	if err != nil {
		return err
	}
	defer node.Close()
	defer registerName(&o.nf, node.Bus(), log)()
	node.RegisterMetrics(mset)
	env := append(os.Environ(), envNodeState+"="+node.StateSocket())
	env = append(env, menv...)
	clusterAddr := ""
	if b := node.Bus(); b != nil {
		url, token := b.ClientURL()
		env = append(env, envNodeNATS+"="+url, envNodeNATSToken+"="+token)
		clusterAddr = b.ClusterAddr()
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// Workers share the CPUs as gunicorn's and uvicorn's do, a CPU's
		// worth each: a worker that may run Go on more CPUs than it gets
		// only adds thread switches (on one, wake-ups of its Python threads
		// are batched too; see pybridge). Of its share, one CPU is left to
		// the Python thread that runs the app, as in a node that serves it
		// itself; its pool keeps 2 threads per CPU of the share.
		share := max(1, runtime.NumCPU()/o.workers)
		env = append(env, "GOMAXPROCS="+strconv.Itoa(goProcsBesidePython(share)))
		if o.threads == 0 { // --threads, else $HORNBEAM_THREADS
			env = append(env, "HORNBEAM_THREADS="+strconv.Itoa(max(4, 2*share)))
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start workers: %w", err)
	}
	started := make(chan struct{})
	sv, err := supervisor.New(supervisor.Config{
		Workers: o.workers,
		Command: func(id int) *exec.Cmd {
			c := exec.Command(exe, os.Args[1:]...)
			c.Env = env
			c.Stdout, c.Stderr = os.Stdout, os.Stderr
			return c
		},
		Listeners:   files,
		StopTimeout: secDuration(o.wf.gracefulTimeout),
		OnFirstReady: func() {
			if b := node.Bus(); b != nil {
				b.Announce()
			}
			close(started)
		},
		OnReplace: mset.WorkerRestart,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	mset.GaugeFunc("hornbeam_workers", "Worker processes ready and serving.", func() float64 { return float64(sv.Running()) })
	stopMetrics, err := o.metrics.serve(mset, node.Bus, node.Name(), log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sv.Run(ctx) }()
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sig)
	if o.reload {
		dirs := absPaths(o.pythonPath)
		if cwd, err := os.Getwd(); err == nil {
			dirs = append(dirs, cwd)
		}
		go pywatch.Watch(ctx, dirs, time.Second, func(path string) {
			log.Info("reloading: a Python file changed", "file", filepath.Base(path))
			sv.Reload()
		})
	}
	select {
	case <-started:
		log.Info("node started", "node", node.Name(), "cluster", clusterAddr, "http", strings.Join(addrs, ","),
			"pid", os.Getpid(), "workers", o.workers)
	case err := <-done:
		return err
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
		cancel()
		return <-done
	}
	for {
		select {
		case err := <-done:
			return err
		case s := <-sig:
			switch s {
			case syscall.SIGHUP:
				sv.Reload()
			case syscall.SIGTTIN:
				sv.Grow()
			case syscall.SIGTTOU:
				sv.Shrink()
			default:
				log.Info("stopping", "signal", s.String())
				cancel()
				return <-done
			}
		}
	}
}

// goProcsBesidePython is how many CPUs Go may use (GOMAXPROCS) in a process
// that serves an app, out of cpus: one fewer, for the Python thread that
// runs the app. Go's scheduler does not see that thread, which holds a CPU
// while requests come in; given every CPU, Go wakes and spins threads for
// the CPU that thread is using, and on two CPUs it does not batch its
// hand-offs to Python as it does on one P. Measured on two CPUs with wrk on
// the same CPUs, side by side against the same node given both: 0.89x,
// 0.87x and 0.95x the CPU per request (ASGI hello, WSGI hello, a 64 KiB
// body), and a third to a half of the thread switches.
func goProcsBesidePython(cpus int) int { return max(1, cpus-1) }

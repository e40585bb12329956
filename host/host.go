// Package host assembles a node: the embedded interpreter, node-wide state and
// the cluster bus (and, in a later layer, the HTTP server), with their lifecycle.
package host

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hornbeam-go/hornbeam/batch"
	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/metrics"
	"github.com/hornbeam-go/hornbeam/process"
	"github.com/hornbeam-go/hornbeam/pybridge"
	"github.com/hornbeam-go/hornbeam/python"
	"github.com/hornbeam-go/hornbeam/state"
	"github.com/hornbeam-go/hornbeam/sysinfo"
	"github.com/hornbeam-go/hornbeam/web"
)

// Config configures a Node.
type Config struct {
	Threads int // pool threads for synchronous Python kept available; 0 picks a default
	// MaxThreads caps each pool (RPC, HTTP, batches) when it grows past
	// Threads to replace stuck threads; 0 = 4×Threads.
	MaxThreads int
	// CastTimeout bounds a cast this node runs; 0 = 60 s.
	CastTimeout time.Duration
	// StateMaxValue bounds a state value's encoding in bytes; 0 =
	// DefaultStateMaxValue.
	StateMaxValue int
	// SpinWait is how long an idle pool thread spins for the next call before
	// parking (see pybridge.Config.SpinWait); 0: never, the default.
	SpinWait time.Duration
	// InlineSteps lets a caller run a coroutine call's first step while the
	// event loop sleeps (see pybridge.Config.InlineSteps).
	InlineSteps bool
	PythonPath  []string // extra sys.path entries, in order
	Argv        []string // sys.argv
	State       state.Config
	// SharedState, when set, backs state_* instead of a store of this process:
	// a worker process uses its node's store.
	SharedState pybridge.StateStore
	// Cache bounds the inference cache; SharedCache, when set, is used
	// instead (a worker process uses its node's).
	Cache       state.CacheConfig
	SharedCache MLCache
	// Cluster joins the node to a cluster; nil leaves it alone, named
	// "nonode@nohost" as an Erlang node without distribution.
	Cluster *bus.Config
	// Web serves a WSGI app over HTTP; nil serves none.
	Web *web.Config
	// Processes bounds hornbeam_erlang's processes.
	Processes process.Limits
	// GracefulTimeout bounds how long Close waits for requests in flight.
	GracefulTimeout time.Duration
	Logger          *slog.Logger
	// Metrics counts what the node does; nil counts nothing.
	Metrics *metrics.Set
}

// Node is one hornbeam node: a Python interpreter with the host's services.
type Node struct {
	cfg     Config
	log     *slog.Logger
	name    string
	started time.Time
	state   *state.Store // nil in a worker process
	store   pybridge.StateStore
	cache   MLCache
	batcher *batch.Batcher
	py      *pybridge.Interpreter
	bus     atomic.Pointer[bus.Bus]
	web     *web.Server
	gpus    sysinfo.GPUCache
	cancel  context.CancelFunc
	closed  <-chan struct{} // when Close ends the node's goroutines
	swept   chan struct{}
	events  chan bus.Event // membership events for Python, at most maxQueuedEvents
	// Processes (hornbeam_erlang's spawn, send, receive, ...).
	procs        *process.Table
	unwatchProcs func()
	localCalls   sync.Map // async_call id -> cancel, for calls to this node
	dag          dagHost
	// localCasts bounds the casts to itself a node outside a cluster runs.
	localCasts chan struct{}
	unwatch    func()
}

// New starts a node's interpreter, state and, when configured, its cluster bus.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, name: "nonode@nohost", started: time.Now(),
		store: cfg.SharedState, cache: cfg.SharedCache, swept: make(chan struct{}),
		events: make(chan bus.Event, maxQueuedEvents), localCasts: make(chan struct{}, bus.DefaultMaxInflight)}
	if n.cache == nil {
		n.cache = LocalCache{state.NewCache(cfg.Cache)}
	}
	n.batcher = batch.New(n.runBatch)
	if n.store == nil {
		n.state = state.New(cfg.State)
		n.store = pybridge.LocalState{Store: n.state}
	}
	if cfg.Cluster != nil {
		n.name = cfg.Cluster.Name
	}
	// A receiving process polls before it sleeps only when --spin-us is
	// given: measured on a loaded 2-core machine, spinning receivers took
	// the CPU their senders needed and round trips got slower.
	spin := max(cfg.SpinWait, 0)
	n.procs = process.New(process.Config{Node: n.name, Limits: cfg.Processes, Spawn: n.spawnHere,
		Call: n.serveCall, Killed: n.procKilled, Spin: spin, Logger: cfg.Logger})
	funcs := n.pyFuncs()
	var inPlace map[string]bool
	for k, f := range n.mlFuncs() {
		funcs[k] = f
	}
	for k, f := range n.procFuncs() {
		funcs[k] = f
	}
	for k, f := range n.dagFuncs() {
		funcs[k] = f
	}
	for k, f := range n.logFuncs() {
		funcs[k] = f
	}
	if cfg.Web != nil {
		wcfg := *cfg.Web
		if wcfg.Logger == nil {
			wcfg.Logger = cfg.Logger
		}
		wcfg.Metrics = cfg.Metrics
		w, err := web.New(wcfg)
		if err != nil {
			return nil, err
		}
		n.web = w
		for k, f := range w.Funcs() {
			funcs[k] = f
		}
		inPlace = w.InPlaceArgs()
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = pybridge.DefaultThreads()
	}
	httpThreads := 0
	if cfg.Web != nil {
		httpThreads = threads // its own pool: RPC load cannot starve requests, nor the reverse
	}
	py, err := pybridge.New(pybridge.Config{
		Threads:     threads,
		MaxThreads:  cfg.MaxThreads,
		HTTPThreads: httpThreads,
		StateMaxValue: func() int {
			if cfg.StateMaxValue > 0 {
				return cfg.StateMaxValue
			}
			return DefaultStateMaxValue
		}(),
		SpinWait:    cfg.SpinWait,
		InlineSteps: cfg.InlineSteps,
		Packages:    python.Packages,
		PythonPath:  cfg.PythonPath,
		Argv:        cfg.Argv,
		State:       n.store,
		NodeName:    n.Name,
		Funcs:       funcs,
		InPlaceArgs: inPlace,
		AsyncFuncs:  n.procAsyncFuncs(),
		Logger:      cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("host: starting Python: %w", err)
	}
	n.py = py
	if _, err := py.Call(context.Background(), procModule, "_bind_loop", nil); err != nil {
		py.Close()
		return nil, fmt.Errorf("host: starting processes: %w", err)
	}
	n.registerMetrics()
	n.installPythonLogging()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.closed = cancel, ctx.Done()
	go func() {
		defer close(n.swept)
		if n.state != nil {
			n.state.Run(ctx, time.Second)
		}
	}()
	if cfg.Cluster != nil {
		bc := *cfg.Cluster
		if bc.MaxPayload <= 0 {
			bc.MaxPayload = bus.DefaultMaxPayload
		}
		if bc.CastTimeout <= 0 {
			bc.CastTimeout = cfg.CastTimeout
		}
		// The reply's envelope takes a few bytes of the payload limit.
		bc.Handler = pyHandler{py, n.batcher, max(bc.MaxPayload-replyOverhead, 1)}
		bc.Capabilities = withDeclared(capabilities(context.Background(), &n.gpus), cfg.Cluster.Capabilities)
		bc.Info = func(ctx context.Context) any { return n.info(ctx) }
		if bc.Logger == nil {
			bc.Logger = cfg.Logger
		}
		bc.Metrics = cfg.Metrics
		b, err := bus.Start(bc)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.bus.Store(b)
		n.unwatch = b.Watch(n.forwardEvent)
		go n.forwardEvents(ctx)
		n.serveProcs(b)
	}
	if n.web != nil {
		if err := n.web.Start(py); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// replyOverhead bounds the bytes a reply's envelope adds to its value.
const replyOverhead = 64

// maxQueuedEvents bounds the membership events waiting for Python's callbacks.
const maxQueuedEvents = 4096

// DefaultStateMaxValue is Config.StateMaxValue when it is 0.
const DefaultStateMaxValue = 8 << 20

// Wedged returns a channel closed once every thread some Python pool may
// have has been stuck (in calls whose callers gave up) for d.
func (n *Node) Wedged(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		var since time.Time
		t := time.NewTicker(min(time.Second, max(d/4, 10*time.Millisecond)))
		defer t.Stop()
		for {
			select {
			case <-n.closed:
				return
			case <-t.C:
			}
			switch {
			case !n.py.Wedged():
				since = time.Time{}
			case since.IsZero():
				since = time.Now()
			case time.Since(since) >= d:
				close(ch)
				return
			}
		}
	}()
	return ch
}

// Exhausted is closed when the web server has served its MaxRequests; nil
// (never) without one.
func (n *Node) Exhausted() <-chan struct{} {
	if n.web == nil {
		return nil
	}
	return n.web.Exhausted()
}

// WebAddrs returns the addresses the app is served on.
func (n *Node) WebAddrs() []string {
	if n.web == nil {
		return nil
	}
	return n.web.Addrs()
}

// forwardEvent queues a membership event for Python's monitor_node
// callbacks; forwardEvents delivers them one at a time, in order, so a
// nodedown and the nodeup after it never swap.
func (n *Node) forwardEvent(e bus.Event) {
	select {
	case n.events <- e:
	default:
		n.log.Warn("monitor_node event dropped: callbacks too slow", "event", e.Kind, "peer", e.Node)
	}
}

func (n *Node) forwardEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.events:
			args, _ := marshal([]any{e.Kind, e.Node, e.Seq})
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if _, err := n.py.Call(cctx, "hornbeam_erlang._monitor", "_dispatch", args); err != nil {
				n.log.Warn("monitor_node callback failed", "event", e.Kind, "peer", e.Node, "err", err)
			}
			cancel()
		}
	}
}

// info answers node_info: resources, roles and identity.
func (n *Node) info(ctx context.Context) map[string]any {
	m := withTotals(nodeInfo(ctx, n.name, n.started, n.cfg.Cluster, n.cluster(), &n.gpus), n.cfg.Metrics)
	m["processes"] = n.procs.Stats()
	pools := map[string]any{}
	for lane, name := range map[pybridge.Lane]string{pybridge.LaneRPC: "rpc", pybridge.LaneHTTP: "http", pybridge.LaneBatch: "batch"} {
		if total, lost := n.py.PoolStats(lane); total > 0 {
			pools[name] = map[string]int{"threads": total, "stuck": lost}
		}
	}
	m["python_threads"] = pools
	if b := n.cluster(); b != nil {
		m["casts"] = b.CastStats()
	}
	return m
}

func nodeInfo(ctx context.Context, name string, started time.Time, c *bus.Config, b *bus.Bus, gpus *sysinfo.GPUCache) map[string]any {
	si := sysinfo.CollectWithGPUs(ctx, gpus.Get(ctx))
	m := map[string]any{
		"name": name, "hostname": si.Hostname, "os": si.OS, "arch": si.Arch,
		"cpu_count": si.CPUCount, "memory_total": si.MemoryTotal, "memory_available": si.MemoryAvailable,
		"load1": si.Load1, "load5": si.Load5, "load15": si.Load15,
		"gpus": si.GPUs, "gpu_count": si.GPUCount, "process_rss": si.ProcessRSS,
		"python": pybridge.Version(), "go": runtime.Version(),
		"uptime_s": time.Since(started).Seconds(), "roles": []string{}, "hidden": false,
	}
	if c != nil {
		if c.Roles != nil {
			m["roles"] = c.Roles
		}
		m["hidden"] = c.Hidden
	}
	if b != nil {
		m["cluster_addr"] = b.ClusterAddr()
	}
	return m
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Python returns the node's interpreter.
func (n *Node) Python() *pybridge.Interpreter { return n.py }

// State returns the node-wide state, or nil in a worker process (whose state
// is its node's).
func (n *Node) State() *state.Store { return n.state }

// Bus returns the node's cluster bus, or nil when it is not in a cluster.
func (n *Node) Bus() *bus.Bus { return n.cluster() }

// RunMain runs a script, module or code string as __main__ and returns its exit status.
func (n *Node) RunMain(kind pybridge.MainKind, target string) int {
	return n.py.RunMain(kind, target)
}

// Close stops the node: it leaves the cluster (peers see it go at once), then
// Python's threads finish and the services stop.
func (n *Node) Close() error {
	if n.web != nil {
		grace := n.cfg.GracefulTimeout
		if grace <= 0 {
			grace = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		if err := n.web.Close(ctx); err != nil {
			n.log.Warn("requests still running at the graceful timeout", "err", err)
		}
		cancel()
	}
	if n.unwatch != nil {
		n.unwatch()
	}
	if n.unwatchProcs != nil {
		n.unwatchProcs()
	}
	n.procs.Close()
	if b := n.bus.Swap(nil); b != nil {
		b.Close()
	}
	err := n.py.Close()
	n.cancel()
	<-n.swept
	return err
}

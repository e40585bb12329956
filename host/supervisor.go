package host

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/internal/sharedstate"
	"github.com/hornbeam-go/hornbeam/metrics"
	"github.com/hornbeam-go/hornbeam/state"
	"github.com/hornbeam-go/hornbeam/sysinfo"
)

// SupervisorNode is the part of a node with worker processes that lives in
// the supervising process: the node-wide state, served to the workers over a
// Unix socket, and the node's place in the cluster (server, membership,
// pings), while the workers run Python and serve the node's calls.
type SupervisorNode struct {
	name    string
	started time.Time
	state   *state.Store
	cache   *state.Cache
	sockDir string
	stateLn net.Listener
	bus     atomic.Pointer[bus.Bus] // set once Start returns; node_info may ask before
	metrics atomic.Pointer[metrics.Set]
	gpus    sysinfo.GPUCache
	cancel  context.CancelFunc
	swept   chan struct{}
}

// StartSupervisor starts a node's supervising side; cluster may be nil.
func StartSupervisor(stateCfg state.Config, cacheCfg state.CacheConfig, cluster *bus.Config, log *slog.Logger) (*SupervisorNode, error) {
	s := &SupervisorNode{name: "nonode@nohost", started: time.Now(), state: state.New(stateCfg), swept: make(chan struct{})}
	dir, err := os.MkdirTemp("", "hornbeam-node-") // 0700: only this user reaches the state
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	s.sockDir = dir
	ln, err := net.Listen("unix", filepath.Join(dir, "state.sock"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("host: state socket: %w", err)
	}
	s.stateLn = ln
	s.cache = state.NewCache(cacheCfg)
	go sharedstate.Serve(ln, s.state, s.cache)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.swept)
		s.state.Run(ctx, time.Second)
	}()
	if cluster != nil {
		s.name = cluster.Name
		bc := *cluster
		bc.Mode = bus.Supervisor
		bc.Capabilities = withDeclared(capabilities(context.Background(), &s.gpus), cluster.Capabilities)
		bc.Info = func(ctx context.Context) any {
			return withTotals(nodeInfo(ctx, s.name, s.started, cluster, s.bus.Load(), &s.gpus), s.metrics.Load())
		}
		if bc.Logger == nil {
			bc.Logger = log
		}
		b, err := bus.Start(bc)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.bus.Store(b)
	}
	return s, nil
}

// Name returns the node's name.
func (s *SupervisorNode) Name() string { return s.name }

// Bus returns the node's bus, or nil outside a cluster.
func (s *SupervisorNode) Bus() *bus.Bus { return s.bus.Load() }

// StateSocket is the path workers dial for the node's state.
func (s *SupervisorNode) StateSocket() string { return s.stateLn.Addr().String() }

// State returns the node-wide state.
func (s *SupervisorNode) State() *state.Store { return s.state }

// Close leaves the cluster and stops serving the state.
func (s *SupervisorNode) Close() error {
	if b := s.bus.Load(); b != nil {
		b.Close()
	}
	s.stateLn.Close()
	s.cancel()
	<-s.swept
	return os.RemoveAll(s.sockDir)
}

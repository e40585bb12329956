// Package host assembles a node: the embedded interpreter, node-wide state and
// (in later layers) the cluster bus and the HTTP server, with their lifecycle.
package host

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hornbeam-go/hornbeam/pybridge"
	"github.com/hornbeam-go/hornbeam/python"
	"github.com/hornbeam-go/hornbeam/state"
)

// Config configures a Node.
type Config struct {
	// Name is the node's name; empty means "nonode@nohost", as in Erlang.
	Name       string
	Threads    int      // pool threads for synchronous Python; 0 picks a default
	PythonPath []string // extra sys.path entries, in order
	Argv       []string // sys.argv
	State      state.Config
	Logger     *slog.Logger
}

// Node is one hornbeam node: a Python interpreter with the host's services.
type Node struct {
	cfg    Config
	log    *slog.Logger
	state  *state.Store
	py     *pybridge.Interpreter
	cancel context.CancelFunc
	swept  chan struct{}
}

// New starts a node's interpreter and services.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = "nonode@nohost"
	}
	n := &Node{cfg: cfg, log: cfg.Logger, state: state.New(cfg.State), swept: make(chan struct{})}
	name := cfg.Name
	py, err := pybridge.New(pybridge.Config{
		Threads:    cfg.Threads,
		Packages:   python.Packages,
		PythonPath: cfg.PythonPath,
		Argv:       cfg.Argv,
		State:      n.state,
		NodeName:   func() string { return name },
		Logger:     cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("host: starting Python: %w", err)
	}
	n.py = py
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.swept)
		n.state.Run(ctx, time.Second)
	}()
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Python returns the node's interpreter.
func (n *Node) Python() *pybridge.Interpreter { return n.py }

// State returns the node-wide state.
func (n *Node) State() *state.Store { return n.state }

// RunMain runs a script, module or code string as __main__ and returns its exit status.
func (n *Node) RunMain(kind pybridge.MainKind, target string) int {
	return n.py.RunMain(kind, target)
}

// Close stops the node: Python's threads finish, then the services stop.
func (n *Node) Close() error {
	err := n.py.Close()
	n.cancel()
	<-n.swept
	return err
}

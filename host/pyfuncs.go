package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// pyError is a Go error as the Python exception hornbeam_erlang defines for it.
type pyError struct {
	class string // "module:Class" or a builtin name
	msg   string
	attrs map[string]any
}

func (e *pyError) Error() string       { return e.msg }
func (e *pyError) PythonClass() string { return e.class }
func (e *pyError) PythonAttrs() []byte {
	if e.attrs == nil {
		return nil
	}
	b, _ := cbor.Marshal(e.attrs)
	return b
}

// toPython maps a bus error to the exception class Python code catches.
func toPython(err error) error {
	var re *bus.RemoteError
	switch {
	case errors.As(err, &re):
		return &pyError{class: "hornbeam_erlang:RemoteError", msg: err.Error(), attrs: map[string]any{
			"type": re.Type, "message": re.Message, "traceback": re.Traceback, "node": re.Node}}
	case errors.Is(err, bus.ErrTimeout):
		return &pyError{class: "hornbeam_erlang:RPCTimeout", msg: err.Error()}
	case errors.Is(err, bus.ErrNodeDown), errors.Is(err, bus.ErrClosed):
		return &pyError{class: "hornbeam_erlang:NodeDown", msg: err.Error()}
	case errors.Is(err, bus.ErrBadRPC):
		return &pyError{class: "hornbeam_erlang:BadRPC", msg: err.Error()}
	case errors.Is(err, bus.ErrPayloadTooLarge):
		return &pyError{class: "hornbeam_erlang:PayloadTooLarge", msg: err.Error()}
	case errors.Is(err, bus.ErrBusy):
		return &pyError{class: "hornbeam_erlang:Busy", msg: err.Error()}
	default:
		return &pyError{class: "hornbeam_erlang:RPCError", msg: err.Error()}
	}
}

func typeError(format string, a ...any) error {
	return &pyError{class: "TypeError", msg: fmt.Sprintf(format, a...)}
}

var errNoCluster = &pyError{class: "hornbeam_erlang:NodeDown",
	msg: "this node is not part of a cluster: start it with --name or --sname"}

// Argument lists as hornbeam_erlang sends them (CBOR arrays).
type rpcArgs struct {
	_        struct{} `cbor:",toarray"`
	Node     string
	Module   string
	Function string
	Args     cbor.RawMessage
	Timeout  *float64 // milliseconds; nil = no timeout
}

type multicallArgs struct {
	_        struct{} `cbor:",toarray"`
	Nodes    []string
	Module   string
	Function string
	Args     cbor.RawMessage
	Timeout  *float64
}

func decodeArgs(fn string, data []byte, v any) error {
	if err := cbor.Unmarshal(data, v); err != nil {
		return typeError("%s(): bad arguments: %v", fn, err)
	}
	return nil
}

func withTimeout(ctx context.Context, ms *float64) (context.Context, context.CancelFunc, error) {
	if ms == nil {
		return ctx, func() {}, nil
	}
	if *ms <= 0 {
		return nil, nil, &pyError{class: "ValueError", msg: fmt.Sprintf("timeout_ms must be positive, not %v", *ms)}
	}
	c, cancel := context.WithTimeout(ctx, time.Duration(*ms*float64(time.Millisecond)))
	return c, cancel, nil
}

func marshal(v any) ([]byte, error) { return cbor.Marshal(v) }

// pyFuncs are the Go functions hornbeam_erlang and hornbeam_dist call.
func (n *Node) pyFuncs() map[string]pybridge.GoFunc {
	return map[string]pybridge.GoFunc{
		"rpc_call":   n.pyRPCCall,
		"rpc_cast":   n.pyRPCCast,
		"multicall":  n.pyMulticall,
		"nodes":      n.pyNodes,
		"ping":       n.pyPing,
		"node_info":  n.pyNodeInfo,
		"connect":    n.pyConnect,
		"disconnect": n.pyDisconnect,
		"event_seq":  n.pyEventSeq,
		// module_allowed raises BadRPC when --allow-module keeps other nodes
		// from running module: hornbeam's own entry points (DAG executors,
		// routers) that run code for other nodes ask before they import it.
		"module_allowed": n.pyModuleAllowed,
	}
}

func (n *Node) pyModuleAllowed(_ context.Context, data []byte) ([]byte, error) {
	var a []string
	if err := cbor.Unmarshal(data, &a); err != nil || len(a) != 1 {
		return nil, typeError("module_allowed(): want one module name (%v)", err)
	}
	module := a[0]
	if err := n.remoteAllowed(module); err != nil {
		return nil, toPython(err)
	}
	return []byte{0xf6}, nil // None
}

func (n *Node) cluster() *bus.Bus { return n.bus.Load() }

func (n *Node) pyRPCCall(ctx context.Context, data []byte) ([]byte, error) {
	var a rpcArgs
	if err := decodeArgs("rpc_call", data, &a); err != nil {
		return nil, err
	}
	ctx, cancel, err := withTimeout(ctx, a.Timeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	b := n.cluster()
	if b == nil {
		if a.Node != n.Name() {
			return nil, errNoCluster
		}
		return n.localCall(ctx, a.Module, a.Function, a.Args)
	}
	v, err := b.Call(ctx, a.Node, a.Module, a.Function, a.Args)
	if err != nil {
		return nil, toPython(err)
	}
	n.dag.replyBytes.Add(int64(len(v)))
	return v, nil
}

// localCall serves rpc_call(node(), ...) on a node without a cluster.
func (n *Node) localCall(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	v, err := (pyHandler{py: n.py, batcher: n.batcher}).Call(ctx, module, function, args)
	if err == nil {
		return v, nil
	}
	var re *bus.RemoteError
	if errors.As(err, &re) {
		re.Node = n.Name()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = bus.ErrTimeout
	}
	return nil, toPython(err)
}

func (n *Node) pyRPCCast(ctx context.Context, data []byte) ([]byte, error) {
	var a rpcArgs
	if err := decodeArgs("rpc_cast", data, &a); err != nil {
		return nil, err
	}
	b := n.cluster()
	if b == nil {
		if a.Node != n.Name() {
			return nil, errNoCluster
		}
		if err := n.localCast(a.Module, a.Function, a.Args); err != nil {
			return nil, err
		}
		return marshal(nil)
	}
	if err := b.Cast(ctx, a.Node, a.Module, a.Function, a.Args); err != nil {
		return nil, toPython(err)
	}
	return marshal(nil)
}

// localCast serves rpc_cast(node(), ...) on a node without a cluster: at most
// bus.DefaultMaxInflight at once (beyond, Busy), each under the cast timeout.
func (n *Node) localCast(module, function string, args []byte) error {
	select {
	case n.localCasts <- struct{}{}:
	default:
		return &pyError{class: "hornbeam_erlang:Busy", msg: fmt.Sprintf("%d casts to this node are running", cap(n.localCasts))}
	}
	go func() {
		defer func() { <-n.localCasts }()
		timeout := n.cfg.CastTimeout
		if timeout <= 0 {
			timeout = bus.DefaultCastTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err := n.localCall(ctx, module, function, args); err != nil {
			lvl := slog.LevelWarn
			if errors.Is(err, pybridge.ErrClosed) || n.py.Closing() {
				lvl = slog.LevelDebug // cancelled by the node's shutdown
			}
			n.log.Log(ctx, lvl, "cast failed", "from", n.Name(), "module", module, "function", function, "err", err)
		}
	}()
	return nil
}

// multicallResult is one answer: [node, ok, value] or [node, false, [kind, type, message, traceback]].
func (n *Node) pyMulticall(ctx context.Context, data []byte) ([]byte, error) {
	var a multicallArgs
	if err := decodeArgs("multicall", data, &a); err != nil {
		return nil, err
	}
	ctx, cancel, err := withTimeout(ctx, a.Timeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	b := n.cluster()
	if b == nil {
		return nil, errNoCluster
	}
	results, bad := b.Multicall(ctx, a.Nodes, a.Module, a.Function, a.Args)
	out := make([]any, 0, len(results))
	for _, r := range results {
		if r.Err == nil {
			out = append(out, []any{r.Node, true, cbor.RawMessage(r.Value)})
			continue
		}
		pe := toPython(r.Err).(*pyError)
		out = append(out, []any{r.Node, false, []any{pe.class, pe.msg, pe.attrs}})
	}
	if bad == nil {
		bad = []string{}
	}
	return marshal([]any{out, bad})
}

func (n *Node) pyNodes(ctx context.Context, data []byte) ([]byte, error) {
	var a []*string
	if err := decodeArgs("nodes", data, &a); err != nil {
		return nil, err
	}
	b := n.cluster()
	if b == nil {
		return marshal([]string{})
	}
	kind := bus.Visible
	if len(a) > 0 && a[0] != nil {
		switch *a[0] {
		case "visible":
		case "hidden":
			kind = bus.Hidden
		case "connected":
			kind = bus.Connected
		case "this":
			return marshal([]string{n.Name()})
		case "known":
			return marshal(append([]string{n.Name()}, b.Nodes(bus.Connected)...))
		default:
			return nil, &pyError{class: "ValueError", msg: fmt.Sprintf(
				"nodes(%q): want 'visible', 'hidden', 'connected', 'this' or 'known'", *a[0])}
		}
	}
	return marshal(b.Nodes(kind))
}

func (n *Node) pyPing(ctx context.Context, data []byte) ([]byte, error) {
	var a []string
	if err := decodeArgs("ping", data, &a); err != nil || len(a) != 1 {
		return nil, typeError("ping(node): node must be a str")
	}
	if a[0] == n.Name() {
		return marshal("pong")
	}
	b := n.cluster()
	if b == nil {
		return marshal("pang")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if b.Ping(ctx, a[0]) {
		return marshal("pong")
	}
	return marshal("pang")
}

func (n *Node) pyNodeInfo(ctx context.Context, data []byte) ([]byte, error) {
	var a []any
	if err := decodeArgs("node_info", data, &a); err != nil || len(a) < 1 {
		return nil, typeError("node_info(node): node must be a str")
	}
	node, ok := a[0].(string)
	if !ok {
		return nil, typeError("node_info(node): node must be a str")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b := n.cluster()
	if b == nil || node == n.Name() {
		if node != n.Name() {
			return nil, errNoCluster
		}
		return marshal(n.info(ctx))
	}
	v, err := b.Info(ctx, node)
	if err != nil {
		return nil, toPython(err)
	}
	return v, nil
}

func (n *Node) pyConnect(ctx context.Context, data []byte) ([]byte, error) {
	var a []string
	if err := decodeArgs("connect", data, &a); err != nil || len(a) != 1 {
		return nil, typeError("connect(node_or_host_port): want a str")
	}
	b := n.cluster()
	if b == nil {
		return nil, errNoCluster
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := b.Connect(ctx, a[0])
	if err != nil {
		return nil, &pyError{class: "ValueError", msg: err.Error()}
	}
	return marshal(ok)
}

func (n *Node) pyDisconnect(ctx context.Context, data []byte) ([]byte, error) {
	var a []string
	if err := decodeArgs("disconnect", data, &a); err != nil || len(a) != 1 {
		return nil, typeError("disconnect(node): node must be a str")
	}
	b := n.cluster()
	if b == nil {
		return marshal(false)
	}
	return marshal(b.Disconnect(a[0]))
}

// pyEventSeq is the Seq of the latest membership event (0 outside a cluster).
func (n *Node) pyEventSeq(ctx context.Context, data []byte) ([]byte, error) {
	var seq uint64
	if b := n.cluster(); b != nil {
		seq = b.EventSeq()
	}
	return marshal(seq)
}

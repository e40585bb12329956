package host

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/process"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// The Go side of hornbeam_erlang's processes: Python passes pids (CBOR tag
// process.TagPid) and raw messages, which stay CBOR here.

const procModule = "hornbeam_erlang._process"

// procError maps a process table error to the Python exception it becomes.
func procError(err error) error {
	var xe *process.ExitError
	var re *process.RemoteError
	switch {
	case errors.As(err, &xe):
		return &pyError{class: "hornbeam_erlang:ProcessExit", msg: xe.Reason, attrs: map[string]any{"reason": xe.Reason}}
	case errors.Is(err, process.ErrTimeout):
		return &pyError{class: "hornbeam_erlang:ReceiveTimeout", msg: "receive timed out"}
	case errors.Is(err, process.ErrBusy):
		return &pyError{class: "hornbeam_erlang:Busy", msg: err.Error()}
	case errors.Is(err, process.ErrLimit):
		return &pyError{class: "hornbeam_erlang:ProcessLimit", msg: err.Error()}
	case errors.Is(err, process.ErrNoProc):
		return &pyError{class: "hornbeam_erlang:NoProcess", msg: err.Error()}
	case errors.Is(err, process.ErrName):
		return &pyError{class: "ValueError", msg: err.Error()}
	case errors.Is(err, process.ErrClosed):
		return &pyError{class: "hornbeam_erlang:ProcessExit", msg: "shutdown", attrs: map[string]any{"reason": "shutdown"}}
	case errors.As(err, &re):
		return &pyError{class: re.Class, msg: re.Message}
	case errors.Is(err, context.Canceled):
		return &pyError{class: "hornbeam_erlang:ProcessExit", msg: "shutdown", attrs: map[string]any{"reason": "shutdown"}}
	default:
		return toPython(err)
	}
}

// msTimeout converts receive's timeout_ms (nil: none) to a duration (-1: none).
func msTimeout(ms *float64) time.Duration {
	if ms == nil {
		return -1
	}
	if *ms <= 0 {
		return 0
	}
	return time.Duration(*ms * float64(time.Millisecond))
}

type (
	idArg struct {
		_  struct{} `cbor:",toarray"`
		ID uint64
	}
	recvArgs struct {
		_       struct{} `cbor:",toarray"`
		ID      uint64
		After   uint64
		Timeout *float64
	}
	newArgs struct {
		_    struct{} `cbor:",toarray"`
		Kind int
		Link *process.Pid
	}
	exitArgs struct {
		_      struct{} `cbor:",toarray"`
		ID     uint64
		Reason string
	}
	sendArgs struct {
		_    struct{} `cbor:",toarray"`
		To   process.Pid
		Msg  cbor.RawMessage
		Name string
	}
	nameArgs struct {
		_    struct{} `cbor:",toarray"`
		Name string
		Node *string
		Msg  cbor.RawMessage
	}
	pidPair struct {
		_   struct{} `cbor:",toarray"`
		A   process.Pid
		B   process.Pid
		Ref string
	}
	spawnArgs struct {
		_        struct{} `cbor:",toarray"`
		Node     string
		Module   string
		Function string
		Args     cbor.RawMessage
		Link     *process.Pid
	}
	groupArgs struct {
		_     struct{} `cbor:",toarray"`
		Group string
		Pid   *process.Pid
		Msg   cbor.RawMessage
	}
)

func (n *Node) procFuncs() map[string]pybridge.GoFunc {
	t := n.procs
	return map[string]pybridge.GoFunc{
		"proc_new": func(ctx context.Context, data []byte) ([]byte, error) {
			var a newArgs
			if err := decodeArgs("spawn", data, &a); err != nil {
				return nil, err
			}
			pid, err := t.New(process.Kind(a.Kind), a.Link)
			if err != nil {
				return nil, procError(err)
			}
			return marshal(pid)
		},
		"proc_exit": func(ctx context.Context, data []byte) ([]byte, error) {
			var a exitArgs
			if err := decodeArgs("exit", data, &a); err != nil {
				return nil, err
			}
			t.Exit(a.ID, a.Reason)
			return marshal(nil)
		},
		"proc_discard": func(ctx context.Context, data []byte) ([]byte, error) {
			var a idArg
			if err := decodeArgs("spawn", data, &a); err != nil {
				return nil, err
			}
			t.Discard(a.ID)
			return marshal(nil)
		},
		"proc_send": func(ctx context.Context, data []byte) ([]byte, error) {
			var a sendArgs
			if err := decodeArgs("send", data, &a); err != nil {
				return nil, err
			}
			if err := t.Send(a.To, a.Msg); err != nil {
				return nil, procError(err)
			}
			return marshal(nil)
		},
		"proc_send_name": func(ctx context.Context, data []byte) ([]byte, error) {
			var a nameArgs
			if err := decodeArgs("send", data, &a); err != nil {
				return nil, err
			}
			node := ""
			if a.Node != nil {
				node = *a.Node
			}
			if err := t.SendName(a.Name, node, a.Msg); err != nil {
				return nil, procError(err)
			}
			return marshal(nil)
		},
		"proc_recv": func(ctx context.Context, data []byte) ([]byte, error) {
			var a recvArgs
			if err := decodeArgs("receive", data, &a); err != nil {
				return nil, err
			}
			_, msg, err := t.Receive(ctx, a.ID, 0, true, msTimeout(a.Timeout))
			if err != nil {
				return nil, procError(err)
			}
			return msg, nil
		},
		"proc_try": func(ctx context.Context, data []byte) ([]byte, error) {
			// [] when the mailbox is empty, else [msg]: a poll that raises nothing.
			var a recvArgs
			if err := decodeArgs("receive", data, &a); err != nil {
				return nil, err
			}
			_, msg, err := t.Receive(ctx, a.ID, 0, true, 0)
			if errors.Is(err, process.ErrTimeout) {
				return []byte{0x80}, nil
			}
			if err != nil {
				return nil, procError(err)
			}
			return append([]byte{0x81}, msg...), nil
		},
		"proc_peek": func(ctx context.Context, data []byte) ([]byte, error) {
			var a recvArgs
			if err := decodeArgs("receive", data, &a); err != nil {
				return nil, err
			}
			seq, msg, err := t.Receive(ctx, a.ID, a.After, false, msTimeout(a.Timeout))
			if err != nil {
				return nil, procError(err)
			}
			return marshal([]any{seq, cbor.RawMessage(msg)})
		},
		"proc_take": func(ctx context.Context, data []byte) ([]byte, error) {
			var a recvArgs
			if err := decodeArgs("receive", data, &a); err != nil {
				return nil, err
			}
			return marshal(t.Take(a.ID, a.After))
		},
		"proc_spawn": func(ctx context.Context, data []byte) ([]byte, error) {
			var a spawnArgs
			if err := decodeArgs("spawn", data, &a); err != nil {
				return nil, err
			}
			if n.cluster() == nil {
				return nil, errNoCluster
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			pid, err := t.Spawn(ctx, a.Node, a.Module, a.Function, a.Args, a.Link)
			if err != nil {
				return nil, procError(err)
			}
			return marshal(pid)
		},
		"proc_register": func(ctx context.Context, data []byte) ([]byte, error) {
			var a sendArgs
			if err := decodeArgs("register", data, &a); err != nil {
				return nil, err
			}
			if err := t.Register(a.Name, a.To); err != nil {
				return nil, procError(err)
			}
			return marshal(nil)
		},
		"proc_unregister": func(ctx context.Context, data []byte) ([]byte, error) {
			var a []string
			if err := decodeArgs("unregister", data, &a); err != nil || len(a) != 1 {
				return nil, typeError("unregister(name): name must be a str")
			}
			if !t.Unregister(a[0]) {
				return nil, &pyError{class: "ValueError", msg: "no process is registered as " + a[0]}
			}
			return marshal(nil)
		},
		"proc_whereis": func(ctx context.Context, data []byte) ([]byte, error) {
			var a []string
			if err := decodeArgs("whereis", data, &a); err != nil || len(a) != 1 {
				return nil, typeError("whereis(name): name must be a str")
			}
			if pid, ok := t.Whereis(a[0]); ok {
				return marshal(pid)
			}
			return marshal(nil)
		},
		"proc_registered": func(ctx context.Context, data []byte) ([]byte, error) {
			return marshal(t.Registered())
		},
		"proc_monitor": func(ctx context.Context, data []byte) ([]byte, error) {
			var a pidPair
			if err := decodeArgs("monitor", data, &a); err != nil {
				return nil, err
			}
			ref, err := t.Monitor(a.A, a.B)
			if err != nil {
				return nil, procError(err)
			}
			return marshal(ref)
		},
		"proc_demonitor": func(ctx context.Context, data []byte) ([]byte, error) {
			var a pidPair
			if err := decodeArgs("demonitor", data, &a); err != nil {
				return nil, err
			}
			return marshal(t.Demonitor(a.A, a.Ref))
		},
		"proc_link": func(ctx context.Context, data []byte) ([]byte, error) {
			var a pidPair
			if err := decodeArgs("link", data, &a); err != nil {
				return nil, err
			}
			if err := t.Link(a.A, a.B); err != nil {
				return nil, procError(err)
			}
			return marshal(nil)
		},
		"proc_unlink": func(ctx context.Context, data []byte) ([]byte, error) {
			var a pidPair
			if err := decodeArgs("unlink", data, &a); err != nil {
				return nil, err
			}
			t.Unlink(a.A, a.B)
			return marshal(nil)
		},
		"proc_trap_exit": func(ctx context.Context, data []byte) ([]byte, error) {
			var a struct {
				_    struct{} `cbor:",toarray"`
				ID   uint64
				Flag bool
			}
			if err := decodeArgs("trap_exit", data, &a); err != nil {
				return nil, err
			}
			old, err := t.TrapExit(a.ID, a.Flag)
			if err != nil {
				return nil, procError(err)
			}
			return marshal(old)
		},
		"proc_exit_signal": func(ctx context.Context, data []byte) ([]byte, error) {
			var a pidPair
			if err := decodeArgs("exit", data, &a); err != nil {
				return nil, err
			}
			t.ExitSignal(a.A, a.B, a.Ref)
			return marshal(nil)
		},
		"proc_is_alive": func(ctx context.Context, data []byte) ([]byte, error) {
			var a []process.Pid
			if err := decodeArgs("is_alive", data, &a); err != nil || len(a) != 1 {
				return nil, typeError("is_alive(pid): want a Pid")
			}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			ok, err := t.IsAlive(ctx, a[0])
			if err != nil {
				return nil, procError(err)
			}
			return marshal(ok)
		},
		"pg_join": func(ctx context.Context, data []byte) ([]byte, error) {
			var a groupArgs
			if err := decodeArgs("join", data, &a); err != nil || a.Pid == nil {
				return nil, typeError("join(group, pid)")
			}
			if err := t.Join(a.Group, *a.Pid); err != nil {
				return nil, procError(err)
			}
			return marshal(nil)
		},
		"pg_leave": func(ctx context.Context, data []byte) ([]byte, error) {
			var a groupArgs
			if err := decodeArgs("leave", data, &a); err != nil || a.Pid == nil {
				return nil, typeError("leave(group, pid)")
			}
			return marshal(t.Leave(a.Group, *a.Pid))
		},
		"pg_members": func(ctx context.Context, data []byte) ([]byte, error) {
			var a groupArgs
			if err := decodeArgs("members", data, &a); err != nil {
				return nil, err
			}
			return marshal(t.Members(a.Group))
		},
		"pg_publish": func(ctx context.Context, data []byte) ([]byte, error) {
			var a groupArgs
			if err := decodeArgs("publish", data, &a); err != nil {
				return nil, err
			}
			return marshal(t.Publish(a.Group, a.Msg))
		},
		"proc_stats": func(ctx context.Context, data []byte) ([]byte, error) {
			return marshal(t.Stats())
		},
		"dist_call":   n.distCall,
		"dist_cancel": n.distCancel,
	}
}

// procAsyncFuncs are awaited by hornbeam_erlang.aio without a goroutine each:
// 100,000 tasks waiting in receive hold a waiter each, nothing more.
func (n *Node) procAsyncFuncs() map[string]pybridge.AsyncGoFunc {
	return map[string]pybridge.AsyncGoFunc{
		"proc_wait": func(ctx context.Context, data []byte, done func([]byte, error)) {
			var a recvArgs
			if err := decodeArgs("receive", data, &a); err != nil {
				done(nil, err)
				return
			}
			n.procs.Wait(a.ID, a.After, msTimeout(a.Timeout), func(ok bool, err error) {
				if err != nil {
					done(nil, procError(err))
					return
				}
				if ok {
					done(cborTrue, nil)
				} else {
					done(cborFalse, nil)
				}
			})
		},
	}
}

var (
	cborTrue  = []byte{0xf5}
	cborFalse = []byte{0xf4}
)

// spawnHere serves another node's spawn: Python picks a thread or a task.
func (n *Node) spawnHere(ctx context.Context, module, function string, args []byte, link *process.Pid) (process.Pid, error) {
	if err := n.remoteAllowed(module); err != nil {
		return process.Pid{}, &process.RemoteError{Class: "hornbeam_erlang:BadRPC", Message: err.Error()}
	}
	if len(args) == 0 {
		args = []byte{0x80}
	}
	callArgs, err := marshal([]any{module, function, cbor.RawMessage(args), link})
	if err != nil {
		return process.Pid{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := n.py.Call(ctx, procModule, "_spawn_remote", callArgs)
	if err != nil {
		var pe *pybridge.Error
		if errors.As(err, &pe) {
			cls := pe.Type[strings.LastIndexByte(pe.Type, '.')+1:]
			switch cls {
			case "BadRPC", "ProcessLimit":
				return process.Pid{}, &process.RemoteError{Class: "hornbeam_erlang:" + cls, Message: pe.Message}
			}
			return process.Pid{}, &process.RemoteError{Class: "hornbeam_erlang:RemoteError", Message: pe.Type + ": " + pe.Message}
		}
		return process.Pid{}, err
	}
	var pid process.Pid
	if err := pid.UnmarshalCBOR(v); err != nil {
		return process.Pid{}, err
	}
	return pid, nil
}

// procKilled cancels the task of a process an exit signal ended.
func (n *Node) procKilled(id uint64, reason string) {
	if reason == "shutdown" {
		return // the loop cancels every task as the node stops
	}
	args, _ := marshal([]any{id, reason})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := n.py.Call(ctx, procModule, "_cancel", args); err != nil && !errors.Is(err, pybridge.ErrClosed) {
			n.log.Warn("cancelling a killed process's task", "id", id, "err", err)
		}
	}()
}

// procTransport carries process frames over the bus.
type procTransport struct{ b *bus.Bus }

func (t procTransport) Send(node string, frame []byte) error { return t.b.SendProc(node, frame) }
func (t procTransport) Up(node string) bool                  { return t.b.Up(node) }
func (t procTransport) Peers() []string                      { return t.b.Nodes(bus.Connected) }
func (t procTransport) Request(ctx context.Context, node string, frame []byte) ([]byte, error) {
	return t.b.RequestProc(ctx, node, frame)
}

// serveProcs connects the process table to the cluster: frames from other
// nodes, and membership (nodedown ends monitors and links, nodeup shares
// process groups).
func (n *Node) serveProcs(b *bus.Bus) {
	err := b.ServeProc(bus.ProcHandler{Frame: n.procs.HandleFrame, Request: n.procs.HandleRequest})
	if err != nil {
		n.log.Debug("processes stay local to this process", "err", err)
		return
	}
	n.procs.SetTransport(procTransport{b})
	n.unwatchProcs = b.Watch(func(e bus.Event) {
		switch e.Kind {
		case "nodedown":
			n.procs.NodeDown(e.Node, e.Reason)
		case "nodeup":
			n.procs.NodeUp(e.Node)
		}
	})
	n.procs.Hello()
}

// serveCall runs another node's async_call here; cancelling ctx stops it (a
// task is cancelled, a thread gets KeyboardInterrupt at its next bytecode).
func (n *Node) serveCall(ctx context.Context, module, function string, args []byte) *process.CallReply {
	if err := n.remoteAllowed(module); err != nil {
		return &process.CallReply{Kind: "badrpc", Message: err.Error()}
	}
	v, err := n.handler().Call(ctx, module, function, args)
	if err == nil {
		return &process.CallReply{OK: true, Value: v}
	}
	var re *bus.RemoteError
	switch {
	case errors.As(err, &re):
		return &process.CallReply{Kind: "remote", Type: re.Type, Message: re.Message, Traceback: re.Traceback}
	case errors.Is(err, bus.ErrBadRPC):
		return &process.CallReply{Kind: "badrpc", Message: pe2msg(err)}
	case errors.Is(err, context.DeadlineExceeded):
		return &process.CallReply{Kind: "timeout", Message: "the call's timeout passed on " + n.Name()}
	default:
		return &process.CallReply{Kind: "error", Message: err.Error()}
	}
}

type distCallArgs struct {
	_        struct{} `cbor:",toarray"`
	ID       uint64
	Node     string
	Module   string
	Function string
	Args     cbor.RawMessage
	Timeout  *float64
}

// distCall is hornbeam_dist.async_call's Go side (run by call_async on a
// goroutine that lasts as long as the call).
func (n *Node) distCall(ctx context.Context, data []byte) ([]byte, error) {
	var a distCallArgs
	if err := decodeArgs("async_call", data, &a); err != nil {
		return nil, err
	}
	ctx, cancel, err := withTimeout(ctx, a.Timeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if a.Node == n.Name() {
		// Here: cancellable through the same call id.
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		n.localCalls.Store(a.ID, cancel)
		defer n.localCalls.Delete(a.ID)
		r := n.serveCall(ctx, a.Module, a.Function, a.Args)
		return n.callResult(a.Node, r, nil)
	}
	if n.cluster() == nil {
		return nil, errNoCluster
	}
	v, err := n.procs.Call(ctx, a.ID, a.Node, a.Module, a.Function, a.Args)
	var rep *process.CallReply
	if errors.As(err, &rep) {
		return n.callResult(a.Node, rep, nil)
	}
	return v, n.callError(a.Node, err)
}

func (n *Node) callResult(node string, r *process.CallReply, _ error) ([]byte, error) {
	if r.OK {
		return r.Value, nil
	}
	switch r.Kind {
	case "remote":
		return nil, &pyError{class: "hornbeam_erlang:RemoteError", msg: r.Type + " raised on " + node + ": " + r.Message,
			attrs: map[string]any{"type": r.Type, "message": r.Message, "traceback": r.Traceback, "node": node}}
	case "badrpc":
		return nil, &pyError{class: "hornbeam_erlang:BadRPC", msg: r.Message}
	case "timeout":
		return nil, &pyError{class: "hornbeam_erlang:RPCTimeout", msg: r.Message}
	default:
		return nil, &pyError{class: "hornbeam_erlang:RPCError", msg: r.Message}
	}
}

func (n *Node) callError(node string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, process.ErrNodeDown), errors.Is(err, bus.ErrNodeDown):
		return &pyError{class: "hornbeam_erlang:NodeDown", msg: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, bus.ErrTimeout):
		return &pyError{class: "hornbeam_erlang:RPCTimeout", msg: "async_call to " + node + " timed out"}
	case errors.Is(err, context.Canceled):
		return &pyError{class: "hornbeam_erlang:RPCError", msg: "async_call to " + node + " was cancelled"}
	default:
		return toPython(err)
	}
}

// distCancel cancels an async_call: [id, node].
func (n *Node) distCancel(ctx context.Context, data []byte) ([]byte, error) {
	var a struct {
		_    struct{} `cbor:",toarray"`
		ID   uint64
		Node string
	}
	if err := decodeArgs("cancel", data, &a); err != nil {
		return nil, err
	}
	if c, ok := n.localCalls.Load(a.ID); ok {
		c.(context.CancelCauseFunc)(context.Canceled)
	}
	n.procs.CancelCall(a.Node, a.ID)
	return marshal(nil)
}

// remoteAllowed applies --allow-module to what another node asks this one to
// run: a remote spawn or async_call, as to an rpc_call.
func (n *Node) remoteAllowed(module string) error {
	if n.cfg.Cluster == nil {
		return nil
	}
	return bus.ModuleAllowed(n.cfg.Cluster.AllowModules, module)
}

// handler runs calls other nodes make, with their results bounded by the
// cluster's payload limit.
func (n *Node) handler() pyHandler {
	mp := bus.DefaultMaxPayload
	if c := n.cfg.Cluster; c != nil && c.MaxPayload > 0 {
		mp = c.MaxPayload
	}
	return pyHandler{n.py, n.batcher, max(mp-replyOverhead, 1)}
}

package process

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Cancellable calls (hornbeam_dist.async_call): a request frame runs
// module.function on the target node under a context the caller can cancel
// with a frame of its own, and that ends at once when either node goes down.

// CallReply is the outcome of a call as it travels back.
type CallReply struct {
	_         struct{} `cbor:",toarray"`
	OK        bool
	Value     cbor.RawMessage
	Kind      string // when not OK: "remote" (the function raised), "badrpc", "timeout", "error"
	Type      string
	Message   string
	Traceback string
}

func (r *CallReply) Error() string {
	if r.Type != "" {
		return r.Type + ": " + r.Message
	}
	return r.Message
}

// CallFunc runs a call that another node asked for.
type CallFunc func(ctx context.Context, module, function string, args []byte) *CallReply

// ErrNodeDown: the node of a call went down (or was never up) before it answered.
var ErrNodeDown = errors.New("node down")

type callKey struct {
	node string
	id   uint64
}

// calls tracks the calls of a table in both directions.
type calls struct {
	mu      sync.Mutex
	waiting map[callKey]context.CancelCauseFunc // our calls, by target node
	served  map[callKey]context.CancelFunc      // other nodes' calls running here
}

func (c *calls) init() {
	c.waiting = map[callKey]context.CancelCauseFunc{}
	c.served = map[callKey]context.CancelFunc{}
}

// Call runs module.function(*args) on node under ctx; id, unique among this
// node's calls in flight, names it for CancelCall. Errors: a *CallReply for
// what the remote side reported, ErrNodeDown, or ctx's error.
func (t *Table) Call(ctx context.Context, id uint64, node, module, function string, args []byte) ([]byte, error) {
	tr := t.transport()
	if tr == nil || !tr.Up(node) {
		return nil, fmt.Errorf("%w: %s is not up", ErrNodeDown, node)
	}
	f := frame{Kind: fCall, From: t.cfg.Node, ID: id, Module: module, Func: function, Msg: args}
	if d, ok := ctx.Deadline(); ok {
		f.Ref = d.UTC().Format(time.RFC3339Nano)
	}
	data, err := encMode.Marshal(&f)
	if err != nil {
		return nil, fmt.Errorf("process: encoding a call: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	k := callKey{node, id}
	t.calls.mu.Lock()
	t.calls.waiting[k] = cancel
	t.calls.mu.Unlock()
	defer func() {
		t.calls.mu.Lock()
		delete(t.calls.waiting, k)
		t.calls.mu.Unlock()
		cancel(nil)
	}()
	r, err := tr.Request(ctx, node, data)
	if err != nil {
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			if errors.Is(c, ErrNodeDown) {
				return nil, c
			}
			// Our caller gave up (cancel or deadline): stop the remote work.
			t.sendRemote(node, frame{Kind: fCancel, ID: id})
			return nil, c
		}
		return nil, err
	}
	var rep CallReply
	if err := decMode.Unmarshal(r, &rep); err != nil {
		return nil, fmt.Errorf("process: bad call reply from %s: %w", node, err)
	}
	if !rep.OK {
		return nil, &rep
	}
	return rep.Value, nil
}

// serveCall runs another node's call until it ends, is cancelled, or either
// node goes down.
func (t *Table) serveCall(ctx context.Context, f *frame) []byte {
	if t.cfg.Call == nil {
		b, _ := encMode.Marshal(&CallReply{Kind: "badrpc", Message: "node " + t.cfg.Node + " runs no Python"})
		return b
	}
	if f.Ref != "" {
		if d, err := time.Parse(time.RFC3339Nano, f.Ref); err == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d)
			defer cancel()
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	k := callKey{f.From, f.ID}
	t.calls.mu.Lock()
	if old := t.calls.served[k]; old != nil {
		old()
	}
	t.calls.served[k] = cancel
	t.calls.mu.Unlock()
	defer func() {
		t.calls.mu.Lock()
		delete(t.calls.served, k)
		t.calls.mu.Unlock()
		cancel()
	}()
	args := []byte(f.Msg)
	if len(args) == 0 {
		args = []byte{0x80}
	}
	b, err := encMode.Marshal(t.cfg.Call(ctx, f.Module, f.Func, args))
	if err != nil {
		b, _ = encMode.Marshal(&CallReply{Kind: "error", Message: "encoding the reply: " + err.Error()})
	}
	return b
}

func (t *Table) cancelServed(from string, id uint64) {
	t.calls.mu.Lock()
	cancel := t.calls.served[callKey{from, id}]
	t.calls.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// CancelCall cancels this node's call id to node (no-op once it has ended).
func (t *Table) CancelCall(node string, id uint64) {
	t.calls.mu.Lock()
	cancel := t.calls.waiting[callKey{node, id}]
	t.calls.mu.Unlock()
	if cancel != nil {
		cancel(context.Canceled)
	}
}

// callsNodeDown fails our calls to node and cancels the work node asked of us.
func (t *Table) callsNodeDown(node string) {
	t.calls.mu.Lock()
	defer t.calls.mu.Unlock()
	for k, cancel := range t.calls.waiting {
		if k.node == node {
			cancel(fmt.Errorf("%w: %s went down during the call", ErrNodeDown, node))
		}
	}
	for k, cancel := range t.calls.served {
		if k.node == node {
			cancel()
		}
	}
}

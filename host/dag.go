package host

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// dagHost is what hornbeam_dag needs of the host: the capabilities this node
// declared at run time, and a count of the bytes its rpc_call replies carried,
// so that a test can tell that DAG results moved between the nodes that made
// and used them rather than through the node that drove the DAG.
type dagHost struct {
	caps       atomic.Pointer[map[string]float64] // register_local_node on a node without a cluster
	replyBytes atomic.Int64
}

// withDeclared overrides detected capabilities with declared ones
// (--capability KEY=VALUE, register_local_node).
func withDeclared(detected, declared map[string]float64) map[string]float64 {
	maps.Copy(detected, declared)
	return detected
}

// dagFuncs are the Go functions hornbeam_dag calls.
func (n *Node) dagFuncs() map[string]pybridge.GoFunc {
	return map[string]pybridge.GoFunc{
		"dag_capabilities":     n.pyDAGCapabilities,
		"dag_set_capabilities": n.pyDAGSetCapabilities,
		"rpc_reply_bytes":      n.pyRPCReplyBytes,
	}
}

// pyDAGCapabilities returns [capabilities, hidden]: what this node announces
// (or, outside a cluster, would announce), and whether it is a hidden node,
// which takes no DAG work.
func (n *Node) pyDAGCapabilities(ctx context.Context, data []byte) ([]byte, error) {
	hidden := n.cfg.Cluster != nil && n.cfg.Cluster.Hidden
	if b := n.cluster(); b != nil {
		return cbor.Marshal([]any{b.Capabilities(), hidden})
	}
	if c := n.dag.caps.Load(); c != nil {
		return cbor.Marshal([]any{*c, hidden})
	}
	return cbor.Marshal([]any{withDeclared(capabilities(ctx, &n.gpus), n.declaredCaps()), hidden})
}

func (n *Node) declaredCaps() map[string]float64 {
	if n.cfg.Cluster == nil {
		return nil
	}
	return n.cfg.Cluster.Capabilities
}

// pyDAGSetCapabilities takes (caps,): the detected capabilities overridden by
// caps become what this node announces, at once.
func (n *Node) pyDAGSetCapabilities(ctx context.Context, data []byte) ([]byte, error) {
	var a struct {
		_    struct{} `cbor:",toarray"`
		Caps map[string]float64
	}
	if err := decodeArgs("register_local_node", data, &a); err != nil {
		return nil, err
	}
	for k, v := range a.Caps {
		if k == "" || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, &pyError{class: "ValueError", msg: fmt.Sprintf("register_local_node: capability %q=%v: want a name and a number >= 0", k, v)}
		}
	}
	caps := withDeclared(withDeclared(capabilities(ctx, &n.gpus), n.declaredCaps()), a.Caps)
	if b := n.cluster(); b != nil {
		if err := b.SetCapabilities(caps); err != nil {
			return nil, &pyError{class: "RuntimeError", msg: err.Error()}
		}
	} else {
		n.dag.caps.Store(&caps)
	}
	return cbor.Marshal(caps)
}

func (n *Node) pyRPCReplyBytes(ctx context.Context, data []byte) ([]byte, error) {
	return cbor.Marshal(n.dag.replyBytes.Load())
}

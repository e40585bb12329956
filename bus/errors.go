package bus

import (
	"errors"
	"fmt"
)

var (
	// ErrNodeDown reports an unknown, unreachable or vanished node.
	ErrNodeDown = errors.New("node down")
	// ErrTimeout reports a call whose deadline passed before its reply came.
	ErrTimeout = errors.New("rpc timeout")
	// ErrBadRPC reports a call to a module or function that does not exist there.
	ErrBadRPC = errors.New("bad rpc")
	// ErrPayloadTooLarge reports a request or reply over the payload limit.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrBusy reports a node that refused a call because it serves too many.
	ErrBusy = errors.New("node busy")
	// ErrClosed reports a call cut off because this node is leaving.
	ErrClosed = errors.New("bus closed")
)

// RemoteError is an exception raised by the called function on the remote node.
type RemoteError struct {
	Node      string
	Type      string // the exception's qualified class name
	Message   string
	Traceback string // formatted on the remote node
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s raised on %s: %s", e.Type, e.Node, e.Message)
}

// CallError wraps a failed call with its target, keeping the kind for errors.Is.
type CallError struct {
	Node, Module, Function string
	Err                    error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("rpc %s:%s on %s: %v", e.Module, e.Function, e.Node, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// badRPCError carries the reason a call target does not exist.
type badRPCError struct{ msg string }

func (e *badRPCError) Error() string        { return "bad rpc: " + e.msg }
func (e *badRPCError) Is(target error) bool { return target == ErrBadRPC }

// BadRPC makes an error that is ErrBadRPC, carrying msg to the caller.
func BadRPC(msg string) error { return &badRPCError{msg} }

package host

import (
	"context"
	"errors"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// pyHandler serves other nodes' calls with this node's Python.
type pyHandler struct{ py *pybridge.Interpreter }

func (h pyHandler) Call(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	v, err := h.py.Call(ctx, module, function, args)
	if err == nil {
		return v, nil
	}
	var pe *pybridge.Error
	switch {
	case errors.Is(err, pybridge.ErrNoModule), errors.Is(err, pybridge.ErrNoFunction):
		return nil, bus.BadRPC(pe2msg(err))
	case errors.As(err, &pe):
		return nil, &bus.RemoteError{Type: pe.Type, Message: pe.Message, Traceback: pe.Traceback}
	default:
		return nil, err
	}
}

func pe2msg(err error) string {
	var pe *pybridge.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/hornbeam-go/hornbeam/batch"
	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// pyHandler serves other nodes' calls with this node's Python. Calls of a
// batched function join its batch without taking a Python thread to wait.
type pyHandler struct {
	py        *pybridge.Interpreter
	batcher   *batch.Batcher
	maxResult int // bytes of a result's encoding; 0 = unbounded
}

func (h pyHandler) Call(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	if spec, ok := h.batcher.Lookup(module, function); ok {
		if items, extra, ok := splitBatchArgs(args); ok {
			vals, err := h.batcher.Submit(ctx, spec, extra, items)
			if err == nil {
				return joinBatch(vals)
			}
			return nil, h.fail(err)
		}
	}
	v, err := h.py.CallWith(ctx, pybridge.CallOpts{Lane: pybridge.LaneRPC, MaxResult: h.maxResult}, module, function, args)
	if err == nil {
		return v, nil
	}
	return nil, h.fail(err)
}

func (h pyHandler) fail(err error) error {
	var pe *pybridge.Error
	switch {
	case errors.Is(err, pybridge.ErrNoModule), errors.Is(err, pybridge.ErrNoFunction):
		return bus.BadRPC(pe2msg(err))
	case errors.Is(err, pybridge.ErrTooLarge):
		return fmt.Errorf("%w: the reply is over the %d-byte limit (--max-payload); encoding stopped there",
			bus.ErrPayloadTooLarge, h.maxResult)
	case errors.Is(err, batch.ErrBusy):
		return fmt.Errorf("%w: %v", bus.ErrBusy, err)
	case errors.As(err, &pe):
		return &bus.RemoteError{Type: pe.Type, Message: pe.Message, Traceback: pe.Traceback}
	default:
		return err
	}
}

func pe2msg(err error) string {
	var pe *pybridge.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

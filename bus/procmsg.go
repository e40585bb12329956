package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Process messages (Erlang's Pid ! Msg between nodes) travel on their own
// subject per node, ...proc.<node>. Frames are opaque here: the process table
// encodes and decodes them. A frame without a reply subject is a one-way
// message, handled in order on the subscription's goroutine; one with a reply
// subject (spawn, is_alive) is a request, answered on a goroutine of its own,
// at most MaxInflight at once like calls.

// ProcHandler serves process frames from other nodes.
type ProcHandler struct {
	// Frame applies a one-way frame; it must not block.
	Frame func(data []byte)
	// Request answers a request frame; it may block until ctx ends.
	Request func(ctx context.Context, data []byte) []byte
}

func (b *Bus) procSubject(node string) string { return b.ns + ".proc." + escape(node) }

// ServeProc subscribes h to this node's process subject. Worker processes of
// a node (--workers) do not serve processes: a pid names one interpreter.
func (b *Bus) ServeProc(h ProcHandler) error {
	if b.cfg.Mode == Worker {
		return errors.New("bus: processes are not served by worker processes")
	}
	return b.subscribe(b.procSubject(b.name), "", func(m *nats.Msg) {
		if m.Reply == "" {
			h.Frame(m.Data)
			return
		}
		select {
		case b.sem <- struct{}{}:
		default:
			return // the requester times out; as an overloaded call
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() { <-b.sem }()
			if err := m.Respond(h.Request(b.ctx, m.Data)); err != nil {
				b.log.Debug("process reply not sent", "err", err)
			}
		}()
	})
}

// SendProc publishes a one-way process frame to node. Frames from this node
// to one node arrive in the order sent; a frame for a node that is down is
// dropped (as Erlang drops a message to a dead node).
func (b *Bus) SendProc(node string, data []byte) error {
	if len(data) > b.maxPayload {
		return fmt.Errorf("%w: the message is %d bytes, over the %d-byte limit (--max-payload)",
			ErrPayloadTooLarge, len(data), b.maxPayload)
	}
	if err := b.members.reachable(node); err != nil {
		return nil
	}
	if err := b.nc.Publish(b.procSubject(node), data); err != nil {
		return fmt.Errorf("bus: sending to %s: %w", node, err)
	}
	return nil
}

// RequestProc sends a process request frame to node and waits for the reply.
func (b *Bus) RequestProc(ctx context.Context, node string, data []byte) ([]byte, error) {
	if err := b.members.reachable(node); err != nil {
		return nil, &CallError{Node: node, Module: "process", Err: err}
	}
	if len(data) > b.maxPayload {
		return nil, fmt.Errorf("%w: the request is %d bytes, over the %d-byte limit (--max-payload)",
			ErrPayloadTooLarge, len(data), b.maxPayload)
	}
	m, err := b.nc.RequestWithContext(ctx, b.procSubject(node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &CallError{Node: node, Module: "process", Err: ErrNodeDown}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, &CallError{Node: node, Module: "process", Err: ErrTimeout}
	case err != nil:
		return nil, &CallError{Node: node, Module: "process", Err: err}
	}
	return m.Data, nil
}

// Up reports whether node is a live member.
func (b *Bus) Up(node string) bool {
	ms := b.members
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[node]
	return m != nil && m.up
}

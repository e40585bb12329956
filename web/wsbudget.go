package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// DefaultWebSocketBuffer bounds, node-wide, the bytes of websocket messages
// read from clients and not yet handed to Python (Config.WebSocketBuffer).
const DefaultWebSocketBuffer = 64 << 20

// wsBudgetWait bounds how long a connection waits for room in the budget;
// meanwhile it reads nothing, so its client is slowed by TCP flow control.
const wsBudgetWait = 10 * time.Second

// wsChunk is the unit in which a message's bytes are read and counted.
const wsChunk = 64 << 10

// budget is a node-wide count of bytes with a bound.
type budget struct {
	mu   sync.Mutex
	used int64
	max  int64
	wake chan struct{}
}

func newBudget(max int64) *budget { return &budget{max: max, wake: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.max || b.used == 0 {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		ch := b.wake
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

var errWSBudget = errors.New("websocket buffers of this node are full")

// readMessage reads one message, counting its bytes in the node's budget as
// they arrive; release gives them back once Python has the message.
func readMessage(ctx context.Context, c *websocket.Conn, wsBudget *budget) (websocket.MessageType, []byte, func(), error) {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	var held int64
	release := func() { wsBudget.release(held) }
	var buf []byte
	for {
		// Counted once read: a connection waiting for its client's next
		// bytes holds only what it has, so two slow senders cannot hold each
		// other up (beyond the budget, each connection has at most one
		// chunk being read).
		n := len(buf)
		buf = append(buf, make([]byte, wsChunk)...)
		m, rerr := io.ReadFull(r, buf[n:])
		buf = buf[:n+m]
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			release()
			return 0, nil, nil, rerr
		}
		if m > 0 {
			wctx, cancel := context.WithTimeout(ctx, wsBudgetWait)
			err := wsBudget.acquire(wctx, int64(m))
			cancel()
			if err != nil {
				release()
				return 0, nil, nil, fmt.Errorf("%w (%d bytes)", errWSBudget, wsBudget.max)
			}
			held += int64(m)
		}
		if rerr != nil {
			return typ, buf, release, nil
		}
	}
}

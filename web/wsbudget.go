package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coder/websocket"

	"github.com/hornbeam-go/hornbeam/internal/bytebudget"
)

// DefaultWebSocketBuffer bounds, node-wide, the bytes of websocket messages
// read from clients and not yet handed to Python (Config.WebSocketBuffer).
const DefaultWebSocketBuffer = 64 << 20

// wsBudgetWait bounds how long a connection waits for room in the budget;
// meanwhile it reads nothing, so its client is slowed by TCP flow control.
const wsBudgetWait = 10 * time.Second

// wsChunk is the unit in which a message's bytes are read and counted.
const wsChunk = 64 << 10

var errWSBudget = errors.New("websocket buffers of this node are full")

// readMessage reads one message, counting its bytes in the node's budget as
// they arrive; release gives them back once Python has the message.
func readMessage(ctx context.Context, c *websocket.Conn, wsBudget *bytebudget.Budget) (websocket.MessageType, []byte, func(), error) {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	var held int64
	release := func() { wsBudget.Release(held) }
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
			err := wsBudget.Acquire(wctx, int64(m))
			cancel()
			if err != nil {
				release()
				return 0, nil, nil, fmt.Errorf("%w (%d bytes)", errWSBudget, wsBudget.Max())
			}
			held += int64(m)
		}
		if rerr != nil {
			return typ, buf, release, nil
		}
	}
}

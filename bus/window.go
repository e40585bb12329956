package bus

import (
	"context"
	"sync"
)

// window bounds the bytes of large requests a node has sent and not yet
// heard back about. Routes carry membership and payloads on one connection
// between two servers, so a heartbeat waits behind whatever payload bytes
// are queued ahead of it; keeping that queue to a few payloads keeps
// heartbeats on time however hard Python code casts.
type window struct {
	mu   sync.Mutex
	used int64
	max  int64
	wake chan struct{} // closed and replaced on every release
}

// windowed is the request size from which the window applies: smaller
// requests cannot delay a heartbeat noticeably.
const windowed = 64 << 10

func newWindow(max int64) *window { return &window{max: max, wake: make(chan struct{})} }

// acquire waits until n more bytes fit (one request alone always fits).
func (w *window) acquire(ctx context.Context, n int64) error {
	for {
		w.mu.Lock()
		if w.used == 0 || w.used+n <= w.max {
			w.used += n
			w.mu.Unlock()
			return nil
		}
		ch := w.wake
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *window) release(n int64) {
	w.mu.Lock()
	w.used -= n
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// Package bytebudget bounds bytes held at once by many goroutines: each
// acquires what it is about to hold, waiting for room, and releases it when
// done. One holder alone always gets in, so a single item larger than the
// bound is slowed, not refused forever.
package bytebudget

import (
	"context"
	"sync"
)

// Budget is a count of bytes with a bound; the zero value is not usable.
type Budget struct {
	mu   sync.Mutex
	used int64
	max  int64
	wake chan struct{} // closed and replaced on every release
}

// New returns a Budget of max bytes.
func New(max int64) *Budget { return &Budget{max: max, wake: make(chan struct{})} }

// Max is the bound.
func (b *Budget) Max() int64 { return b.max }

// Acquire waits until n more bytes fit (or nothing is held), or ctx ends.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
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

// Release gives back n bytes acquired before and wakes the waiters.
func (b *Budget) Release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

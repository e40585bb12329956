package pybridge

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handing work to a goroutine locked to its OS thread costs a futex wake-up of
// that thread each way: about 35 µs per round trip on this project's machines,
// against 0.2 µs when both sides briefly spin. So both sides spin for a bounded
// time before they park: a pool thread after finishing a call (here), a caller
// after submitting one (internal/handoff). At most one pool thread and a few
// callers spin at once, so an idle node burns no CPU and a busy one slivers.

// maxSpinningCallers bounds the goroutines that spin waiting for a result.
const maxSpinningCallers = 1

// workQueue hands calls from goroutines to pool threads.
type workQueue struct {
	mu       sync.Mutex
	calls    []*call // FIFO; bounded by the callers, each waits for its own
	head     int
	sleepers []chan struct{} // parked pool threads
	queued   atomic.Int32    // len(calls)-head, readable without the lock
	spinning atomic.Int32    // pool threads spinning for work (0 or 1)
	spin     time.Duration
	busy     atomic.Int32 // pool threads running calls
	closed   bool
}

func newWorkQueue(spin time.Duration) *workQueue { return &workQueue{spin: spin} }

// push queues c and wakes a parked pool thread unless one is spinning.
func (q *workQueue) push(c *call) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.calls = append(q.calls, c)
	q.queued.Add(1)
	var wake chan struct{}
	if q.spinning.Load() == 0 && len(q.sleepers) > 0 {
		wake = q.sleepers[len(q.sleepers)-1]
		q.sleepers = q.sleepers[:len(q.sleepers)-1]
	}
	q.mu.Unlock()
	if wake != nil {
		wake <- struct{}{}
	}
	return true
}

// tryPop takes the oldest call, if any. Caller holds q.mu.
func (q *workQueue) tryPopLocked() *call {
	if q.head == len(q.calls) {
		return nil
	}
	c := q.calls[q.head]
	q.calls[q.head] = nil
	q.head++
	q.queued.Add(-1)
	if q.head == len(q.calls) { // empty: reuse the backing array from the start
		q.calls, q.head = q.calls[:0], 0
	}
	return c
}

// tryPop takes the oldest call without waiting; nil when none is queued.
func (q *workQueue) tryPop() *call {
	if q.queued.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.tryPopLocked()
}

// pop blocks until a call arrives or the queue closes (nil). wake is this pool
// thread's own parking channel (buffered, capacity 1).
func (q *workQueue) pop(wake chan struct{}) *call {
	spun := false
	for {
		q.mu.Lock()
		if c := q.tryPopLocked(); c != nil || q.closed {
			q.mu.Unlock()
			return c
		}
		// Spin (once per wait) only while no other pool thread runs a call:
		// that is when a caller waits on each answer before sending the next
		// one, and a wake-up would be on its critical path. Under load calls
		// queue up anyway, and a spinning thread would only take CPU from them.
		if !spun && q.spin > 0 && q.busy.Load() == 0 && q.spinning.CompareAndSwap(0, 1) {
			q.mu.Unlock()
			deadline := time.Now().Add(q.spin)
			for q.queued.Load() == 0 && time.Now().Before(deadline) {
				syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
			}
			q.spinning.Store(0)
			spun = true
			continue
		}
		// Park. push reads spinning under the lock after our Store(0) above, so
		// it either sees this sleeper or we saw its call just now.
		q.sleepers = append(q.sleepers, wake)
		q.mu.Unlock()
		<-wake
		spun = false
	}
}

// close wakes every parked pool thread; pop then returns nil once the queue is empty.
func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	sleepers := q.sleepers
	q.sleepers = nil
	q.mu.Unlock()
	for _, w := range sleepers {
		w <- struct{}{}
	}
}

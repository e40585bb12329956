package pybridge

import (
	"slices"
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

	// Elastic size, under mu. A thread is lost while it runs a call whose
	// caller has given up (Python blocked in C cannot be interrupted) or
	// while its Python code waits on Go (rpc_call, a batch): the queue keeps
	// target threads that are not lost, up to max threads in all, and threads
	// beyond that exit once they have idled for idleExit.
	target, max int
	total, lost int
	spawn       func()        // starts one more pool thread (total already counts it)
	deferred    *deferredWake // on one P: push wakes a pool thread through it
	atMax       bool          // logged once per stretch at the cap
	onMax       func(total int)
}

func newWorkQueue(spin time.Duration) *workQueue { return &workQueue{spin: spin} }

// idleExit is how long a surplus pool thread idles before it exits, so that a
// pool that grew for stuck calls shrinks back without thrashing under load.
const idleExit = 2 * time.Second

// lose marks one thread as unavailable and starts a replacement while fewer
// than target threads are available and the cap allows.
func (q *workQueue) lose() {
	q.mu.Lock()
	q.lost++
	grow := !q.closed && q.total-q.lost < q.target && q.total < q.max
	if grow {
		q.total++
	}
	full := !grow && q.total-q.lost < q.target && !q.atMax
	if full {
		q.atMax = true
	}
	total := q.total
	q.mu.Unlock()
	if grow {
		q.spawn()
	}
	if full && q.onMax != nil {
		q.onMax(total)
	}
}

// regain undoes lose: the thread is available again (surplus threads exit
// when idle).
func (q *workQueue) regain() {
	q.mu.Lock()
	q.lost--
	if q.total-q.lost >= q.target {
		q.atMax = false
	}
	q.mu.Unlock()
}

// wedged reports whether every thread the cap allows is lost.
func (q *workQueue) wedged() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total >= q.max && q.lost >= q.total
}

// size returns the threads in all and those lost.
func (q *workQueue) size() (total, lost int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total, q.lost
}

// push queues c and wakes a parked pool thread unless one is spinning.
func (q *workQueue) push(c *call) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.calls = append(q.calls, c)
	q.queued.Add(1)
	if q.deferred != nil {
		q.mu.Unlock()
		q.deferred.request()
		return true
	}
	var wake chan struct{}
	if q.spinning.Load() == 0 {
		wake = q.takeSleeperLocked()
	}
	q.mu.Unlock()
	if wake != nil {
		wake <- struct{}{}
	}
	return true
}

// takeSleeperLocked unlists the parked pool thread to wake, nil when none
// is parked. Caller holds q.mu.
func (q *workQueue) takeSleeperLocked() chan struct{} {
	n := len(q.sleepers)
	if n == 0 {
		return nil
	}
	w := q.sleepers[n-1]
	q.sleepers = q.sleepers[:n-1]
	return w
}

// wakeOne wakes a parked pool thread if calls wait and no thread spins.
func (q *workQueue) wakeOne() {
	q.mu.Lock()
	var wake chan struct{}
	if q.head < len(q.calls) && q.spinning.Load() == 0 {
		wake = q.takeSleeperLocked()
	}
	q.mu.Unlock()
	if wake != nil {
		wake <- struct{}{}
	}
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
			// Calls pushed while this thread spun woke no one: pass the
			// wake-up on, or they would wait for this call to end.
			var next chan struct{}
			if c != nil && q.head < len(q.calls) {
				next = q.takeSleeperLocked()
			}
			q.mu.Unlock()
			if next != nil {
				next <- struct{}{}
			}
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
		surplus := q.total-q.lost > q.target
		q.mu.Unlock()
		if !surplus {
			<-wake
			spun = false
			continue
		}
		t := time.NewTimer(idleExit)
		select {
		case <-wake:
			t.Stop()
		case <-t.C:
			q.mu.Lock()
			if i := slices.Index(q.sleepers, wake); i >= 0 && q.total-q.lost > q.target {
				q.sleepers = slices.Delete(q.sleepers, i, i+1)
				q.total--
				q.mu.Unlock()
				return nil // this thread exits
			}
			q.mu.Unlock()
			<-wake // still listed (no longer surplus), or push or close took it: its send is due
		}
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

package pybridge

/*
#include "bridge.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Handing work to a thread costs a futex wake-up of that thread each way:
// about 35 µs per round trip on this project's machines, against 0.2 µs when
// both sides briefly spin. With Config.SpinWait (off by default: the CPU it
// burns costs a busy node more than the wake-ups) both sides spin for a
// bounded time before they park: a pool thread after finishing a call
// (pool.c), a caller after submitting one (internal/handoff; never with Go on
// one P). At most one pool thread and one caller spin at once, so an idle
// node burns no CPU.

// maxSpinningCallers bounds the goroutines that spin waiting for a result.
const maxSpinningCallers = 1

// workQueue hands calls from goroutines to a lane's pool threads, which run
// in C (pool.c) and share its queue: goroutines append to it under its lock
// word, copying a call into its arena, without a call into C.
type workQueue struct {
	c        *C.hb_pool
	deferred *deferredWake   // on one P: push wakes a pool thread through it
	spawn    func()          // starts one more pool thread (total already counts it)
	onMax    func(total int) // every thread the cap allows is lost
}

// newWorkQueue makes a lane's queue for target threads, growing to max while
// threads are lost; nil when out of memory. Its C memory (a few hundred bytes
// and its 256 KiB arena) lives as long as the process: a caller whose
// deadline passes while the interpreter closes may still reach it, and an
// interpreter cannot start twice in one process.
func newWorkQueue(target, max int, spinNS int64) *workQueue {
	p := C.hb_pool_new(C.int(target), C.int(max), C.int64_t(spinNS))
	if p == nil {
		return nil
	}
	return &workQueue{c: p}
}

// push queues c and wakes a parked pool thread unless one spins; false when
// the queue has closed or no memory was left for it. A call that does not go
// through the arena keeps its arguments in Go memory, pinned until whoever
// takes c out of the pending calls unpins them (c.unpin), also when push
// fails: a large call queued then costs its size once, not twice.
func (q *workQueue) push(c *call) bool {
	queued, closed := q.queue(c)
	if !queued && !closed {
		goArgs := C.int(0)
		if len(c.args) > 0 {
			c.pin = new(runtime.Pinner)
			c.pin.Pin(&c.args[0])
			goArgs = 1
		}
		queued = C.hb_pool_submit(q.c, C.uint64_t(c.id),
			(*C.char)(unsafe.Pointer(unsafe.StringData(c.module))), C.size_t(len(c.module)),
			(*C.char)(unsafe.Pointer(unsafe.StringData(c.function))), C.size_t(len(c.function)),
			bytesPtr(c.args), C.size_t(len(c.args)), C.size_t(c.limit), goArgs) == 0
	}
	if !queued {
		return false
	}
	if q.deferred != nil {
		q.deferred.request()
	} else {
		q.wakeOne()
	}
	return true
}

// queue appends c to the queue with its bytes in the arena. queued is false
// when it is too large or finds no room; closed when the queue has closed.
func (q *workQueue) queue(c *call) (queued, closed bool) {
	p := q.c
	spinLock(&p.lock)
	defer spinUnlock(&p.lock)
	if p.closed != 0 {
		return false, true
	}
	if p.len == p.cap {
		return false, false
	}
	base, end, used, ok := arenaCopy(p.arena, p.arena_cap, &p.arena_head, &p.arena_tail, &p.arena_used, c.module, c.function, c.args)
	if !ok {
		return false, false
	}
	it := (*C.hb_pjob)(unsafe.Add(unsafe.Pointer(p.items), uintptr(p.len)*unsafe.Sizeof(C.hb_pjob{})))
	*it = C.hb_pjob{
		id:         C.uint64_t(c.id),
		mod:        (*C.char)(base),
		modlen:     C.size_t(len(c.module)),
		fn:         (*C.char)(unsafe.Add(base, len(c.module))),
		fnlen:      C.size_t(len(c.function)),
		args:       (*C.uchar)(unsafe.Add(base, len(c.module)+len(c.function))),
		argslen:    C.size_t(len(c.args)),
		limit:      C.size_t(c.limit),
		in_arena:   1,
		arena_end:  end,
		arena_used: used,
	}
	p.len++
	return true, false
}

// wakeOne wakes a parked pool thread if calls wait and no thread spins.
func (q *workQueue) wakeOne() {
	p := q.c
	spinLock(&p.lock)
	var w *C.hb_worker
	if p.head < p.len && p.spinning == 0 {
		w = unpark(p)
	}
	spinUnlock(&p.lock)
	if w != nil {
		futexWake(&w.wake, 1)
	}
}

// unpark unlists the pool thread that parked last, if any, and marks it
// woken; lock held. The caller wakes it after unlocking: the thread may have
// seen its mark and gone on, even returned, by then, and a wake-up of a word
// no one waits on does nothing.
func unpark(p *C.hb_pool) *C.hb_worker {
	w := p.parked
	if w != nil {
		p.parked = w.parked_next
		w.parked = 0
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&w.wake)), 1)
	}
	return w
}

// futexWake wakes up to n threads waiting on addr. A raw system call: it
// does not block, and entering Go's system call state would wake its
// monitor thread (see loopqueue.go).
func futexWake(addr *C.uint32_t, n int) {
	const futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
	syscall.RawSyscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakePrivate, uintptr(n), 0, 0, 0)
}

// lose counts the calling pool thread as unavailable (its Python code waits
// on Go) and starts a replacement while fewer than target threads are
// available and the cap allows.
func (q *workQueue) lose() { q.afterLose(int(C.hb_pool_lose(q.c))) }

// afterLose does what hb_pool_lose asked for.
func (q *workQueue) afterLose(flags int) {
	if flags&C.HB_POOL_GROW != 0 {
		q.spawn()
	}
	if flags&C.HB_POOL_FULL != 0 && q.onMax != nil {
		total, _ := q.size()
		q.onMax(total)
	}
}

// regain undoes lose: the thread is available again (surplus threads exit
// when idle).
func (q *workQueue) regain() { C.hb_pool_regain(q.c) }

// abandonResult says what became of a call its caller gave up.
type abandonResult int

const (
	abandonGone    abandonResult = 0 // it is no longer in the pool: returned, or on the loop
	abandonDropped abandonResult = C.HB_POOL_DROPPED
	abandonLost    abandonResult = C.HB_POOL_LOST // it runs, on w
)

// abandon gives up call id: dropped (still queued, or taken by a thread that
// has not started it), or its thread counted lost.
func (q *workQueue) abandon(id uint64) (abandonResult, *C.hb_worker) {
	var w *C.hb_worker
	var flags C.int
	r := abandonResult(C.hb_pool_abandon(q.c, C.uint64_t(id), &w, &flags))
	if r == abandonLost {
		q.afterLose(int(flags))
	}
	return r, w
}

// wedged reports whether every thread the cap allows is lost.
func (q *workQueue) wedged() bool {
	p := q.c
	spinLock(&p.lock)
	defer spinUnlock(&p.lock)
	return p.total >= p.max && p.lost >= p.total
}

// size returns the threads in all and those lost.
func (q *workQueue) size() (total, lost int) {
	p := q.c
	spinLock(&p.lock)
	defer spinUnlock(&p.lock)
	return int(p.total), int(p.lost)
}

// busy returns the threads running calls.
func (q *workQueue) busy() int {
	return int(atomic.LoadInt32((*int32)(unsafe.Pointer(&q.c.busy))))
}

// close wakes every parked pool thread; each returns once the queue is empty.
func (q *workQueue) close() {
	p := q.c
	var woken []*C.hb_worker
	spinLock(&p.lock)
	p.closed = 1
	for w := unpark(p); w != nil; w = unpark(p) {
		woken = append(woken, w)
	}
	spinUnlock(&p.lock)
	for _, w := range woken {
		futexWake(&w.wake, 1)
	}
}

package pybridge

/*
#include "bridge.h"
#include <stdlib.h>
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Goroutines append calls to the loop's queue and take its results through
// memory they share with the loop thread (hb_lq, hb_dq in loop.c), not through
// calls into C. Every call into C enters Go's system-call state, and when Go's
// monitor thread (sysmon) sleeps, because it last saw every P idle, that wakes
// it; it then polls every 20 µs until it next sees every P idle. A node's Go
// side idles whenever it waits for the Python thread, so calls into C on the
// request path kept the monitor waking and polling, several per cent of a
// request's CPU and more on a busy two-CPU machine. What cannot take this path
// (a call too large for the arena, a full queue) still calls into C.

// maxArenaCall is the largest call (module, function and arguments) copied into
// the loop's or a pool's arena: the copy is made under the lock the Python
// threads take too, and a sixteenth of the ring leaves room for many such
// calls at once.
const maxArenaCall = C.HB_ARENA_MAX_COPY

// spinLock takes a lock word shared with the loop thread. The holder keeps it
// for a few stores, but may be a goroutine preempted on this P or a thread off
// its CPU, so a spinner soon yields both.
func spinLock(l *C.uint32_t) { spinSwap(l, 0, 1) }

// spinSwap changes a word shared with a Python thread from old to new,
// spinning while it holds another value: a lock word, or a lent socket's
// gate (direct.go).
func spinSwap(w *C.uint32_t, old, new uint32) {
	p := (*uint32)(unsafe.Pointer(w))
	for n := 1; !atomic.CompareAndSwapUint32(p, old, new); n++ {
		if n%64 == 0 {
			runtime.Gosched()
			syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
		}
	}
}

func spinUnlock(l *C.uint32_t) { atomic.StoreUint32((*uint32)(unsafe.Pointer(l)), 0) }

// submitLoopCall queues a call of module.function(args) for the loop and
// returns as hb_loop_submit_call does: -1 when out of memory, 1 when the loop
// must be woken (the queue was empty), else 0. It takes the shared arena when
// it can, and calls into C when the call is too large for it or finds the
// queue or the arena full.
func submitLoopCall(id uint64, module, function string, args []byte) C.int {
	if wake, ok := queueLoopCall(id, module, function, args); ok {
		if wake {
			return 1
		}
		return 0
	}
	return C.hb_loop_submit_call(C.uint64_t(id),
		(*C.char)(unsafe.Pointer(unsafe.StringData(module))), C.size_t(len(module)),
		(*C.char)(unsafe.Pointer(unsafe.StringData(function))), C.size_t(len(function)),
		bytesPtr(args), C.size_t(len(args)))
}

// queueLoopCall appends a call of module.function(args) to the loop's queue,
// its bytes copied into the arena. ok is false when the call is too large or
// the queue or the arena has no room; wake is true when the queue was empty,
// so the loop must be woken.
func queueLoopCall(id uint64, module, function string, args []byte) (wake, ok bool) {
	lq := &C.hb_lq
	spinLock(&lq.lock)
	defer spinUnlock(&lq.lock)
	if lq.len == lq.cap {
		return false, false
	}
	base, end, used, ok := arenaCopy(lq.arena, lq.arena_cap, &lq.arena_head, &lq.arena_tail, &lq.arena_used, module, function, args)
	if !ok {
		return false, false
	}
	it := (*C.hb_item)(unsafe.Add(unsafe.Pointer(lq.items), uintptr(lq.len)*unsafe.Sizeof(C.hb_item{})))
	*it = C.hb_item{
		kind:       C.HB_LOOP_CALL,
		id:         C.uint64_t(id),
		mod:        (*C.char)(base),
		modlen:     C.size_t(len(module)),
		fn:         (*C.char)(unsafe.Add(base, len(module))),
		fnlen:      C.size_t(len(function)),
		args:       (*C.uchar)(unsafe.Add(base, len(module)+len(function))),
		argslen:    C.size_t(len(args)),
		in_arena:   1,
		arena_end:  end,
		arena_used: used,
	}
	lq.len++
	return lq.len == 1, true
}

// arenaCopy copies a call's module, function and arguments, one after the
// other, into an arena (the loop's or a pool's) whose ring state lies in C
// memory, its lock held. base is where they start, end where they end, took
// what they took from the ring; ok is false when they are over maxArenaCall
// or do not fit.
func arenaCopy(arena *C.uchar, size C.size_t, head, tail, used *C.size_t, module, function string, args []byte) (base unsafe.Pointer, end, took C.size_t, ok bool) {
	n := uintptr(len(module) + len(function) + len(args))
	if n > maxArenaCall {
		return nil, 0, 0, false
	}
	r := ring{size: uintptr(size), head: uintptr(*head), tail: uintptr(*tail), used: uintptr(*used)}
	off, u, ok := r.reserve(n)
	if !ok {
		return nil, 0, 0, false
	}
	*head, *tail, *used = C.size_t(r.head), C.size_t(r.tail), C.size_t(r.used)
	base = unsafe.Add(unsafe.Pointer(arena), off)
	dst := unsafe.Slice((*byte)(base), n)
	copy(dst, module)
	copy(dst[len(module):], function)
	copy(dst[len(module)+len(function):], args)
	return base, C.size_t(off + n), C.size_t(u), true
}

// ring is the state of a ring of bytes whose reservations are released in
// the order they were made: live bytes run from head to tail, wrapping, and
// used counts them with any tail a reservation skipped.
type ring struct{ size, head, tail, used uintptr }

// reserve takes n contiguous bytes: off is where they start, used what they
// take from the ring (the end skipped when they do not fit before it). A
// release of reservations moves head to the end of the last one and takes
// their used from used.
func (r *ring) reserve(n uintptr) (off, used uintptr, ok bool) {
	if r.used == 0 {
		r.head, r.tail = 0, 0
	}
	switch {
	case r.used == r.size:
		return 0, 0, false
	case r.tail >= r.head: // free: [tail, size) and [0, head)
		switch {
		case r.size-r.tail >= n:
			off, used = r.tail, n
		case r.head >= n:
			off, used = 0, r.size-r.tail+n
		default:
			return 0, 0, false
		}
	default: // free: [tail, head)
		if r.head-r.tail < n {
			return 0, 0, false
		}
		off, used = r.tail, n
	}
	r.tail = off + n
	r.used += used
	return off, used, true
}

// takeLoopResults delivers the results queued by the loop and the pool
// threads. Result bytes that Go copied, or that no one waited for, are left to
// those threads to free; the array goes back as one of the queue's spares,
// whose results' remaining memory (error texts) is freed before it is reused.
func (ip *Interpreter) takeLoopResults() {
	dq := &C.hb_dq
	spinLock(&dq.lock)
	items, n, size := dq.items, dq.len, dq.cap
	dq.items, dq.len, dq.cap = nil, 0, 0
	spinUnlock(&dq.lock)
	if items == nil {
		return
	}
	done := unsafe.Slice(items, int(n))
	for i := range done { // by index: complete may take over a result's bytes
		ip.completeLoopResult(done[i].id, &done[i].r)
	}
	spinLock(&dq.lock)
	for i := 0; dq.closed == 0 && i < len(dq.spare); i++ {
		if dq.spare[i] == nil {
			dq.spare[i], dq.spare_len[i], dq.spare_cap[i] = items, n, size
			items = nil
			break
		}
	}
	spinUnlock(&dq.lock)
	if items != nil {
		C.hb_done_free(items, n)
	}
}

// completeLoopResult delivers r, a result the loop made, and frees its bytes
// unless the caller took them over (a borrowed result); error texts stay.
func (ip *Interpreter) completeLoopResult(id C.uint64_t, r *C.hb_result) {
	ip.complete(id, r)
	if r.data != nil {
		freeLoopBytes(unsafe.Pointer(r.data), int(r.len))
		r.data, r.len = nil, 0
	}
}

// Bounds of the result bytes left to the loop thread to free.
const maxGarbageBytes = 8 << 20

// freeLoopBytes frees p, size bytes of a result the loop or a pool thread made
// (a borrowed response, or a result copied into Go): it leaves it to those
// threads, which free such bytes once per wake-up or batch, unless the loop
// has ended or the list already holds its bound (1,024 blocks, maxGarbageBytes).
func freeLoopBytes(p unsafe.Pointer, size int) {
	dq := &C.hb_dq
	spinLock(&dq.lock)
	ok := dq.closed == 0 && dq.ngarbage < dq.garbage_cap && uintptr(dq.garbage_bytes)+uintptr(size) <= maxGarbageBytes
	if ok {
		// Stored as an integer: C memory, which Go's write barrier need not see.
		*(*uintptr)(unsafe.Add(unsafe.Pointer(dq.garbage), uintptr(dq.ngarbage)*unsafe.Sizeof(p))) = uintptr(p)
		dq.ngarbage++
		dq.garbage_bytes += C.size_t(size)
	}
	spinUnlock(&dq.lock)
	if !ok {
		C.free(p)
	}
}

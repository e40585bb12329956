package pybridge

/*
#include "bridge.h"
#include <stdlib.h>
*/
import "C"

import (
	"bytes"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// DirectWriter is a streamed HTTP/1.1 response's socket lent to the event
// loop's thread (directwrite.c): while it is lent, the app's pieces are
// written there, at once, and Go writes only what a full socket left. Its
// owner takes it back (Take) before each write of its own and gives it back
// after (Give), and closes it (Close) before the response ends; after Close
// no write reaches the socket, so the socket may close. Its methods are not
// safe for concurrent use: the owner serialises them (web's request lock).
type DirectWriter struct {
	slot   *C.hb_dw_slot
	handle uint64
}

// LendSocket lends fd, a non-blocking stream socket, for a response whose
// pieces go as chunks when chunked, of which left more bytes may be written
// (-1: no bound). ok is false when every slot is lent (HB_DW_SLOTS) or
// memory ran out: the response then streams through Go.
func LendSocket(fd int, chunked bool, left int64) (d *DirectWriter, ok bool) {
	var h C.uint64_t
	ch := C.int(0)
	if chunked {
		ch = 1
	}
	slot := C.hb_dw_open(C.int(fd), ch, C.int64_t(left), &h)
	if slot == nil {
		return nil, false
	}
	return &DirectWriter{slot: slot, handle: uint64(h)}, true
}

// Handle names the lent socket to Python (_hornbeam.http_direct).
func (d *DirectWriter) Handle() uint64 { return d.handle }

// Lent is what the loop did with the socket since Go last took it: the body
// bytes it wrote (framing not counted), the rest of a frame a full socket
// did not take, which Go writes before anything else, and the error of a
// send that failed (the client has gone).
type Lent struct {
	Written int64
	Carry   []byte
	Err     syscall.Errno
}

// Take takes the socket back for Go, waiting for a write in flight.
func (d *DirectWriter) Take() Lent {
	spinSwap(&d.slot.gate, C.HB_DW_OPEN, C.HB_DW_BUSY) // the loop's write is one non-blocking system call
	s := d.slot
	l := Lent{Written: int64(s.written), Err: syscall.Errno(s.err)}
	if s.carry_len > 0 {
		// At most a piece of HB_DW_MAX_PIECE bytes and its frame.
		l.Carry = bytes.Clone(unsafe.Slice((*byte)(unsafe.Pointer(s.carry)), int(s.carry_len)))
		C.free(unsafe.Pointer(s.carry))
		s.carry, s.carry_len = nil, 0
	}
	s.written, s.err = 0, 0
	return l
}

// Give lends the socket again after Go's own write, with left more body
// bytes allowed (-1: no bound).
func (d *DirectWriter) Give(left int64) {
	d.slot.left = C.int64_t(left)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&d.slot.gate)), C.HB_DW_OPEN)
}

// Close takes the socket back for good and frees its slot: a handle Python
// still holds then names nothing.
func (d *DirectWriter) Close() Lent {
	l := d.Take()
	d.End()
	return l
}

// End is Close for a socket Go has taken.
func (d *DirectWriter) End() {
	d.slot.gen++
	d.slot.fd = -1
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&d.slot.gate)), C.HB_DW_CLOSED)
	C.hb_dw_free(d.slot)
}

package pybridge

/*
#include "bridge.h"
#include <stdlib.h>
#include <string.h>

static inline PyObject *hb_none(void) { Py_RETURN_NONE; }
static inline void hb_set_error(PyObject *type, const char *msg) { PyErr_SetString(type, msg); }
static inline PyObject *hb_exc_type(int i) {
	switch (i) {
	case 0: return PyExc_TypeError;
	case 1: return PyExc_OverflowError;
	case 2: return PyExc_MemoryError;
	default: return PyExc_RuntimeError;
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/hornbeam-go/hornbeam/state"
)

// These functions are called from C by Python threads; those holding the GIL
// may call back into C (hb_decode) but never block on Python.

func interp() *Interpreter { return current.Load() }

// keyView looks at C memory as a string without copying; it must not outlive the call.
func keyView(p *C.char, n C.size_t) string {
	return unsafe.String((*byte)(unsafe.Pointer(p)), int(n))
}

// Error classes the state functions raise, indexes into hb_exc_type.
const (
	excType     = 0
	excOverflow = 1
	excMemory   = 2
	excRuntime  = 3
)

func raise(kind int, msg string) {
	cm := C.CString(msg)
	C.hb_set_error(C.hb_exc_type(C.int(kind)), cm)
	C.free(unsafe.Pointer(cm))
}

var errNoState = errors.New("node-wide state is not available in this process")

// unlocked runs f, an operation of the store, without the GIL when the store
// waits on another process (a worker's store is its node's, over a socket):
// other Python threads run meanwhile, and a stopped node freezes only this
// caller, until the store's deadline. The thread holds the GIL on entry and
// on return; f must not touch Python.
func unlocked(s StateStore, f func()) {
	if b, ok := s.(interface{ Blocking() bool }); !ok || !b.Blocking() {
		f()
		return
	}
	ts := C.PyEval_SaveThread()
	f()
	C.PyEval_RestoreThread(ts)
}

func stateOrRaise() StateStore {
	s := interp().cfg.State
	if s == nil {
		raise(excRuntime, errNoState.Error())
	}
	return s
}

//export hbStateGet
func hbStateGet(key *C.char, n C.size_t) *C.PyObject {
	s := stateOrRaise()
	if s == nil {
		return nil
	}
	var v []byte
	var ok bool
	var err error
	unlocked(s, func() { v, ok, err = s.Get(keyView(key, n)) })
	if err != nil {
		raise(excRuntime, fmt.Sprintf("state_get(): %v", err))
		return nil
	}
	if !ok || len(v) == 0 {
		return C.hb_none()
	}
	return C.hb_decode((*C.uchar)(unsafe.Pointer(&v[0])), C.size_t(len(v)))
}

//export hbStateSet
func hbStateSet(key *C.char, n C.size_t, data *C.uchar, dlen C.size_t, ttlNanos C.int64_t) C.int {
	s := stateOrRaise()
	if s == nil {
		return -1
	}
	// The store copies the value, and the key when it inserts it, so views of
	// C memory suffice.
	v := unsafe.Slice((*byte)(unsafe.Pointer(data)), int(dlen))
	var err error
	unlocked(s, func() { err = s.Set(keyView(key, n), v, time.Duration(ttlNanos)) })
	if err != nil {
		kind := excRuntime
		if errors.Is(err, state.ErrFull) {
			kind = excMemory
		}
		raise(kind, fmt.Sprintf("state_set(): %v", err))
		return -1
	}
	return 0
}

//export hbStateDelete
func hbStateDelete(key *C.char, n C.size_t) C.int {
	s := stateOrRaise()
	if s == nil {
		return -1
	}
	var ok bool
	var err error
	unlocked(s, func() { ok, err = s.Delete(keyView(key, n)) })
	if err != nil {
		raise(excRuntime, fmt.Sprintf("state_delete(): %v", err))
		return -1
	}
	if ok {
		return 1
	}
	return 0
}

//export hbStateIncr
func hbStateIncr(key *C.char, n C.size_t, delta C.int64_t, out *C.int64_t) C.int {
	s := stateOrRaise()
	if s == nil {
		return -1
	}
	k := keyView(key, n)
	var v int64
	var err error
	unlocked(s, func() { v, err = s.Incr(k, int64(delta)) })
	if err != nil {
		raise(classifyIncr(err), fmt.Sprintf("state_incr(%q): %v", k, err))
		return -1
	}
	*out = C.int64_t(v)
	return 0
}

func classifyIncr(err error) int {
	switch {
	case errors.Is(err, state.ErrNotInteger):
		return excType
	case errors.Is(err, state.ErrOverflow):
		return excOverflow
	case errors.Is(err, state.ErrFull):
		return excMemory
	default:
		return excRuntime
	}
}

//export hbStateKeys
func hbStateKeys(prefix *C.char, n C.size_t) *C.PyObject {
	s := stateOrRaise()
	if s == nil {
		return nil
	}
	p := ""
	if prefix != nil {
		p = keyView(prefix, n)
	}
	var keys []string
	var err error
	unlocked(s, func() { keys, err = s.Keys(p) })
	if err != nil {
		raise(excRuntime, fmt.Sprintf("state_keys(): %v", err))
		return nil
	}
	b := appendStringArray(nil, keys)
	return C.hb_decode((*C.uchar)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
}

//export hbNodeName
func hbNodeName() *C.PyObject {
	name := "nonode@nohost"
	if f := interp().cfg.NodeName; f != nil {
		name = f()
	}
	b := appendText(nil, name)
	return C.hb_decode((*C.uchar)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
}

// hbGoCall runs without the GIL.
//
//export hbGoCall
func hbGoCall(name *C.char, n C.size_t, args *C.uchar, alen C.size_t, out *C.hb_result) {
	ip := interp()
	fname := keyView(name, n)
	f, ok := ip.cfg.Funcs[fname]
	if !ok {
		setCError(out, "AttributeError", fmt.Sprintf("_hornbeam has no Go function %q", fname), nil)
		return
	}
	// A pool thread's wait ends with the call it runs (its caller's deadline);
	// while it waits the thread does no Python work, so its lane replaces it
	// (a batch or a call to this node itself then finds a thread). Other
	// threads wait until the interpreter closes.
	ctx := ip.ctx
	if c := ip.callOf(); c != nil {
		if c.ctx.Done() != nil {
			ctx = c.ctx
		}
		c.q.lose()
		defer c.q.regain()
	}
	res, err := f(ctx, goArgs(ip.cfg.InPlaceArgs[fname], args, alen))
	if err != nil {
		class, attrs := "RuntimeError", []byte(nil)
		var pe PythonException
		if errors.As(err, &pe) {
			class, attrs = pe.PythonClass(), pe.PythonAttrs()
		}
		setCError(out, class, err.Error(), attrs)
		return
	}
	out.status = C.HB_OK
	out.data, out.len = cBytes(res)
}

func setCError(out *C.hb_result, class, msg string, attrs []byte) {
	out.status = C.HB_ERROR
	out.err._type = C.CString(class)
	out.err.message = C.CString(msg)
	out.err.traceback = C.CString("")
	out.data, out.len = cBytes(attrs)
}

func cBytes(b []byte) (*C.uchar, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uchar)(C.CBytes(b)), C.size_t(len(b))
}

// hbLoopReady runs on the loop thread, with the GIL, just before run_forever.
//
//export hbLoopReady
func hbLoopReady() {
	ip := interp()
	ip.loopRan.Store(true)
	ip.markLoopReady()
}

// hbComplete delivers a result from the loop or a pool thread directly.
//
//export hbComplete
func hbComplete(id C.uint64_t, r *C.hb_result) { interp().complete(id, r) }

// complete delivers the result of a call, from the loop or a pool thread; it
// does not free r.
func (ip *Interpreter) complete(id C.uint64_t, r *C.hb_result) {
	if r.status == C.HB_ASYNC {
		// A pool thread found a coroutine function: its later calls go
		// straight to the loop, which answers this one.
		if c, ok := ip.pending.Load(uint64(id)); ok {
			ip.asyncFns.Store(fnKey{c.module, c.function}, nil)
		}
		return
	}
	c, ok := ip.takePending(uint64(id))
	if !ok {
		return // the caller gave up; the result is dropped
	}
	ip.deliver(c, r)
}

// hbGoCallAsync starts a registered Go function on its own goroutine; its
// outcome completes fut through the loop queue. Runs with the GIL held but only
// copies the arguments, or takes them (InPlaceArgs).
//
//export hbGoCallAsync
func hbGoCallAsync(name *C.char, n C.size_t, args *C.uchar, alen C.size_t, fut *C.PyObject) C.int {
	ip := interp()
	fname := keyView(name, n)
	if af, ok := ip.cfg.AsyncFuncs[fname]; ok {
		a := C.GoBytes(unsafe.Pointer(args), C.int(alen))
		af(ip.ctx, a, func(res []byte, err error) { resolveFuture(fut, res, err) })
		return 0
	}
	f, ok := ip.cfg.Funcs[fname]
	if !ok {
		return -1
	}
	// fut is an owned reference in C memory; Go only carries it back to the loop.
	// Arguments read in place are Go's from here (1 tells the caller): they
	// are freed after the outcome has been copied for the loop, as a result
	// may be a part of them.
	inPlace := ip.cfg.InPlaceArgs[fname]
	a := goArgs(inPlace, args, alen)
	go func() {
		res, err := f(ip.ctx, a)
		resolveFuture(fut, res, err)
		if inPlace {
			C.free(unsafe.Pointer(args))
		}
	}()
	if inPlace {
		return 1
	}
	return 0
}

// goArgs is what a Go function called from Python gets as its arguments:
// with inPlace (the InPlaceArgs) the C memory itself, else a copy.
func goArgs(inPlace bool, args *C.uchar, alen C.size_t) []byte {
	if inPlace {
		return unsafe.Slice((*byte)(unsafe.Pointer(args)), int(alen))
	}
	return C.GoBytes(unsafe.Pointer(args), C.int(alen))
}

// resolveFuture hands a Go function's outcome to the loop, which settles fut
// and releases the reference.
func resolveFuture(fut *C.PyObject, res []byte, err error) {
	var class, msg *C.char
	data := res
	if err != nil {
		cls, attrs := "RuntimeError", []byte(nil)
		var pe PythonException
		if errors.As(err, &pe) {
			cls, attrs = pe.PythonClass(), pe.PythonAttrs()
		}
		class, msg = C.CString(cls), C.CString(err.Error())
		defer C.free(unsafe.Pointer(class))
		defer C.free(unsafe.Pointer(msg))
		data = attrs
	}
	interp().wakeLoop(C.hb_loop_submit_resolve(fut, bytesPtr(data), C.size_t(len(data)), class, msg))
}

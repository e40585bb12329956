// Package pybridge embeds CPython in a Go process: it owns the threads that run
// Python, converts whole values between Python and CBOR in C, and exposes Go
// functions to Python through the built-in _hornbeam module.
//
// Thread model: the thread that initialises Python becomes its main thread and
// runs scripts (RunMain); a loop thread runs an asyncio event loop that Go feeds
// through a batched queue; pools of threads (one per Lane), each thread holding a
// thread state created once, run synchronous calls, and grow past their size to
// replace threads stuck in calls whose callers gave up. Goroutines never take
// the GIL.
//
// CPython is one per process, so at most one Interpreter exists at a time.
package pybridge

/*
#cgo CFLAGS: -O2 -Wall -Wno-unused-parameter
#include "bridge.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hornbeam-go/hornbeam/internal/handoff"
	"github.com/hornbeam-go/hornbeam/internal/idmap"
	"github.com/hornbeam-go/hornbeam/state"
)

// StateStore is the node-wide state that Python's state_* functions reach.
// Values are CBOR bytes; the store treats them as opaque except for Incr.
// Errors wrapping state.ErrNotInteger, ErrOverflow and ErrFull become
// TypeError, OverflowError and MemoryError; others (a worker's store whose node
// is gone) become RuntimeError.
type StateStore interface {
	Get(key string) ([]byte, bool, error)
	Set(key string, value []byte, ttl time.Duration) error
	Delete(key string) (bool, error)
	Incr(key string, delta int64) (int64, error)
	Keys(prefix string) ([]string, error)
}

// LocalState adapts an in-process state.Store to StateStore.
type LocalState struct{ *state.Store }

func (s LocalState) Get(key string) ([]byte, bool, error) {
	v, ok := s.Store.Get(key)
	return v, ok, nil
}

func (s LocalState) Delete(key string) (bool, error) { return s.Store.Delete(key), nil }

func (s LocalState) Keys(prefix string) ([]string, error) { return s.Store.Keys(prefix), nil }

// GoFunc is a Go function Python calls as _hornbeam.call(name, *args). args is the
// CBOR array of the Python arguments; the result is CBOR. Errors may implement
// PythonException to choose the exception Python sees.
type GoFunc func(ctx context.Context, args []byte) ([]byte, error)

// AsyncGoFunc is a Go function Python awaits as call_async(future, name,
// *args) without a goroutine of its own: it is called with the GIL held, so it
// must not block, and it calls done exactly once, from any goroutine, with the
// result (CBOR) or error that settles the future.
type AsyncGoFunc func(ctx context.Context, args []byte, done func([]byte, error))

// PythonException lets a Go error choose the Python exception it becomes.
type PythonException interface {
	error
	// PythonClass names the class: a builtin ("TimeoutError") or "module:Class".
	PythonClass() string
	// PythonAttrs returns a CBOR map of attributes to set on the exception, or nil.
	PythonAttrs() []byte
}

// DefaultThreads is Config.Threads when it is 0.
func DefaultThreads() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Config configures an Interpreter.
type Config struct {
	// Threads is the number of pool threads for synchronous calls that are
	// kept available (LaneRPC); 0 picks 2×GOMAXPROCS (at least 4), since most
	// Python work releases the GIL to wait.
	Threads int
	// MaxThreads caps each lane's threads, stuck ones included: a lane grows
	// past its size to replace threads stuck in calls whose callers gave up,
	// or waiting on Go, up to this many; 0 picks 4×Threads.
	MaxThreads int
	// HTTPThreads sizes LaneHTTP; 0 gives it none (its calls use LaneRPC).
	HTTPThreads int
	// BatchThreads sizes LaneBatch; 0 picks 2.
	BatchThreads int
	// Packages is a file tree extracted once to a cache directory and put on
	// sys.path (the embedded hornbeam_* packages).
	Packages fs.FS
	// PythonPath entries go on sys.path before Packages, in order.
	PythonPath []string
	// Argv becomes sys.argv.
	Argv []string
	// State backs state_*; nil makes them raise RuntimeError.
	State StateStore
	// StateMaxValue bounds a value state_set encodes, in bytes: a larger one
	// raises ValueError as soon as encoding passes it. 0 = no bound.
	StateMaxValue int
	// NodeName answers node(); nil answers "nonode@nohost".
	NodeName func() string
	// Funcs are the Go functions Python can call by name.
	Funcs map[string]GoFunc
	// InPlaceArgs names Funcs that read their arguments where Python's
	// encoder wrote them, in C memory, instead of a copy in Go's heap: args
	// is then valid only until the function returns, and the function must
	// keep no part of it (as io.Writer's Write must not keep p). For large
	// arguments, the pieces of a streamed response, the copy and its garbage
	// cost more than the call.
	InPlaceArgs map[string]bool
	// AsyncFuncs are Go functions Python awaits through call_async that
	// keep no goroutine while they wait (see AsyncGoFunc).
	AsyncFuncs map[string]AsyncGoFunc
	// InlineSteps lets a caller run its coroutine call's first step itself
	// while the loop thread sleeps in its poll and nothing else waits
	// (uvloop only), which saves two thread wake-ups per call. Off by
	// default: the rest of such a call then runs on the loop thread, so code
	// tied to the thread it started on (SQLAlchemy's asyncio greenlets, a
	// sqlite3 connection, threading.local) breaks across its first await.
	// The step also runs to its first await whatever the caller's deadline.
	InlineSteps bool
	// SpinWait is how long a pool thread spins for the next call, and a caller for
	// its result, before parking (only when nothing else runs); 0 or negative:
	// never, the default. Spinning makes a lone Go->Python call in the process
	// faster (a parked thread's wake-up costs tens of µs under a hypervisor),
	// but the CPU it burns is taken from the request path: measured on two
	// cores, a node that spun 150 µs spent up to 8% more CPU per HTTP request than
	// one that did not, and rpc_call between two nodes was no faster. With Go
	// on one P callers never spin (see callerSpin); pool threads still do.
	SpinWait time.Duration
	Logger   *slog.Logger
}

// Kind of work RunMain runs as __main__.
type MainKind int

const (
	Script MainKind = iota // a file path, like python3 FILE
	Module                 // a module name, like python3 -m MODULE
	Code                   // a source string, like python3 -c CODE
)

// Lane selects the pool of threads a synchronous call runs on. Each lane has
// its own threads, so one kind of work cannot take every thread from another.
type Lane int

const (
	// LaneRPC runs calls from other nodes, the node's own calls and casts.
	LaneRPC Lane = iota
	// LaneHTTP runs web requests.
	LaneHTTP
	// LaneBatch runs the batches of hornbeam_ml.batched functions: their
	// callers hold threads of the other lanes while they wait, so a batch must
	// never need one of those.
	LaneBatch
	numLanes
)

var laneNames = [numLanes]string{"rpc", "http", "batch"}

// Interrupt kinds, raised asynchronously in Python code.
const (
	raiseKeyboardInterrupt = 0
	raiseTimeout           = 1
	raiseSystemExit        = 2
)

var (
	// ErrClosed is returned for work submitted to, or cut off by, a closed Interpreter.
	ErrClosed = errors.New("pybridge: interpreter closed")
	// ErrNoModule reports a call whose module does not exist.
	ErrNoModule = errors.New("pybridge: no such module")
	// ErrNoFunction reports a call whose function does not exist or is not callable.
	ErrNoFunction = errors.New("pybridge: no such function")
	// ErrTooLarge reports a result whose encoding passed the call's MaxResult:
	// encoding stopped there and its memory was freed.
	ErrTooLarge = errors.New("pybridge: result too large")
	errRunning  = errors.New("pybridge: Python was already started in this process (CPython and extension modules such as numpy cannot be restarted)")
)

// Error is a Python exception seen from Go.
type Error struct {
	Type      string // qualified class name, e.g. "ValueError" or "app.errors.Bad"
	Message   string // str(exception)
	Traceback string // formatted, as Python prints it
	kind      error  // ErrNoModule, ErrNoFunction or nil
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Is makes errors.Is(err, ErrNoModule) and errors.Is(err, ErrNoFunction) work.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// running guards the one-interpreter-per-process-lifetime rule that CPython and
// its extension modules impose, and
// current is that interpreter, for Python's calls into Go: a process-wide value
// because CPython is one per process (an atomic load is cheaper than a
// cgo.Handle lookup on the state_* hot path).
var (
	running atomic.Bool
	current atomic.Pointer[Interpreter]
)

// Interpreter is an embedded CPython with its threads.
type Interpreter struct {
	cfg Config
	log *slog.Logger

	lanes   [numLanes]*workQueue // nil for a lane without threads
	spinner handoff.Spinner      // callers spinning for a result
	// inflight counts calls made and not yet answered; it is C's hb_inflight,
	// read by the loop (see complete in loop.c).
	inflight *atomic.Int32
	mainJobs chan func(ts *C.PyThreadState)
	pending  idmap.Map[uint64, *call] // calls queued or running, until answered
	// asyncFns holds the coroutine functions (fnKey keys): written once per
	// function and read on every call, the case sync.Map reads without a lock.
	asyncFns sync.Map
	nextID   atomic.Uint64
	// borrowed counts results handed out in C memory (CallBorrowed) and not
	// yet released.
	borrowed atomic.Int64

	stopping  chan struct{} // closed when Close starts
	dead      chan struct{} // closed when Python is finalized
	closeOnce sync.Once
	pool      sync.WaitGroup

	// spawnMu orders a replacement pool thread's start (pool.Add) before
	// Close's pool.Wait; spawnClosed stops such starts once Close waits.
	spawnMu     sync.Mutex
	spawnClosed bool

	loopDone  chan struct{}
	loopReady chan struct{} // closed once the loop runs (hbLoopReady), or failed
	loopOnce  sync.Once
	loopRan   atomic.Bool // hbLoopReady was called
	doneFile  *os.File    // the eventfd the loop writes when it has results (hb_done_open)
	loopFD    int         // the eventfd that wakes the loop (hb_loop_open)
	// loopWake, on one P only, defers the loop's wake-ups (see deferredWake).
	loopWake *deferredWake
	loopErr  error // why the loop failed before it ran; read after loopReady
	mainDone chan struct{}
	closeErr error
	ctx      context.Context // for Go functions Python calls; cancelled by Close
	cancel   context.CancelFunc
}

type call struct {
	ctx      context.Context
	module   string
	function string
	args     []byte
	id       uint64
	q        *workQueue
	limit    int  // MaxResult
	borrow   bool // the result may stay in C memory (CallBorrowed)
	slot     handoff.Slot[result]
	// A borrowed result (CallBorrowed), until the caller releases it.
	borrowed result
	released atomic.Bool
	// pin holds args in place while a pool's queue refers to them (see
	// workQueue.push); whoever takes the call out of pending unpins it.
	pin *runtime.Pinner
}

// takePending takes call id out of the pending calls, whose taker alone
// answers it, and lets its arguments go: no pool thread reads them any more.
func (ip *Interpreter) takePending(id uint64) (*call, bool) {
	c, ok := ip.pending.LoadAndDelete(id)
	if ok {
		c.unpin()
	}
	return c, ok
}

// unpin lets args go once no pool thread will read them.
func (c *call) unpin() {
	if c.pin != nil {
		c.pin.Unpin()
		c.pin = nil
	}
}

type result struct {
	value []byte
	err   error
	cbuf  unsafe.Pointer // the C memory value lies in (a borrowed result), else nil
}

// New starts Python and its threads. Close must be called to stop them.
func New(cfg Config) (*Interpreter, error) {
	if !running.CompareAndSwap(false, true) {
		return nil, errRunning
	}
	if cfg.Threads <= 0 {
		cfg.Threads = DefaultThreads()
	}
	if cfg.MaxThreads <= 0 {
		cfg.MaxThreads = 4 * cfg.Threads
	}
	cfg.MaxThreads = max(cfg.MaxThreads, cfg.Threads, cfg.HTTPThreads)
	if cfg.BatchThreads <= 0 {
		cfg.BatchThreads = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Go on one P (a node confined to one CPU, one serving an app on two, or
	// a worker of as many as CPUs): callers do not spin, wake-ups are
	// deferred (deferwake.go), results batched.
	oneP := runtime.GOMAXPROCS(0) == 1
	cfg.SpinWait = max(cfg.SpinWait, 0)
	paths := append([]string(nil), cfg.PythonPath...)
	if cfg.Packages != nil {
		dir, err := extractPackages(cfg.Packages)
		if err != nil {
			running.Store(false)
			return nil, err
		}
		paths = append(paths, dir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ip := &Interpreter{
		cfg:      cfg,
		log:      cfg.Logger,
		spinner:  handoff.Spinner{For: callerSpin(cfg.SpinWait, oneP), Max: maxSpinningCallers},
		mainJobs: make(chan func(*C.PyThreadState)),
		stopping: make(chan struct{}),
		dead:     make(chan struct{}),
		loopDone: make(chan struct{}), loopReady: make(chan struct{}),
		mainDone: make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	current.Store(ip)
	C.hb_set_state_max_value(C.size_t(max(cfg.StateMaxValue, 0)))
	if ip.loopFD = int(C.hb_loop_open()); ip.loopFD < 0 {
		current.Store(nil)
		running.Store(false)
		return nil, errors.New("pybridge: eventfd failed")
	}

	ip.inflight = (*atomic.Int32)(unsafe.Pointer(&C.hb_inflight))
	C.hb_inline_enabled = 0
	if cfg.InlineSteps {
		C.hb_inline_enabled = 1
	}
	if !oneP {
		C.hb_direct_ok = 1
	}
	dfd := C.hb_done_open()
	if dfd < 0 {
		current.Store(nil)
		running.Store(false)
		return nil, errors.New("pybridge: eventfd failed")
	}
	// Non-blocking, so reads of it wait in Go's netpoller, not on a thread.
	ip.doneFile = os.NewFile(uintptr(dfd), "hornbeam-loop-results")
	go ip.deliverLoopResults()

	// A goroutine spinning on the only P would keep the deferred wake-up
	// from running: with spinning asked for, wake-ups are immediate.
	deferWakes := oneP && cfg.SpinWait == 0
	if deferWakes {
		ip.loopWake = newDeferredWake(ip.writeLoopFD, ip.dead)
	}
	ready := make(chan error, 1)
	go ip.mainThread(paths, ready)
	if err := <-ready; err != nil {
		ip.doneFile.Close()
		<-ip.mainDone
		current.Store(nil)
		running.Store(false)
		return nil, err
	}

	go ip.loopThread()
	<-ip.loopReady
	if ip.loopErr != nil {
		// Nothing else runs Python yet: the main thread finalizes it.
		close(ip.stopping)
		ip.cancel()
		close(ip.mainJobs)
		<-ip.mainDone
		ip.doneFile.Close()
		close(ip.dead)
		current.Store(nil) // running stays true: CPython cannot start twice in one process
		return nil, ip.loopErr
	}
	sizes := [numLanes]int{cfg.Threads, cfg.HTTPThreads, cfg.BatchThreads}
	workersReady := make(chan struct{}, cfg.Threads+cfg.HTTPThreads+cfg.BatchThreads)
	started := 0
	for lane, n := range sizes {
		if n <= 0 {
			continue
		}
		name, maxThreads := laneNames[lane], max(cfg.MaxThreads, n)
		q := newWorkQueue(n, maxThreads, cfg.SpinWait.Nanoseconds())
		if q == nil {
			for range started {
				<-workersReady
			}
			ip.Close() // ends the threads started for other lanes, and Python
			return nil, fmt.Errorf("pybridge: out of memory for the %s pool", name)
		}
		if deferWakes {
			q.deferred = newDeferredWake(q.wakeOne, ip.dead)
		}
		q.spawn = func() {
			ip.spawnMu.Lock()
			defer ip.spawnMu.Unlock()
			if !ip.spawnClosed {
				ip.pool.Add(1)
				go ip.poolThread(q, nil)
			}
		}
		q.onMax = func(total int) {
			ip.log.Warn("every thread of a Python pool is stuck in a call whose caller gave up, or waits on another node; new work waits",
				"pool", name, "threads", total, "max", maxThreads)
		}
		ip.lanes[lane] = q
		for range n {
			ip.pool.Add(1)
			go ip.poolThread(q, workersReady)
			started++
		}
	}
	for range started {
		<-workersReady
	}
	return ip, nil
}

// PoolStats reports a lane's threads: in all, and lost (stuck in calls whose
// callers gave up, or waiting on Go).
func (ip *Interpreter) PoolStats(lane Lane) (total, lost int) {
	if q := ip.lanes[lane]; q != nil {
		return q.size()
	}
	return 0, 0
}

// Closing reports whether Close has begun: calls still running are then
// cancelled, and their errors are the shutdown's, not the code's.
func (ip *Interpreter) Closing() bool {
	select {
	case <-ip.stopping:
		return true
	default:
		return false
	}
}

// Wedged reports whether some lane has every thread its cap allows stuck.
func (ip *Interpreter) Wedged() bool {
	for _, q := range ip.lanes {
		if q != nil && q.wedged() {
			return true
		}
	}
	return false
}

// callOf returns the call the calling pool thread runs, or nil (not a pool
// thread, or between calls). It runs on the thread itself, from Python.
func (ip *Interpreter) callOf() *call {
	id := uint64(C.hb_pool_current())
	if id == 0 {
		return nil
	}
	c, _ := ip.pending.Load(id)
	return c
}

// mainThread initialises Python on a locked OS thread, then runs __main__ jobs
// until Close, and finalizes Python on the same thread.
func (ip *Interpreter) mainThread(paths []string, ready chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread belongs to Python until exit
	defer close(ip.mainDone)

	var pins []*C.char
	cstr := func(s string) *C.char {
		p := C.CString(s)
		pins = append(pins, p)
		return p
	}
	defer func() {
		for _, p := range pins {
			C.free(unsafe.Pointer(p))
		}
	}()
	argv := ip.cfg.Argv
	if len(argv) == 0 {
		argv = []string{""}
	}
	cargv := make([]*C.char, len(argv))
	for i, a := range argv {
		cargv[i] = cstr(a)
	}
	cpath := make([]*C.char, len(paths))
	for i, p := range paths {
		cpath[i] = cstr(p)
	}
	var opts C.hb_init_opts
	// C keeps none of these pointers past hb_init, so C memory is enough.
	argvC := (**C.char)(C.malloc(C.size_t(len(cargv)) * C.size_t(unsafe.Sizeof(cargv[0]))))
	defer C.free(unsafe.Pointer(argvC))
	copy(unsafe.Slice(argvC, len(cargv)), cargv)
	opts.argv = argvC
	opts.argc = C.int(len(cargv))
	if len(cpath) > 0 {
		pathC := (**C.char)(C.malloc(C.size_t(len(cpath)) * C.size_t(unsafe.Sizeof(cpath[0]))))
		defer C.free(unsafe.Pointer(pathC))
		copy(unsafe.Slice(pathC, len(cpath)), cpath)
		opts.path = pathC
		opts.npath = C.int(len(cpath))
	}
	if venv := os.Getenv("VIRTUAL_ENV"); venv != "" {
		exe := filepath.Join(venv, "bin", "python")
		if _, err := os.Stat(exe); err == nil {
			opts.venv = cstr(venv)
			opts.executable = cstr(exe)
		}
	}
	if opts.executable == nil {
		// Without an executable CPython searches PATH for "python3" and may take
		// another installation's standard library; our own binary makes it fall
		// back to the prefix libpython was built for.
		if self, err := os.Executable(); err == nil {
			opts.executable = cstr(self)
		}
	}
	var mainTS *C.PyThreadState
	if msg := C.hb_init(&opts, &mainTS); msg != nil {
		err := errors.New(C.GoString(msg))
		C.free(unsafe.Pointer(msg))
		if mainTS == nil {
			ready <- err
			return
		}
		ready <- err
		C.hb_finalize(mainTS)
		return
	}
	ready <- nil

	for job := range ip.mainJobs {
		job(mainTS)
	}
	// Close has stopped the loop and the pool: only this thread touches Python now.
	if rc := C.hb_finalize(mainTS); rc != 0 {
		ip.closeErr = fmt.Errorf("pybridge: Py_FinalizeEx returned %d", int(rc))
	}
}

// wakeLoop wakes the loop when a submission (which returned rc) asks for it,
// and returns rc.
func (ip *Interpreter) wakeLoop(rc C.int) C.int {
	if rc == 1 {
		if ip.loopWake != nil {
			ip.loopWake.request()
		} else {
			ip.writeLoopFD()
		}
	}
	return rc
}

// writeLoopFD wakes the loop. It is a raw system call: were the loop thread to
// run at once on this CPU, a system call in progress would leave this
// goroutine's P to be taken back by Go's monitor and handed to another thread.
func (ip *Interpreter) writeLoopFD() {
	one := uint64(1)
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(ip.loopFD), uintptr(unsafe.Pointer(&one)), 8)
		if e != syscall.EINTR {
			return
		}
	}
}

// deliverLoopResults hands the loop's results to their callers, a batch per
// wake-up of the loop's results eventfd, until the file is closed. The eventfd
// is read with a raw system call, as writeLoopFD writes the loop's: a read
// through os.File enters Go's system call state, and on a node whose one P
// was idle that wakes Go's monitor thread, a thread switch per batch.
func (ip *Interpreter) deliverLoopResults() {
	rc, err := ip.doneFile.SyscallConn()
	if err != nil {
		ip.log.Error("python event loop results unreadable", "err", err)
		return
	}
	var buf [8]byte
	// readOne reports false only for EAGAIN: the netpoller then waits for the
	// loop's next write. An interrupted read is retried at once, as the
	// counter it did not take raises no new readiness event.
	readOne := func(fd uintptr) bool {
		for {
			_, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), 8)
			if e != syscall.EINTR {
				return e != syscall.EAGAIN
			}
		}
	}
	for {
		if err := rc.Read(readOne); err != nil {
			return // closed by Close
		}
		ip.takeLoopResults()
	}
}

func (ip *Interpreter) markLoopReady() { ip.loopOnce.Do(func() { close(ip.loopReady) }) }

func (ip *Interpreter) loopThread() {
	runtime.LockOSThread()
	defer close(ip.loopDone)
	w := C.hb_worker_new()
	ts := w.ts
	C.free(unsafe.Pointer(w)) // the loop keeps only the thread state
	defer ip.markLoopReady()  // if it failed before it was ready
	if msg := C.hb_loop_run(ts); msg != nil {
		err := C.GoString(msg)
		C.free(unsafe.Pointer(msg))
		if !ip.loopRan.Load() {
			ip.loopErr = fmt.Errorf("pybridge: the asyncio event loop did not start: %s", err)
		} else {
			ip.log.Error("python event loop failed", "err", err)
		}
	} else if !ip.loopRan.Load() {
		ip.loopErr = errors.New("pybridge: the asyncio event loop did not start")
	}
	ip.takeLoopResults()
	C.hb_done_close() // later results are freed by Go
	// Whatever the loop did not answer is answered now.
	for _, c := range ip.pending.Drain() {
		c.unpin()
		c.slot.Deliver(result{err: ErrClosed})
	}
}

// poolThread runs q's calls until q closes or the thread is surplus: it
// enters C once, and its OS thread stays locked, so it ends with the goroutine.
func (ip *Interpreter) poolThread(q *workQueue, ready chan<- struct{}) {
	runtime.LockOSThread()
	defer ip.pool.Done()
	w := C.hb_worker_new()
	if ready != nil {
		ready <- struct{}{}
	}
	C.hb_pool_run(q.c, w)
	C.hb_worker_delete(w)
}

// deliver hands c its result r, which it does not free: copied into Go
// memory, or for a call that borrows, taken over (r then owns no bytes). A
// borrowed result its caller no longer waits for is released here.
func (ip *Interpreter) deliver(c *call, r *C.hb_result) {
	var res result
	if c.borrow && r.status == C.HB_OK && r.len > 0 {
		res = result{value: unsafe.Slice((*byte)(unsafe.Pointer(r.data)), int(r.len)), cbuf: unsafe.Pointer(r.data)}
		r.data, r.len = nil, 0
		ip.borrowed.Add(1)
	} else {
		res = resultOf(r)
	}
	if !c.slot.Deliver(res) {
		ip.release(res)
	}
}

// release frees the C memory of a borrowed result.
func (ip *Interpreter) release(r result) {
	if r.cbuf == nil {
		return
	}
	freeLoopBytes(r.cbuf, len(r.value))
	ip.borrowed.Add(-1)
}

// Call runs module.function(*args) in Python and returns its CBOR-encoded result.
// args is a CBOR array (or empty for no arguments). Synchronous functions run on
// the pool, coroutine functions on the event loop. When ctx ends first, Call
// returns ctx.Err() at once and the Python code is interrupted: a TimeoutError
// (deadline) or KeyboardInterrupt (cancel) is raised in it at its next bytecode,
// or the task is cancelled.
func (ip *Interpreter) Call(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	return ip.CallOn(ctx, LaneRPC, module, function, args)
}

// CallOn is Call with a synchronous function run on lane's threads (LaneRPC's
// when lane has none).
func (ip *Interpreter) CallOn(ctx context.Context, lane Lane, module, function string, args []byte) ([]byte, error) {
	return ip.CallWith(ctx, CallOpts{Lane: lane}, module, function, args)
}

// CallOpts are a call's options.
type CallOpts struct {
	Lane Lane
	// MaxResult, when positive, bounds the result's CBOR encoding in bytes: a
	// synchronous function's result that passes it is refused with ErrTooLarge
	// as soon as the encoder reaches the bound.
	MaxResult int
}

// CallWith is Call with options.
func (ip *Interpreter) CallWith(ctx context.Context, o CallOpts, module, function string, args []byte) ([]byte, error) {
	_, r, err := ip.call(ctx, o, false, module, function, args)
	return r.value, err
}

// CallBorrowed is CallWith whose result may be left in the C memory the
// encoder wrote it to rather than copied into Go's heap: a large result
// (a response body) then costs no copy and no garbage. The result is valid
// until the caller calls release, when nothing refers to the bytes any more
// (later calls of release, and release of a result that was copied or of an
// error, do nothing).
func (ip *Interpreter) CallBorrowed(ctx context.Context, o CallOpts, module, function string, args []byte) (value []byte, release func(), err error) {
	c, r, err := ip.call(ctx, o, true, module, function, args)
	if r.cbuf == nil {
		return r.value, noRelease, err
	}
	c.borrowed = r
	return r.value, func() { ip.releaseBorrowed(c) }, err
}

func noRelease() {}

// releaseBorrowed frees c's borrowed result, once: later calls do nothing.
func (ip *Interpreter) releaseBorrowed(c *call) {
	if c.released.CompareAndSwap(false, true) {
		ip.release(c.borrowed)
	}
}

// fnKey names a Python function: its module and its name.
type fnKey struct{ module, function string }

// call runs module.function(args) and returns the call (nil when it was
// never queued) with its result; borrow lets the result stay in C memory
// (CallBorrowed).
func (ip *Interpreter) call(ctx context.Context, o CallOpts, borrow bool, module, function string, args []byte) (*call, result, error) {
	lane := o.Lane
	select {
	case <-ip.stopping:
		return nil, result{}, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, result{}, err
	}
	q := ip.lanes[LaneRPC]
	if lane >= 0 && lane < numLanes && ip.lanes[lane] != nil {
		q = ip.lanes[lane]
	}
	c := &call{ctx: ctx, module: module, function: function, args: args, id: ip.nextID.Add(1), q: q,
		limit: max(o.MaxResult, 0), borrow: borrow}
	async := false
	ip.pending.Store(c.id, c)
	if _, ok := ip.asyncFns.Load(fnKey{module, function}); ok {
		async = true
		if ip.runInline(c, module, function, args) {
			r, err := ip.wait(c, true)
			return c, r, err
		}
		if ip.wakeLoop(submitLoopCall(c.id, module, function, args)) < 0 {
			ip.takePending(c.id)
			return nil, result{}, errors.New("pybridge: out of memory queueing a call")
		}
	} else if !q.push(c) {
		ip.takePending(c.id) // unless Close's drain took it
		if ip.Closing() {
			return nil, result{}, ErrClosed
		}
		return nil, result{}, errors.New("pybridge: out of memory queueing a call")
	}
	r, err := ip.wait(c, async)
	return c, r, err
}

// loopQueued reports whether calls wait in the loop's queue: the loop will
// be woken for them, and a call that joins their batch neither keeps them
// waiting nor keeps the loop thread from the CPU it may be about to get.
func loopQueued() bool {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&C.hb_lq.len))) != 0
}

// othersRunnable reports whether goroutines wait for a P. A caller that runs
// its step itself holds its P throughout, and with one P (a node serving an
// app) the work of other requests waits for it: under load, requests that
// come in together are better handed to the loop together, which runs them
// while this P reads and writes the next ones. Measured with one worker,
// unpinned, 64 connections: every step run by its caller gave 49k requests/s
// and 0.205 s of CPU per 10k, against 59k and 0.197 s through the loop.
func othersRunnable() bool {
	s := [1]metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
	metrics.Read(s[:])
	return s[0].Value.Kind() == metrics.KindUint64 && s[0].Value.Uint64() > 0
}

// runInline runs c's first step on this thread when the loop thread sleeps
// (inline.c), and reports whether it did: its result is then delivered, or
// comes from the loop, which carries on with it.
func (ip *Interpreter) runInline(c *call, module, function string, args []byte) bool {
	// Each test before the call into C, which would wake Go's monitor
	// thread (see loopqueue.go) for calls that take the queue anyway.
	if !ip.cfg.InlineSteps || atomic.LoadInt32((*int32)(unsafe.Pointer(&C.hb_inline_on))) == 0 ||
		loopQueued() || othersRunnable() {
		return false
	}
	r := new(C.hb_result)
	switch C.hb_inline_call(C.uint64_t(c.id),
		(*C.char)(unsafe.Pointer(unsafe.StringData(module))), C.size_t(len(module)),
		(*C.char)(unsafe.Pointer(unsafe.StringData(function))), C.size_t(len(function)),
		bytesPtr(args), C.size_t(len(args)), r) {
	case 0:
		return false
	case 1:
		ip.completeLoopResult(C.uint64_t(c.id), r)
		if r.status != C.HB_OK {
			C.hb_result_free(r) // its error texts
		}
	}
	return true
}

// callerSpin is how long a lone caller spins for its result. Never on one P:
// there the result comes through the netpoller, which the spinning
// goroutine keeps from running, so every call spun its whole time (measured:
// one connection's requests went from 73 µs to 201 µs with 150 µs of
// spinning). Pool threads, which are not on a P, still spin.
func callerSpin(spin time.Duration, oneP bool) time.Duration {
	if oneP {
		return 0
	}
	return spin
}

// wait spins briefly for the result, then parks until it, ctx's end or Close.
// Only a lone call spins: with others in flight the CPU is better left to them.
func (ip *Interpreter) wait(c *call, async bool) (result, error) {
	sp := &ip.spinner
	if ip.inflight.Add(1) > 1 {
		sp = nil
	}
	r, err := c.slot.Wait(c.ctx, sp, ip.dead)
	ip.inflight.Add(-1)
	if err != nil && c.borrow {
		// No one will take a result delivered from now on; one delivered
		// meanwhile is C memory that only this caller can free.
		if late, ok := c.slot.Abandon(); ok {
			ip.release(late)
		}
	}
	switch {
	case errors.Is(err, handoff.ErrStopped):
		return result{}, ErrClosed
	case err != nil:
		ip.abandon(c, async)
		return result{}, err
	}
	return r, r.err
}

// abandon stops the Python side of a call whose caller has gone.
func (ip *Interpreter) abandon(c *call, async bool) {
	if !async {
		switch r, w := c.q.abandon(c.id); r {
		case abandonDropped: // it will never run
			ip.takePending(c.id) // unless Close's drain took it
			return
		case abandonLost:
			// It stays pending until it returns, so that Python's calls into Go
			// from it still find its deadline (callOf). An interrupt is raised
			// at its next bytecode, under the GIL, only if its thread still
			// runs it then.
			kind := C.int(raiseKeyboardInterrupt)
			if errors.Is(c.ctx.Err(), context.DeadlineExceeded) {
				kind = raiseTimeout
			}
			ip.wakeLoop(C.hb_loop_submit_interrupt(C.uint64_t(c.id), w, kind))
			return
		}
		// Returned (its result is on the way), or its awaitable went to the loop.
	}
	if _, ok := ip.takePending(c.id); ok {
		ip.wakeLoop(C.hb_loop_submit_cancel(C.uint64_t(c.id)))
	}
}

// RunMain runs a script, module or code string as __main__ on Python's main
// thread and returns its exit status as python3 would: SystemExit's code, 1 for an
// uncaught exception (its traceback printed), 130 for KeyboardInterrupt.
func (ip *Interpreter) RunMain(kind MainKind, target string) int {
	rc := make(chan int, 1)
	ct := C.CString(target)
	defer C.free(unsafe.Pointer(ct))
	select {
	case ip.mainJobs <- func(ts *C.PyThreadState) { rc <- int(C.hb_run_main(ts, C.int(kind), ct)) }:
	case <-ip.stopping:
		return 1
	}
	return <-rc
}

// InterruptMain raises KeyboardInterrupt (or SystemExit when exit is true) in
// whatever Python code the main thread runs, at its next bytecode boundary.
func (ip *Interpreter) InterruptMain(exit bool) {
	kind := C.int(raiseKeyboardInterrupt)
	if exit {
		kind = raiseSystemExit
	}
	ip.wakeLoop(C.hb_loop_submit_interrupt(0, nil, kind))
}

// Close waits for Python's non-daemon threads, stops the loop and the pool, and
// finalizes Python. Calls still waiting get ErrClosed.
func (ip *Interpreter) Close() error {
	ip.closeOnce.Do(func() {
		done := make(chan struct{})
		ip.mainJobs <- func(ts *C.PyThreadState) { C.hb_wait_threads(ts); close(done) }
		<-done
		close(ip.stopping)
		ip.cancel()
		for _, q := range ip.lanes {
			if q != nil {
				q.close()
			}
		}
		ip.spawnMu.Lock()
		ip.spawnClosed = true // a thread started after Wait would outlive Python
		ip.spawnMu.Unlock()
		ip.pool.Wait()
		ip.wakeLoop(C.hb_loop_submit_stop())
		<-ip.loopDone
		ip.doneFile.Close() // the loop has delivered its last results
		close(ip.mainJobs)
		<-ip.mainDone
		close(ip.dead)
		current.Store(nil) // running stays true: CPython cannot start twice in one process
	})
	return ip.closeErr
}

func bytesPtr(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}

// resultOf converts a C result into Go memory; it does not free r.
func resultOf(r *C.hb_result) result {
	switch r.status {
	case C.HB_OK:
		return result{value: C.GoBytes(unsafe.Pointer(r.data), C.int(r.len))}
	default:
		e := &Error{
			Type:      C.GoString(r.err._type),
			Message:   C.GoString(r.err.message),
			Traceback: C.GoString(r.err.traceback),
		}
		switch r.status {
		case C.HB_NO_MODULE:
			e.kind = ErrNoModule
		case C.HB_NO_FUNCTION:
			e.kind = ErrNoFunction
		case C.HB_TOO_LARGE:
			e.kind = ErrTooLarge
		}
		return result{err: e}
	}
}

// Version returns the version of the CPython this binary embeds, e.g. "3.11.2".
func Version() string {
	v := C.GoString(C.Py_GetVersion())
	for i := range len(v) {
		if v[i] == ' ' {
			return v[:i]
		}
	}
	return v
}

/* bridge.h: the C side of pybridge, shared by its .c files and the Go code.
 *
 * Thread model (see docs/ARCHITECTURE.md): Go owns every OS thread that touches
 * Python. The init thread is Python's main thread; a loop thread runs asyncio;
 * pools of threads, each with a thread state created once, run synchronous
 * calls. Every function here that takes or returns PyObject* needs the GIL unless
 * it says otherwise. */
#ifndef HB_BRIDGE_H
#define HB_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include "cbor.h"

/* An exception captured for Go: malloc'd, NUL-terminated strings. */
typedef struct {
    char *type;      /* qualified type name, e.g. "ValueError", "mymod.MyError" */
    char *message;   /* str(exc) */
    char *traceback; /* traceback.format_exception(exc), joined */
} hb_error;

enum hb_status {
    HB_OK = 0,         /* data/len hold the CBOR result */
    HB_ERROR = 1,      /* err holds the exception */
    HB_ASYNC = 2,      /* coro holds an awaitable (owned) for the loop */
    HB_NO_MODULE = 3,  /* the target module does not exist; err set */
    HB_NO_FUNCTION = 4, /* the target attribute is missing or not callable; err set */
    HB_TOO_LARGE = 5    /* the result's encoding passed the call's limit; err set */
};

typedef struct {
    int status;
    unsigned char *data; /* malloc'd CBOR */
    size_t len;
    hb_error err;
    PyObject *coro; /* HB_ASYNC only; the reference travels to the loop queue */
    int coro_fn;    /* HB_ASYNC only: the function is a coroutine function */
} hb_result;

void hb_result_free(hb_result *r); /* no GIL needed unless coro is set */

/* Takes the raised exception (normalised, traceback attached), clearing it. */
static inline PyObject *hb_take_exception(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (t == NULL) return NULL;
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL) PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

/* Sets exc (a reference this steals) as the raised exception again. */
static inline void hb_restore_exception(PyObject *exc) {
    if (exc == NULL) return;
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

/* errors.c */
void hb_error_capture(hb_error *e);  /* fetches and clears the current exception */
void hb_error_set(hb_error *e, const char *type, const char *msg);
void hb_error_free(hb_error *e);
/* Raises the exception named "module:Class" (or a builtin name) with message and,
 * when attrs_cbor is given, attributes from a CBOR map. */
void hb_raise(const char *spec, const char *message, const unsigned char *attrs, size_t attrs_len);

/* interp.c */
typedef struct {
    const char *executable;   /* sys.executable, or NULL */
    const char **argv;        /* sys.argv */
    int argc;
    const char **path;        /* prepended to sys.path, in order */
    int npath;
    const char *venv;         /* VIRTUAL_ENV, or NULL */
} hb_init_opts;
/* Initialises Python on the calling thread, which becomes its main thread, and
 * releases the GIL. Returns NULL or a malloc'd error message. */
char *hb_init(const hb_init_opts *o, PyThreadState **main_ts);
/* Waits for non-daemon threading.Thread objects; main thread, GIL not held. */
void hb_wait_threads(PyThreadState *main_ts);
int hb_finalize(PyThreadState *main_ts);
/* A pool thread: its thread state and the job it runs, read by the loop thread
 * (under the GIL) to interrupt exactly that job and no later one. */
typedef struct hb_worker {
    PyThreadState *ts;
    unsigned long tid;
    uint64_t job;     /* written with the GIL held; read under it, or by its own thread */
    int interrupted;  /* an async exception may be pending for this thread */
    /* Under its pool's lock (pool.c): */
    uint64_t pool_job;       /* the call it took, 0 between calls */
    int running;             /* it runs pool_job: it took the GIL for it */
    int dropped;             /* pool_job's caller gave up before it ran: skip it */
    int lost;                /* pool_job's caller gave up while it ran: the thread counts as lost */
    struct hb_worker *next;  /* the pool's other threads */
    int parked;              /* listed in the pool's parked threads */
    struct hb_worker *parked_next;
    uint32_t wake;           /* futex word: set to 1 by whoever unlists it to wake it */
} hb_worker;
hb_worker *hb_worker_new(void);          /* on the worker's own thread; GIL not held */
void hb_worker_delete(hb_worker *w);     /* on the worker's own thread; GIL not held */
/* Runs a script (kind 0), module (kind 1) or code string (kind 2) as __main__ on
 * the main thread; returns an exit status. GIL not held. */
int hb_run_main(PyThreadState *ts, int kind, const char *target);
void hb_sigint_setup(void);
int hb_sigint_main(void);
unsigned long hb_main_tid(void);
/* Requests that the thread whose ident is tid raises exc_kind (0 KeyboardInterrupt,
 * 1 TimeoutError, 2 SystemExit) at its next bytecode boundary. GIL held. */
void hb_interrupt_thread(unsigned long tid, int exc_kind);

/* call.c: import module, call function(*args) on the calling pool thread. */
/* limit, when not 0, bounds the result's encoding (HB_TOO_LARGE past it). */
void hb_call_job(hb_worker *w, uint64_t job, const char *mod, size_t modlen, const char *fn,
                 size_t fnlen, const unsigned char *args, size_t argslen, size_t limit,
                 hb_result *out);
/* Resolves and calls with the GIL held; shared by the pool and the loop. With
 * ask_coro_fn an awaitable result also says whether the function is a
 * coroutine function (the pool remembers those, to send their calls to the
 * loop); the loop does not ask. */
void hb_call_locked(const char *mod, size_t modlen, const char *fn, size_t fnlen,
                    const unsigned char *args, size_t argslen, size_t limit, int ask_coro_fn,
                    hb_result *out);
void hb_result_from_value(PyObject *v, hb_result *out); /* steals v */
void hb_encode_result(PyObject *v, size_t limit, hb_result *out); /* borrows v */

/* loop.c: the asyncio loop thread and its batched work queue. */
enum hb_loop_kind {
    HB_LOOP_CORO = 1,      /* run obj (an awaitable) as a task, complete id */
    HB_LOOP_CALL = 2,      /* resolve mod.fn(*args) on the loop, then as CORO */
    HB_LOOP_CANCEL = 3,    /* cancel the task for id */
    HB_LOOP_INTERRUPT = 4, /* raise in thread tid if it still runs job id */
    HB_LOOP_STOP = 5,
    HB_LOOP_RESOLVE = 6    /* set the result or exception of a future (obj) */
};
int hb_loop_open(void);                      /* creates the eventfd; -1 on error */
/* Queue operations take no GIL: they only touch the C queue. Each returns -1
 * when out of memory, else 1 when the loop must be woken (the queue was empty:
 * write the eventfd hb_loop_open returned), else 0. */
int hb_loop_submit_coro(uint64_t id, PyObject *coro);
int hb_loop_submit_call(uint64_t id, const char *mod, size_t modlen, const char *fn,
                        size_t fnlen, const unsigned char *args, size_t argslen);
int hb_loop_submit_cancel(uint64_t id);
int hb_loop_submit_interrupt(uint64_t id, hb_worker *w, int exc_kind);
int hb_loop_submit_stop(void);
/* Completes fut (a reference the item owns) with a CBOR value, or with the
 * exception named by errtype (then data holds optional CBOR attributes). */
int hb_loop_submit_resolve(PyObject *fut, const unsigned char *data, size_t len,
                           const char *errtype, const char *errmsg);
/* The loop's results, queued for Go: hb_done_open makes the eventfd written
 * when the queue becomes non-empty. Go takes the queue's array from hb_dq
 * itself and hands it back as the spare, whose results the loop frees before
 * it reuses the array; hb_done_free frees an array Go cannot hand back. */
typedef struct {
    uint64_t id;
    hb_result r;
} hb_done;
int hb_done_open(void);
extern int hb_direct_ok;     /* set once by Go before the loop starts */
extern int32_t hb_inflight;  /* Go's calls in flight, updated atomically by Go */
void hb_done_free(hb_done *items, size_t n);

/* Goroutines reach the loop's queues through shared memory rather than calls
 * into C: on a node whose Ps are all idle, Go's monitor thread sleeps until
 * the next call into C or system call, and then polls every 20 µs for a while,
 * so a call into C per batch of requests kept it polling (see loop.c). Go
 * cannot take a pthread mutex without a call into C, so both sides take these
 * locks with atomic operations; each is held for a few stores at most, and a
 * side that finds it taken spins, then yields its CPU (Go: its P and CPU). */
void hb_spin_lock(uint32_t *l);
static inline void hb_spin_unlock(uint32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

/* An item of the loop's queue. */
typedef struct {
    int kind;
    uint64_t id;
    PyObject *obj;      /* CORO: owned awaitable */
    char *mod, *fn;     /* CALL: one malloc'd block holding mod, fn and args, or
                           (in_arena) bytes of hb_lq.arena */
    size_t modlen, fnlen, argslen;
    unsigned char *args;
    hb_worker *w;       /* INTERRUPT: NULL means the main thread */
    int exc_kind;
    char *errtype, *errmsg; /* RESOLVE: NULL errtype means success */
    int in_arena;       /* CALL: mod, fn and args lie in the arena, up to arena_end */
    size_t arena_end, arena_used; /* the bytes the item holds, a skipped tail included */
} hb_item;

/* The loop's queue under lock: items queued, the spare array the loop hands
 * back after a drain, and a ring of bytes (arena) into which Go copies a call's
 * names and arguments, released in queue order once the loop ran the calls. */
#define HB_ARENA_CAP (256 * 1024) /* bytes, the loop's and each pool's */
#define HB_ARENA_MAX_COPY (HB_ARENA_CAP / 16) /* the largest call copied into one */
typedef struct {
    uint32_t lock;
    hb_item *items, *spare;
    size_t len, cap, spare_cap;
    unsigned char *arena;
    size_t arena_cap, arena_head, arena_tail, arena_used;
} hb_loop_shared;
extern hb_loop_shared hb_lq;

/* The results queue under lock, the arrays Go handed back (two, so that one
 * is free while Go delivers from the other), and the result bytes Go released
 * (garbage), freed by the loop and the pool threads (hb_done_collect); closed
 * once the loop has ended, when Go frees them. Results come from every thread
 * that holds the GIL. */
#define HB_DONE_SPARES 2
typedef struct {
    uint32_t lock;
    hb_done *items, *spare[HB_DONE_SPARES];
    size_t len, cap, spare_len[HB_DONE_SPARES], spare_cap[HB_DONE_SPARES];
    void **garbage, **garbage_spare;
    size_t ngarbage, garbage_cap, garbage_bytes;
    int closed;
} hb_done_shared;
extern hb_done_shared hb_dq;
/* Frees what the results queue holds and closes it; after the loop ended. */
void hb_done_close(void);
/* Hands Go the outcome of job id (r's contents move to the queue). GIL held. */
void hb_loop_complete(uint64_t id, hb_result *r);
/* Drops a finished job's task from the loop's table of tasks by id. */
void hb_loop_forget(PyObject *key);
/* Frees the result bytes Go released (hb_dq.garbage). No GIL needed. */
void hb_done_collect(void);
/* Wakes the loop: writes the eventfd hb_loop_open returned. */
void hb_loop_wake(void);
/* grow doubles a queue's array (64 to start), zeroing the new part; -1 when
 * out of memory, the array unchanged. */
int hb_grow(void **items, size_t *cap, size_t elem);

/* pool.c: the threads that run synchronous calls, one pool per lane.
 *
 * As with the loop's queue, goroutines queue calls through memory they share
 * with the pool threads (pybridge/pool.go), taking the lock word with atomic
 * operations, and copy a call's bytes into the pool's arena; a call too large
 * for it, or one that finds the queue full, is queued by hb_pool_submit. Pool
 * threads are Go's threads, but each enters C once (hb_pool_run) and stays
 * there: a thread that entered C for every batch of calls held its goroutine's
 * P meanwhile, so on a node with one P Go's network work waited for Go's
 * monitor thread to take the P back. Results go to the loop's results queue
 * (hb_loop_complete). */
typedef struct {
    uint64_t id;
    char *mod, *fn;          /* one block holding mod, fn and args: the arena's
                                bytes (in_arena) or a malloc'd block */
    size_t modlen, fnlen, argslen, limit;
    unsigned char *args;
    int in_arena;
    int go_args;             /* args lie in Go memory its caller pinned: the block
                                holds mod and fn only */
    int abandoned;           /* its caller left before it ran: skipped */
    size_t arena_end, arena_used; /* the arena bytes it holds, a skipped tail included */
} hb_pjob;

typedef struct {
    uint32_t lock;
    hb_pjob *items;          /* FIFO: items[head, len) */
    size_t head, len, cap;
    unsigned char *arena;
    size_t arena_cap, arena_head, arena_tail, arena_used;
    /* Parked threads, the last parked first: waking the one that parked
     * last keeps the others parked long enough to exit when surplus. */
    hb_worker *parked;
    int32_t spinning;        /* a thread spins for work (0 or 1) */
    int32_t busy;            /* threads running calls */
    /* Elastic size: target threads that are not lost are kept, up to max in
     * all; a thread beyond target exits once it has idled for 2 s. */
    int32_t target, max, total, lost, at_max;
    int32_t closed;          /* threads end once the queue is empty */
    int64_t spin_ns;         /* how long an idle thread spins before it parks */
    hb_worker *workers;
} hb_pool;

hb_pool *hb_pool_new(int target, int max, int64_t spin_ns);
/* Queues a call in a malloc'd block: 0, -1 when out of memory, -2 when closed.
 * With go_args the block holds mod and fn only, and args stay where they are
 * (Go memory its caller pinned until the call has run or was dropped), so
 * that a large call queued does not cost its size twice. */
int hb_pool_submit(hb_pool *p, uint64_t id, const char *mod, size_t modlen, const char *fn,
                   size_t fnlen, const unsigned char *args, size_t argslen, size_t limit,
                   int go_args);
/* Runs p's calls on the calling thread (w its state) until p closes and its
 * queue is empty, or the thread is surplus and idle. GIL not held. */
void hb_pool_run(hb_pool *p, hb_worker *w);
/* What Go must do after a thread is counted lost: start a thread (counted in
 * total already), log that every thread the cap allows is lost. */
enum { HB_POOL_GROW = 1, HB_POOL_FULL = 2 };
int hb_pool_lose(hb_pool *p);
void hb_pool_regain(hb_pool *p);
/* Gives up call id: HB_POOL_DROPPED when it has not started (queued, or taken
 * by a thread still waiting for the GIL: it will not run),
 * HB_POOL_LOST when it runs (its thread counts as lost, *w is the thread,
 * *lose what hb_pool_lose returned), 0 when it is no longer in the pool. */
enum { HB_POOL_DROPPED = 1, HB_POOL_LOST = 2 };
int hb_pool_abandon(hb_pool *p, uint64_t id, hb_worker **w, int *lose);
/* The call the calling pool thread runs, 0 when none. No GIL needed. */
uint64_t hb_pool_current(void);

/* httpcycle.c: adds HTTPCycle, an ASGI request's receive and send, to module. */
int hb_httpcycle_add(PyObject *module);
/* Starts call.c's remembering functions by name, once the interpreter runs;
 * hb_call_forget drops them and stops it, before the interpreter ends. */
void hb_call_resolve(void);
void hb_call_forget(void);
/* Drops httpcycle.c's strings, before the interpreter ends. */
void hb_httpcycle_forget(void);
/* job.c: the awaitable that runs a coroutine for Go and reports its end. */
int hb_job_ready(void);
/* A job for id owning coro; key is id as an int. NULL with an exception set. */
PyObject *hb_job_new(uint64_t id, PyObject *key, PyObject *coro);
/* Reports the raised exception (taking it) as job's outcome, unless it has one. */
void hb_job_abort(PyObject *job);
/* Marks job's task as in the loop's table of tasks, to be dropped at its end. */
void hb_job_track(PyObject *job);
/* Throws throw()'s args into job; its outcome as am_send's. */
PySendResult hb_job_throw(PyObject *job, PyObject *args, PyObject **result);
/* An am_send outcome in the shape of a generator's send() (or throw()), and
 * of its __next__ (which ends without StopIteration); the result is taken. */
PyObject *hb_send_outcome(PySendResult st, PyObject *result);
PyObject *hb_next_outcome(PySendResult st, PyObject *result);
/* Raises what throw(typ[, val]) was given, as a generator that is done does. */
void hb_raise_thrown(PyObject *typ, PyObject *val);
/* Makes the Task that runs awaitable aw, named name, which the loop names
 * only while it makes Tasks itself; with name NULL the loop's create_task
 * makes it (the app may have installed a task factory). */
PyObject *hb_loop_new_task(PyObject *aw, PyObject *name);
/* eager.c: runs the first step of job inside an idle host's Task, named name:
 * 1 done (answered, or *task, a new reference, carries on with it), 0 not
 * possible here (make it a Task of its own). GIL held. */
int hb_eager_start(PyObject *job, PyObject *name, PyObject **task);
/* Starts and stops eager.c for loop: open before the loop runs (-1 with an
 * exception set), stop once it stopped, close when it is closed. */
int hb_eager_open(PyObject *loop);
void hb_eager_stop(void);
void hb_eager_close(void);
/* Runs call id of module mod's function fn as the loop's drain would: its
 * first step at once, the rest in a Task. Loop role and GIL held. */
void hb_loop_run_call(uint64_t id, const char *mod, size_t modlen, const char *fn, size_t fnlen,
                      const unsigned char *args, size_t argslen);
/* inline.c: a Go caller runs its call's first step while the loop sleeps.
 * hb_inline_call: 0 not run (queue it), 1 done (*out is its result), 2 started
 * (the loop answers it). GIL not held. */
int hb_inline_call(uint64_t id, const char *mod, size_t modlen, const char *fn, size_t fnlen,
                   const unsigned char *args, size_t argslen, hb_result *out);
extern int hb_inline_enabled;
extern int hb_inline_on; /* read by Go without a call into C */
int hb_inline_take(uint64_t id, hb_result *r);
/* Drops the thread state a Go thread kept for first steps, before the thread
 * becomes a Python thread of its own (a pool or loop thread): PyGILState_*
 * must find that thread's own state. GIL not held. */
void hb_inline_forget_thread(void);
void hb_inline_loop_begin(void); /* loop thread, before it takes the GIL */
void hb_inline_arm(PyObject *loop); /* loop thread, before run_forever */
void hb_inline_stop(void);
void hb_inline_loop_end(void); /* loop thread, GIL held, last */
/* Runs the loop on the calling thread until a STOP item; GIL taken from ts. */
char *hb_loop_run(PyThreadState *ts);

/* module.c */
PyObject *hb_module_init(void);
void hb_set_state_max_value(size_t n); /* bounds state_set's encoded value; 0 = none */

/* directwrite.c: the socket of a streamed HTTP/1.1 response, lent by Go to
 * the event loop's thread so that a piece the app sends is written at once,
 * without a hand-over to Go and back. A slot per lent socket, named to Python
 * by a handle (its index and generation): a gate word decides who writes
 * (Go, or the loop in hb_dw_write), and Go takes the slot back, waiting for
 * a write in flight, before the response ends and the socket can close. */
enum { HB_DW_CLOSED = 0, HB_DW_OPEN = 1, HB_DW_BUSY = 2 };
#define HB_DW_SLOTS 4096
/* The largest piece written from the loop's thread: what a full socket
 * leaves of one is copied and kept, so larger ones go through Go, which
 * writes them from Python's bytes. */
#define HB_DW_MAX_PIECE (1 << 20)

typedef struct {
    uint32_t gate;
    uint32_t gen;        /* changed only while closed or held by Go */
    int fd;
    int chunked;         /* each piece goes as a chunk */
    int64_t left;        /* body bytes the declared length still allows; -1: no bound */
    int64_t written;     /* body bytes written since Go last took the slot */
    unsigned char *carry; /* the rest of a frame a full socket did not take, for Go */
    size_t carry_len;
    int err;             /* errno of a failed send: Go reports it */
    int next_free;
} hb_dw_slot;

/* hb_dw_open lends fd in a slot; NULL when every slot is lent or memory ran out. */
hb_dw_slot *hb_dw_open(int fd, int chunked, int64_t left, uint64_t *handle);
/* hb_dw_free returns a slot Go closed to the free list. */
void hb_dw_free(hb_dw_slot *s);
/* hb_dw_write writes one piece (see directwrite.c); GIL held. */
int hb_dw_write(uint64_t handle, const char *p, size_t len);

#endif

/* inline.c: a Go caller runs its coroutine's first step itself while the
 * loop thread sleeps.
 *
 * A call handed to the loop wakes two threads: the loop thread, to run it,
 * and a Go thread, to take its result. uvicorn's one thread reads the request,
 * runs the app and writes the answer: at one request at a time, a node's ASGI
 * request cost 1.8 times uvicorn's CPU, most of it in those wake-ups. So while
 * the loop thread sleeps in its poll, a Go caller whose call is a coroutine
 * takes the loop's role for the call's first step, on its own thread: the
 * same eager step the loop would run (eager.c), with the same host Task,
 * context and running loop. A call that finishes there is answered at once;
 * one that waits stays with the loop, as it would have.
 *
 * The role is a lock, `own`, that the loop thread holds whenever it is not
 * waiting in its poll: it lets go in epoll_wait and epoll_pwait, defined here
 * so that they take the place of the C library's for the loop (libuv calls
 * them from uvloop), and takes it back before it runs anything. A Go caller
 * only tries the lock: when the loop is busy, the call goes through the queue
 * as before, and under load batches still form. Lock order is own, then the
 * GIL, on both sides.
 *
 * The loop slept with a view of its work (its timers, handles, the file
 * descriptors it polls) that the step may change: a call_soon, a timer, a
 * write left for later. libuv keeps the count of its active handles and
 * requests and the queues of pending work and of poll changes at the head of
 * uv_loop_t (stable through libuv 1.x: the struct is part of its ABI); when
 * the step changed any of them, the loop is woken to look again. uvloop's Loop
 * object holds the uv_loop_t pointer as its first field; it is taken only if
 * the loop points back at the Loop object and polls the file the loop thread
 * was seen to poll, else the loop takes every call itself. A plain asyncio
 * loop (no uvloop) does too. */
#include "bridge.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The head of libuv 1.x's uv_loop_t on Unix (uv.h, uv/unix.h). */
typedef struct {
    void *data;
    unsigned int active_handles;
    void *handle_queue[2];
    union {
        void *unused;
        unsigned int count;
    } active_reqs;
    void *internal_fields;
    unsigned int stop_flag;
    unsigned long flags;
    int backend_fd;
    void *pending_queue[2];
    void *watcher_queue[2];
} uv_head;

/* What a step may change that the sleeping loop must see. */
typedef struct {
    unsigned int handles, reqs, stop;
    void *newest; /* the last handle made: a timer cancelled and another made
                     leave the count of active handles as it was */
    int pending, watchers;
} uv_view;

static pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER;
static __thread int loop_thread;  /* this thread runs the loop */
static __thread int inline_id_set; /* this thread runs a call inline: */
static __thread uint64_t inline_id;
static __thread hb_result *inline_out; /* where its result goes */
static __thread int inline_done;
static __thread PyThreadState *my_ts;
static __thread unsigned my_gen;

/* Under own: */
static struct {
    int armed;      /* the loop is about to run: the next poll names its file */
    int epfd;       /* the file the loop polls */
    unsigned gen;   /* counts loops run, so that thread states of an old
                       interpreter are not used */
    PyObject *loop; /* the uvloop Loop (borrowed: the loop thread holds it) */
    uv_head *uv;
    PyObject *set_running; /* asyncio._set_running_loop */
    PyObject *get_debug;   /* "get_debug", interned */
} I = {.epfd = -1};

int hb_inline_enabled; /* Go sets it for --inline-steps */
int hb_inline_on;          /* Go callers may run first steps; set under own */

static int real_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout,
                           const sigset_t *mask) {
    return (int)syscall(SYS_epoll_pwait, epfd, ev, max, timeout, mask, _NSIG / 8);
}

static void take_uv(int epfd);

static int wait_unowned(int epfd, struct epoll_event *ev, int max, int timeout,
                        const sigset_t *mask) {
    if (!loop_thread) return real_epoll_wait(epfd, ev, max, timeout, mask);
    if (I.armed) {
        I.armed = 0;
        I.epfd = epfd;
        take_uv(epfd);
    }
    /* Only the loop's own poll: one nested in a callback (a library's
     * blocking select) is code of the loop's that is still running. */
    if (epfd != I.epfd) return real_epoll_wait(epfd, ev, max, timeout, mask);
    pthread_mutex_unlock(&own);
    int n = real_epoll_wait(epfd, ev, max, timeout, mask);
    int e = errno;
    pthread_mutex_lock(&own);
    errno = e;
    return n;
}

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    return wait_unowned(epfd, ev, max, timeout, NULL);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
    return wait_unowned(epfd, ev, max, timeout, mask);
}

/* readable reports whether n bytes at p can be read, without reading them
 * where they cannot: the kernel refuses a write from unmapped memory. */
static int readable(const void *p, size_t n) {
    int fds[2];
    if (pipe(fds) < 0) return 0;
    ssize_t w = write(fds[1], p, n);
    close(fds[0]);
    close(fds[1]);
    return w == (ssize_t)n;
}

/* take_uv finds the uv_loop_t of I.loop, which polls epfd; on the loop thread,
 * own held. */
static void take_uv(int epfd) {
    PyObject *loop = I.loop;
    I.uv = NULL;
    if (loop == NULL || Py_TYPE(loop)->tp_basicsize < (Py_ssize_t)(sizeof(PyObject) + 2 * sizeof(void *)))
        return;
    uv_head **slot = (uv_head **)((char *)loop + sizeof(PyObject) + sizeof(void *));
    uv_head *uv = *slot;
    if (uv == NULL || !readable(uv, sizeof *uv)) return;
    if (uv->data != (void *)loop || uv->backend_fd != epfd) return;
    I.uv = uv;
    __atomic_store_n(&hb_inline_on, hb_inline_enabled && I.set_running != NULL && I.get_debug != NULL,
                     __ATOMIC_RELAXED);
}

static int queue_empty(void *const *q) { return q[0] == (void *)q; }

static uv_view view(const uv_head *uv) {
    return (uv_view){.handles = uv->active_handles, .reqs = uv->active_reqs.count,
                     .stop = uv->stop_flag, .newest = uv->handle_queue[1],
                     .pending = !queue_empty(uv->pending_queue),
                     .watchers = !queue_empty(uv->watcher_queue)};
}

void hb_inline_loop_begin(void) {
    pthread_mutex_lock(&own);
    loop_thread = 1;
}

/* GIL held, own held (loop thread). */
void hb_inline_arm(PyObject *loop) {
    __atomic_add_fetch(&I.gen, 1, __ATOMIC_RELAXED);
    I.loop = NULL;
    I.uv = NULL;
    __atomic_store_n(&hb_inline_on, 0, __ATOMIC_RELAXED);
    I.epfd = -1;
    Py_CLEAR(I.set_running);
    PyObject *uvloop = PyImport_ImportModule("uvloop");
    int is_uv = 0;
    if (uvloop != NULL) {
        PyObject *cls = PyObject_GetAttrString(uvloop, "Loop");
        is_uv = cls != NULL && PyType_Check(cls) && Py_IS_TYPE(loop, (PyTypeObject *)cls);
        Py_XDECREF(cls);
        Py_DECREF(uvloop);
    }
    PyErr_Clear();
    if (!is_uv) return;
    if (I.get_debug == NULL) I.get_debug = PyUnicode_InternFromString("get_debug");
    PyObject *events = PyImport_ImportModule("asyncio.events");
    I.set_running = events ? PyObject_GetAttrString(events, "_set_running_loop") : NULL;
    Py_XDECREF(events);
    PyErr_Clear();
    I.loop = loop;
    I.armed = 1;
}

/* The loop has stopped: no more first steps here. GIL and own held. */
void hb_inline_stop(void) {
    __atomic_store_n(&hb_inline_on, 0, __ATOMIC_RELAXED);
    I.armed = 0;
}

void hb_inline_loop_end(void) {
    __atomic_store_n(&hb_inline_on, 0, __ATOMIC_RELAXED);
    I.loop = NULL;
    I.uv = NULL;
    Py_CLEAR(I.set_running);
    loop_thread = 0;
    pthread_mutex_unlock(&own);
}

/* hb_inline_take gives the result of the call run inline on this thread to
 * its caller: 1 when r was that call's (taken), else 0. */
int hb_inline_take(uint64_t id, hb_result *r) {
    if (!inline_id_set || inline_id != id) return 0;
    *inline_out = *r;
    inline_done = 1;
    inline_id_set = 0; /* a call completes once */
    return 1;
}

void hb_inline_forget_thread(void) {
    if (my_ts != NULL && my_gen == __atomic_load_n(&I.gen, __ATOMIC_RELAXED)) {
        PyEval_RestoreThread(my_ts);
        PyThreadState_Clear(my_ts);
        PyThreadState_DeleteCurrent(); /* and PyGILState's note of it */
    }
    my_ts = NULL;
}

/* enter makes this thread's Python thread state current, with the loop
 * running on it; 0 when it cannot. own held, GIL not. */
static int enter(void) {
    if (my_ts == NULL || my_gen != I.gen) {
        /* An older state was freed with its interpreter. */
        PyThreadState *ts = PyThreadState_New(PyInterpreterState_Main());
        if (ts == NULL) return 0;
        PyEval_RestoreThread(ts);
        PyObject *r = PyObject_CallOneArg(I.set_running, I.loop);
        if (r == NULL) {
            PyErr_Clear();
            PyThreadState_Clear(ts);
            PyThreadState_DeleteCurrent();
            return 0;
        }
        Py_DECREF(r);
        my_ts = ts;
        my_gen = I.gen;
        return 1;
    }
    PyEval_RestoreThread(my_ts);
    return 1;
}

int hb_inline_call(uint64_t id, const char *mod, size_t modlen, const char *fn, size_t fnlen,
                   const unsigned char *args, size_t argslen, hb_result *out) {
    if (!__atomic_load_n(&hb_inline_on, __ATOMIC_RELAXED) || pthread_mutex_trylock(&own) != 0) return 0;
    /* Not on a thread of Python's own (a pool thread, a thread the app
     * started), which may be in the middle of its code, calling Go. */
    PyThreadState *bound = hb_inline_on ? PyGILState_GetThisThreadState() : NULL;
    /* Calls already queued will wake the loop: this one joins their batch
     * (Go checks too, before it calls here). */
    int queued = __atomic_load_n(&hb_lq.len, __ATOMIC_RELAXED) != 0;
    if (!hb_inline_on || queued || loop_thread || (bound != NULL && (bound != my_ts || my_gen != I.gen)) ||
        !enter()) {
        pthread_mutex_unlock(&own);
        return 0;
    }
    /* The app may have turned on debug mode, where the loop refuses calls
     * from other threads. */
    PyObject *dbg = PyObject_CallMethodNoArgs(I.loop, I.get_debug);
    int debug = dbg == NULL || PyObject_IsTrue(dbg) != 0;
    Py_XDECREF(dbg);
    if (debug) {
        PyErr_Clear();
        PyEval_SaveThread();
        pthread_mutex_unlock(&own);
        return 0;
    }
    uv_view before = view(I.uv);
    inline_id = id;
    inline_out = out;
    inline_done = 0;
    inline_id_set = 1;
    hb_loop_run_call(id, mod, modlen, fn, fnlen, args, argslen);
    inline_id_set = 0;
    int done = inline_done;
    uv_view after = view(I.uv);
    hb_done_collect(); /* as the loop's drain would have */
    /* A call that waits needs the loop to go on with it anyway. */
    int wake = !done || after.handles != before.handles || after.reqs != before.reqs ||
               after.stop != before.stop || after.newest != before.newest || after.pending ||
               after.watchers;
    PyEval_SaveThread();
    pthread_mutex_unlock(&own);
    if (wake) hb_loop_wake();
    return done ? 1 : 2;
}

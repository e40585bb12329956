/* loop.c: the asyncio loop thread, the queue through which Go hands it work,
 * and the queue of results it hands back.
 *
 * Go appends items to a C queue under a lock and, only when the queue went from
 * empty to non-empty, writes the eventfd (itself, see wakeLoop in pybridge.go);
 * the loop drains the whole queue per wakeup.
 * One wakeup thus carries a burst of requests (about 0.5 us each against 5 us for
 * call_soon_threadsafe per item). The queue holds at most one item per waiting Go
 * caller, so its size is bounded by the callers' own concurrency limits.
 *
 * Goroutines append calls and take results through hb_lq and hb_dq directly
 * (pybridge/loopqueue.go), without a call into C. Go's monitor thread (sysmon)
 * sleeps while every P is idle, and the next call into C wakes it; it then polls
 * every 20 µs, going back to sleep only when it next sees every P idle. A node
 * whose Go side idles between batches of requests, as it does waiting for this
 * thread, woke it that way once per 50 to 110 requests, and kept it polling. */
#include "bridge.h"
#include "_cgo_export.h"
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void hb_spin_lock(uint32_t *l) {
    for (unsigned n = 1; __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE); n++) {
        if (n % 64 == 0) {
            sched_yield(); /* the holder may be off its CPU */
        } else {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ volatile("yield");
#endif
        }
    }
}

hb_loop_shared hb_lq;

typedef struct {
    int efd;
    /* loop-thread only, GIL held: */
    PyObject *loop, *tasks, *create_task, *ensure_future, *settle, *settle_many;
    PyObject *foreign; /* during a drain: other loops -> [(fut, ok, value)] */
    PyObject *name_result, *name_add_done_callback; /* interned method names */
    /* Making a Task directly, named after its coroutine: loop.create_task would
       format a name "Task-N" for every call. Only while the loop has no task
       factory (checked once per drain), which create_task would honour. */
    PyObject *task_type, *task_kwnames, *get_task_factory, *name_qualname;
    int direct_task;
} hb_loopq;

static hb_loopq Q = {.efd = -1};

int hb_loop_open(void) {
    if (hb_lq.arena == NULL && (hb_lq.arena = malloc(HB_ARENA_CAP)) == NULL) return -1;
    hb_lq.arena_cap = HB_ARENA_CAP;
    hb_lq.arena_head = hb_lq.arena_tail = hb_lq.arena_used = 0;
    Q.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return Q.efd;
}

int hb_grow(void **items, size_t *cap, size_t elem) {
    size_t c = *cap ? *cap * 2 : 64;
    void *n = realloc(*items, c * elem);
    if (n == NULL) return -1;
    /* Zeroed: Go writes pointer fields into these arrays, and Go's write
     * barrier reads the value it overwrites, which must not be stray bits. */
    memset((char *)n + *cap * elem, 0, (c - *cap) * elem);
    *items = n;
    *cap = c;
    return 0;
}

static int push(hb_item it) {
    hb_spin_lock(&hb_lq.lock);
    if (hb_lq.len == hb_lq.cap && hb_grow((void **)&hb_lq.items, &hb_lq.cap, sizeof(hb_item)) < 0) {
        hb_spin_unlock(&hb_lq.lock);
        return -1;
    }
    hb_lq.items[hb_lq.len++] = it;
    int wake = hb_lq.len == 1;
    hb_spin_unlock(&hb_lq.lock);
    return wake;
}

void hb_loop_wake(void) {
    uint64_t one = 1;
    while (write(Q.efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

int hb_loop_submit_coro(uint64_t id, PyObject *coro) {
    return push((hb_item){.kind = HB_LOOP_CORO, .id = id, .obj = coro});
}

int hb_loop_submit_call(uint64_t id, const char *mod, size_t modlen, const char *fn,
                        size_t fnlen, const unsigned char *args, size_t argslen) {
    char *blk = malloc(modlen + fnlen + argslen + 1);
    if (blk == NULL) return -1;
    memcpy(blk, mod, modlen);
    memcpy(blk + modlen, fn, fnlen);
    if (argslen) memcpy(blk + modlen + fnlen, args, argslen);
    return push((hb_item){.kind = HB_LOOP_CALL, .id = id, .mod = blk, .modlen = modlen,
                          .fn = blk + modlen, .fnlen = fnlen,
                          .args = (unsigned char *)blk + modlen + fnlen, .argslen = argslen});
}

int hb_loop_submit_cancel(uint64_t id) {
    return push((hb_item){.kind = HB_LOOP_CANCEL, .id = id});
}

int hb_loop_submit_interrupt(uint64_t id, hb_worker *w, int exc_kind) {
    return push((hb_item){.kind = HB_LOOP_INTERRUPT, .id = id, .w = w, .exc_kind = exc_kind});
}

int hb_loop_submit_stop(void) { return push((hb_item){.kind = HB_LOOP_STOP}); }

int hb_loop_submit_resolve(PyObject *fut, const unsigned char *data, size_t len,
                           const char *errtype, const char *errmsg) {
    hb_item it = {.kind = HB_LOOP_RESOLVE, .obj = fut, .argslen = len};
    if (len) {
        it.args = malloc(len);
        if (it.args == NULL) return -1;
        memcpy(it.args, data, len);
    }
    if (errtype != NULL) {
        it.errtype = strdup(errtype);
        it.errmsg = strdup(errmsg ? errmsg : "");
    }
    return push(it);
}

/* Sets the outcome of a future created on any event loop: directly when it
 * belongs to this loop, through call_soon_threadsafe when it does not. */
static void resolve(hb_item *it) {
    PyObject *fut = it->obj, *value = NULL, *exc = NULL;
    if (it->errtype == NULL) {
        value = it->argslen ? hb_decode(it->args, it->argslen) : Py_NewRef(Py_None);
        if (value == NULL) exc = hb_take_exception();
    } else {
        hb_raise(it->errtype, it->errmsg, it->args, it->argslen);
        exc = hb_take_exception();
    }
    PyObject *floop = PyObject_CallMethod(fut, "get_loop", NULL);
    PyObject *ok = exc ? Py_False : Py_True, *arg = exc ? exc : value;
    if (floop == Q.loop) {
        PyObject *r = PyObject_CallFunctionObjArgs(Q.settle, fut, ok, arg, NULL);
        if (r == NULL) PyErr_WriteUnraisable(fut);
        Py_XDECREF(r);
    } else if (floop != NULL) {
        /* Another thread's loop: collected per loop and handed over once per
         * drain (see settle_foreign), not one cross-thread wake-up per result. */
        PyObject *lst = PyDict_GetItemWithError(Q.foreign, floop); /* borrowed */
        if (lst == NULL && !PyErr_Occurred()) {
            lst = PyList_New(0);
            if (lst != NULL && PyDict_SetItem(Q.foreign, floop, lst) < 0) Py_CLEAR(lst);
            Py_XDECREF(lst); /* the dict holds it */
        }
        PyObject *t = lst ? PyTuple_Pack(3, fut, ok, arg) : NULL;
        if (t == NULL || PyList_Append(lst, t) < 0) PyErr_WriteUnraisable(fut);
        Py_XDECREF(t);
    }
    if (floop == NULL) {
        /* get_loop() raised (a broken or foreign future type): settle it here
         * rather than never; a caller waiting on it would wait forever. */
        PyErr_Clear();
        PyObject *r = PyObject_CallFunctionObjArgs(Q.settle, fut, ok, arg, NULL);
        if (r == NULL) PyErr_WriteUnraisable(fut);
        Py_XDECREF(r);
    }
    Py_XDECREF(floop);
    PyErr_Clear();
    Py_XDECREF(value);
    Py_XDECREF(exc);
    Py_DECREF(fut);
    free(it->args);
    free(it->errtype);
    free(it->errmsg);
}

/* settle_foreign hands each other loop its batch of results collected during a
 * drain. A loop closed meanwhile has no one left to wait on its futures. */
static void settle_foreign(void) {
    PyObject *floop, *lst;
    Py_ssize_t pos = 0;
    while (PyDict_Next(Q.foreign, &pos, &floop, &lst)) {
        PyObject *r = PyObject_CallMethod(floop, "call_soon_threadsafe", "OO", Q.settle_many, lst);
        if (r == NULL) PyErr_Clear();
        Py_XDECREF(r);
    }
    PyDict_Clear(Q.foreign);
}

/* Results of the loop's calls go to Go through a queue and a second eventfd
 * that Go's netpoller watches, not through a call into Go per result: a call
 * into Go from this thread must take one of Go's Ps, and with GOMAXPROCS=1 (a
 * node confined to one CPU) that meant a thread switch per result and a P left
 * in a system call until Go's monitor took it back. One wake-up now carries
 * every result that a drain or a loop iteration produced. */
static struct {
    int efd;
} D = {.efd = -1};

hb_done_shared hb_dq;

/* Bounds of the borrowed results Go leaves to the loop to free: past them Go
 * frees a result itself (loopqueue.go). */
#define HB_GARBAGE_CAP 1024

int hb_done_open(void) {
    if (hb_dq.garbage == NULL) hb_dq.garbage = calloc(HB_GARBAGE_CAP, sizeof(void *));
    if (hb_dq.garbage_spare == NULL) hb_dq.garbage_spare = calloc(HB_GARBAGE_CAP, sizeof(void *));
    if (hb_dq.garbage == NULL || hb_dq.garbage_spare == NULL) return -1;
    hb_dq.garbage_cap = HB_GARBAGE_CAP;
    hb_dq.closed = 0;
    D.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return D.efd;
}

void hb_done_free(hb_done *items, size_t n) {
    for (size_t i = 0; i < n; i++) hb_result_free(&items[i].r);
    free(items);
}

/* Called by the loop and by pool threads: collecting is held by the one that
 * frees the spare list, which alone may swap the lists. */
static uint32_t collecting;

void hb_done_collect(void) {
    if (__atomic_load_n(&hb_dq.ngarbage, __ATOMIC_RELAXED) == 0 ||
        __atomic_exchange_n(&collecting, 1, __ATOMIC_ACQUIRE))
        return;
    hb_spin_lock(&hb_dq.lock);
    void **g = hb_dq.garbage;
    size_t n = hb_dq.ngarbage;
    if (n > 0) {
        hb_dq.garbage = hb_dq.garbage_spare;
        hb_dq.garbage_spare = g;
        hb_dq.ngarbage = 0;
        hb_dq.garbage_bytes = 0;
    }
    hb_spin_unlock(&hb_dq.lock);
    /* g stays the spare until the next collection, which alone swaps them. */
    for (size_t i = 0; i < n; i++) free(g[i]);
    __atomic_store_n(&collecting, 0, __ATOMIC_RELEASE);
}

void hb_done_close(void) {
    hb_spin_lock(&hb_dq.lock);
    hb_done *items = hb_dq.items, *spare[HB_DONE_SPARES];
    size_t len = hb_dq.len, spare_len[HB_DONE_SPARES];
    for (int i = 0; i < HB_DONE_SPARES; i++) {
        spare[i] = hb_dq.spare[i];
        spare_len[i] = hb_dq.spare_len[i];
        hb_dq.spare[i] = NULL;
        hb_dq.spare_len[i] = hb_dq.spare_cap[i] = 0;
    }
    hb_dq.items = NULL;
    hb_dq.len = hb_dq.cap = 0;
    hb_dq.closed = 1;
    hb_spin_unlock(&hb_dq.lock);
    if (items != NULL) hb_done_free(items, len);
    for (int i = 0; i < HB_DONE_SPARES; i++)
        if (spare[i] != NULL) hb_done_free(spare[i], spare_len[i]);
    hb_done_collect();
}

/* With Ps to spare a lone caller's result is faster delivered by a call into
 * Go from this thread (an idle P takes it, no thread is woken) than through the
 * eventfd (which wakes a thread): when hb_direct_ok is set by Go and at most
 * one call is in flight (hb_inflight, kept by Go), results take that path. */
int hb_direct_ok;
int32_t hb_inflight;

void hb_loop_complete(uint64_t id, hb_result *r) {
    if (hb_inline_take(id, r)) return; /* its caller runs it on this thread */
    if (hb_direct_ok && __atomic_load_n(&hb_inflight, __ATOMIC_RELAXED) <= 1) {
        hbComplete(id, r);
        hb_result_free(r);
        return;
    }
    /* Go took the array it filled: a spare it handed back is reused once
     * what its results still hold (error texts; results no one waited for)
     * is freed. Only a thread holding the GIL sets hb_dq.items, and this one
     * holds it throughout, so items stays NULL meanwhile unless the queue
     * closes. */
    hb_done *reuse = NULL;
    size_t reuse_len = 0, reuse_cap = 0;
    hb_spin_lock(&hb_dq.lock);
    if (hb_dq.closed) {
        hb_spin_unlock(&hb_dq.lock);
        hb_result_free(r); /* the loop has ended: no one waits for it */
        return;
    }
    for (int i = 0; hb_dq.items == NULL && i < HB_DONE_SPARES; i++) {
        if (hb_dq.spare[i] != NULL) {
            reuse = hb_dq.spare[i];
            reuse_len = hb_dq.spare_len[i];
            reuse_cap = hb_dq.spare_cap[i];
            hb_dq.spare[i] = NULL;
            hb_dq.spare_len[i] = hb_dq.spare_cap[i] = 0;
            break;
        }
    }
    hb_spin_unlock(&hb_dq.lock);
    for (size_t i = 0; i < reuse_len; i++) hb_result_free(&reuse[i].r);
    hb_spin_lock(&hb_dq.lock);
    if (hb_dq.closed) {
        hb_spin_unlock(&hb_dq.lock);
        if (reuse != NULL) free(reuse);
        hb_result_free(r);
        return;
    }
    if (reuse != NULL) {
        hb_dq.items = reuse;
        hb_dq.cap = reuse_cap;
        hb_dq.len = 0;
    }
    if (hb_dq.len == hb_dq.cap && hb_grow((void **)&hb_dq.items, &hb_dq.cap, sizeof(hb_done)) < 0) {
        hb_spin_unlock(&hb_dq.lock);
        hbComplete(id, r); /* no memory for the queue: deliver it directly */
        hb_result_free(r);
        return;
    }
    hb_dq.items[hb_dq.len++] = (hb_done){.id = id, .r = *r};
    int wake = hb_dq.len == 1;
    hb_spin_unlock(&hb_dq.lock);
    if (wake) {
        uint64_t one = 1;
        while (write(D.efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
}

/* The done callback of a task: self is the job id. */
static PyObject *task_done(PyObject *self, PyObject *task) {
    uint64_t id = PyLong_AsUnsignedLongLong(self);
    if (PyDict_DelItem(Q.tasks, self) < 0) PyErr_Clear();
    hb_result r;
    memset(&r, 0, sizeof r);
    PyObject *v = PyObject_CallMethodNoArgs(task, Q.name_result);
    if (v == NULL) {
        r.status = HB_ERROR;
        hb_error_capture(&r.err);
    } else {
        hb_result_from_value(v, &r);
    }
    hb_loop_complete(id, &r);
    Py_RETURN_NONE;
}

static PyMethodDef task_done_def = {"_hornbeam_task_done", task_done, METH_O, NULL};

/* task_name names the Task that runs coro after its function, while the loop
 * makes Tasks itself; NULL (no exception set) otherwise. */
static PyObject *task_name(PyObject *coro) {
    if (!Q.direct_task) return NULL;
    PyObject *name = PyObject_GetAttr(coro, Q.name_qualname);
    if (name != NULL && PyUnicode_CheckExact(name)) return name;
    PyErr_Clear();
    Py_XDECREF(name);
    return NULL;
}

PyObject *hb_loop_new_task(PyObject *aw, PyObject *name) {
    if (name == NULL) return PyObject_CallOneArg(Q.create_task, aw);
    PyObject *args[] = {aw, Q.loop, name};
    return PyObject_Vectorcall(Q.task_type, args, 1, Q.task_kwnames);
}

void hb_loop_forget(PyObject *key) {
    if (Q.tasks != NULL && PyDict_DelItem(Q.tasks, key) < 0) PyErr_Clear();
}

/* start_failed answers job id with the raised exception: its task could not
 * be started. */
static void start_failed(uint64_t id, PyObject *key) {
    hb_result res;
    memset(&res, 0, sizeof res);
    res.status = HB_ERROR;
    hb_error_capture(&res.err);
    if (key != NULL) hb_loop_forget(key);
    hb_loop_complete(id, &res);
}

/* The ids of the calls the batch being drained also cancels, sorted: their
 * callers gave up while they waited in the queue. Their first step is not
 * run at once: they become Tasks, which the cancel reaches before that step,
 * so that their code never runs. Loop thread only. */
static struct {
    uint64_t *ids;
    size_t n;
    int unknown; /* no memory to list them: none runs at once */
} batch_cancels;

static int cmp_id(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cancelled_in_batch(uint64_t id) {
    if (batch_cancels.unknown) return 1;
    return batch_cancels.n > 0 &&
           bsearch(&id, batch_cancels.ids, batch_cancels.n, sizeof id, cmp_id) != NULL;
}

/* start_job runs coroutine coro (a reference it takes) in a Task through a
 * job (job.c), which answers Go from the coroutine's last step. */
static void start_job(uint64_t id, PyObject *key, PyObject *coro) {
    PyObject *job = hb_job_new(id, key, coro);
    if (job == NULL) {
        Py_DECREF(coro);
        start_failed(id, key);
        return;
    }
    /* From here the job answers Go itself, even if no task can run it. */
    PyObject *task = NULL, *name = task_name(coro);
    if (name == NULL || cancelled_in_batch(id) || !hb_eager_start(job, name, &task)) {
        task = hb_loop_new_task(job, name);
        if (task == NULL) hb_job_abort(job);
    }
    Py_XDECREF(name);
    if (task != NULL) {
        if (PyDict_SetItem(Q.tasks, key, task) < 0)
            PyErr_Clear(); /* runs, but cannot be cancelled by id */
        else
            hb_job_track(job);
    }
    Py_XDECREF(task);
    Py_DECREF(job);
}

/* start_task runs aw (a reference it takes) as a task of the loop and answers
 * job id when it ends: a coroutine through a job, any other awaitable through
 * a done callback. */
static void start_task(uint64_t id, PyObject *aw) {
    PyObject *key = PyLong_FromUnsignedLongLong(id);
    if (key == NULL) {
        Py_DECREF(aw);
        start_failed(id, NULL);
        return;
    }
    if (PyCoro_CheckExact(aw)) {
        start_job(id, key, aw);
        Py_DECREF(key);
        return;
    }
    PyObject *task = PyObject_CallOneArg(Q.ensure_future, aw);
    Py_DECREF(aw);
    PyObject *cb = task ? PyCFunction_New(&task_done_def, key) : NULL;
    PyObject *r = NULL;
    if (cb != NULL && PyDict_SetItem(Q.tasks, key, task) == 0)
        r = PyObject_CallMethodOneArg(task, Q.name_add_done_callback, cb);
    if (r == NULL) start_failed(id, key);
    Py_XDECREF(r);
    Py_XDECREF(cb);
    Py_XDECREF(task);
    Py_DECREF(key);
}

/* check_task_factory notes whether the loop makes Tasks itself (task_name). */
static void check_task_factory(void) {
    PyObject *factory = PyObject_CallNoArgs(Q.get_task_factory);
    Q.direct_task = factory == Py_None;
    if (factory == NULL) PyErr_Clear();
    Py_XDECREF(factory);
}

void hb_loop_run_call(uint64_t id, const char *mod, size_t modlen, const char *fn, size_t fnlen,
                      const unsigned char *args, size_t argslen) {
    check_task_factory();
    hb_result r;
    hb_call_locked(mod, modlen, fn, fnlen, args, argslen, 0, 0, &r);
    if (r.status == HB_ASYNC) {
        start_task(id, r.coro);
    } else {
        hb_loop_complete(id, &r); /* a function that stopped being a coroutine */
    }
}

static void run_item(hb_item *it) {
    switch (it->kind) {
    case HB_LOOP_CORO:
        start_task(it->id, it->obj);
        break;
    case HB_LOOP_CALL:
        hb_loop_run_call(it->id, it->mod, it->modlen, it->fn, it->fnlen, it->args, it->argslen);
        if (!it->in_arena) free(it->mod);
        break;
    case HB_LOOP_CANCEL: {
        PyObject *key = PyLong_FromUnsignedLongLong(it->id);
        PyObject *task = key ? PyDict_GetItemWithError(Q.tasks, key) : NULL; /* borrowed */
        if (task != NULL) {
            PyObject *r = PyObject_CallMethod(task, "cancel", NULL);
            Py_XDECREF(r);
        }
        PyErr_Clear();
        Py_XDECREF(key);
        break;
    }
    case HB_LOOP_INTERRUPT:
        if (it->w == NULL) {
            hb_interrupt_thread(hb_main_tid(), it->exc_kind);
        } else if (it->w->job == it->id) {
            it->w->interrupted = 1;
            hb_interrupt_thread(it->w->tid, it->exc_kind);
        }
        break;
    case HB_LOOP_RESOLVE:
        resolve(it);
        break;
    case HB_LOOP_STOP: {
        hb_eager_stop(); /* later calls of this batch become tasks to cancel */
        hb_inline_stop(); /* and later calls come through the queue */
        PyObject *r = PyObject_CallMethod(Q.loop, "stop", NULL);
        if (r == NULL) PyErr_WriteUnraisable(Q.loop);
        Py_XDECREF(r);
        break;
    }
    }
}

/* Arena bytes of the calls drained but not yet released; loop thread only. */
static struct {
    int depth;
    size_t end, used;
} arena;

static PyObject *drain(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    uint64_t n;
    while (read(Q.efd, &n, sizeof n) < 0 && errno == EINTR) {
    }
    hb_spin_lock(&hb_lq.lock);
    hb_item *items = hb_lq.items;
    size_t len = hb_lq.len, cap = hb_lq.cap;
    hb_lq.items = hb_lq.spare;
    hb_lq.cap = hb_lq.spare_cap;
    hb_lq.len = 0;
    hb_lq.spare = NULL;
    hb_lq.spare_cap = 0;
    hb_spin_unlock(&hb_lq.lock);
    check_task_factory();
    /* Calls in the arena hold its bytes from arena_head on, in queue order,
     * so they are released in that order: by the outermost drain once it has
     * run its batch, up to the end of the last call taken. A drain nested in
     * a call it runs (an event loop run re-entrantly) takes later calls and
     * leaves their release to it. */
    arena.depth++;
    for (size_t i = 0; i < len; i++) {
        if (items[i].in_arena) {
            arena.end = items[i].arena_end;
            arena.used += items[i].arena_used;
        }
    }
    typeof(batch_cancels) outer = batch_cancels; /* a nested drain keeps its own */
    uint64_t few[16], *ids = few;
    size_t ncancel = 0;
    for (size_t i = 0; i < len; i++) ncancel += items[i].kind == HB_LOOP_CANCEL;
    if (ncancel > 16 && (ids = malloc(ncancel * sizeof *ids)) == NULL) ncancel = 0;
    batch_cancels = (typeof(batch_cancels)){.ids = ids, .n = ncancel, .unknown = ids == NULL};
    for (size_t i = 0, k = 0; i < len && k < ncancel; i++)
        if (items[i].kind == HB_LOOP_CANCEL) ids[k++] = items[i].id;
    if (ncancel > 1) qsort(ids, ncancel, sizeof *ids, cmp_id);
    for (size_t i = 0; i < len; i++) run_item(&items[i]);
    if (ids != few) free(ids);
    batch_cancels = outer;
    settle_foreign();
    size_t release = 0;
    if (--arena.depth == 0) {
        release = arena.used;
        arena.used = 0;
    }
    /* The drained array becomes the spare, so steady state allocates nothing. */
    hb_spin_lock(&hb_lq.lock);
    if (release > 0) {
        hb_lq.arena_head = arena.end;
        hb_lq.arena_used -= release;
    }
    if (hb_lq.spare == NULL) {
        hb_lq.spare = items;
        hb_lq.spare_cap = cap;
        items = NULL;
    }
    hb_spin_unlock(&hb_lq.lock);
    free(items);
    hb_done_collect();
    Py_RETURN_NONE;
}

static PyMethodDef drain_def = {"_hornbeam_drain", drain, METH_NOARGS, NULL};

static const char *NEW_LOOP =
    "import asyncio\n"
    "try:\n"
    "    import uvloop\n"
    "    _hb_loop = uvloop.new_event_loop()\n"
    "except ImportError:\n"
    "    _hb_loop = asyncio.new_event_loop()\n"
    "asyncio.set_event_loop(_hb_loop)\n"
    "def _hb_settle(fut, ok, v):\n"
    "    if not fut.done():\n"
    "        (fut.set_result if ok else fut.set_exception)(v)\n"
    "def _hb_settle_many(items):\n"
    "    for fut, ok, v in items:\n"
    "        _hb_settle(fut, ok, v)\n";

/* Cancels what is still running and lets it unwind, so every waiting Go caller is
 * answered and async generators are closed before the interpreter finalizes. */
static const char *SHUTDOWN =
    "async def _hb_shutdown(loop):\n"
    "    tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]\n"
    "    for t in tasks:\n"
    "        t.cancel()\n"
    "    await asyncio.wait(tasks, timeout=5) if tasks else None\n"
    "    await loop.shutdown_asyncgens()\n"
    "_hb_loop.run_until_complete(_hb_shutdown(_hb_loop))\n"
    "_hb_loop.close()\n";

char *hb_loop_run(PyThreadState *ts) {
    hb_inline_loop_begin(); /* before the GIL: Go callers take them in that order */
    PyEval_RestoreThread(ts);
    char *err = NULL;
    PyObject *g = PyDict_New(), *r = NULL, *drainfn = NULL;
    if (g == NULL || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0) goto fail;
    r = PyRun_String(NEW_LOOP, Py_file_input, g, g);
    if (r == NULL) goto fail;
    Py_CLEAR(r);
    Q.loop = PyDict_GetItemString(g, "_hb_loop"); /* borrowed from g, which outlives the loop */
    Q.tasks = PyDict_New();
    Q.settle = PyDict_GetItemString(g, "_hb_settle"); /* borrowed from g, like Q.loop */
    Q.settle_many = PyDict_GetItemString(g, "_hb_settle_many");
    Q.foreign = PyDict_New();
    Q.create_task = PyObject_GetAttrString(Q.loop, "create_task");
    Q.name_result = PyUnicode_InternFromString("result");
    Q.name_add_done_callback = PyUnicode_InternFromString("add_done_callback");
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    Q.ensure_future = asyncio ? PyObject_GetAttrString(asyncio, "ensure_future") : NULL;
    Q.task_type = asyncio ? PyObject_GetAttrString(asyncio, "Task") : NULL;
    Q.task_kwnames = Py_BuildValue("(ss)", "loop", "name");
    Q.get_task_factory = PyObject_GetAttrString(Q.loop, "get_task_factory");
    Q.name_qualname = PyUnicode_InternFromString("__qualname__");
    Py_XDECREF(asyncio);
    drainfn = PyCFunction_New(&drain_def, NULL);
    if (hb_job_ready() < 0 || hb_eager_open(Q.loop) < 0) goto fail;
    if (Q.tasks == NULL || Q.foreign == NULL || Q.create_task == NULL || Q.ensure_future == NULL ||
        Q.task_type == NULL || Q.task_kwnames == NULL || Q.get_task_factory == NULL ||
        Q.name_qualname == NULL ||
        Q.name_result == NULL || Q.name_add_done_callback == NULL || drainfn == NULL)
        goto fail;
    r = PyObject_CallMethod(Q.loop, "add_reader", "iO", Q.efd, drainfn);
    if (r == NULL) goto fail;
    Py_CLEAR(r);
    /* Only now may scripts run: one that ends at once would otherwise begin
       Python's shutdown while this thread still imports the loop (uvloop). */
    hbLoopReady();
    hb_inline_arm(Q.loop);
    r = PyObject_CallMethod(Q.loop, "run_forever", NULL);
    hb_inline_stop();
    if (r == NULL) goto fail;
    Py_CLEAR(r);
    r = PyObject_CallMethod(Q.loop, "remove_reader", "i", Q.efd);
    Py_CLEAR(r);
    PyErr_Clear();
    hb_eager_stop(); /* calls now need a running loop: they become tasks to cancel */
    r = drain(NULL, NULL); /* what arrived with or after STOP becomes tasks to cancel */
    Py_CLEAR(r);
    r = PyRun_String(SHUTDOWN, Py_file_input, g, g);
    if (r == NULL) goto fail;
    Py_CLEAR(r);
    goto done;
fail: {
    hb_error e;
    hb_error_capture(&e);
    size_t n = strlen(e.type) + strlen(e.message) + strlen(e.traceback) + 32;
    err = malloc(n);
    if (err) snprintf(err, n, "pybridge: event loop: %s: %s\n%s", e.type, e.message, e.traceback);
    hb_error_free(&e);
}
done:
    hb_eager_close();
    Py_CLEAR(Q.tasks);
    Py_CLEAR(Q.create_task);
    Py_CLEAR(Q.ensure_future);
    Py_CLEAR(Q.task_type);
    Py_CLEAR(Q.task_kwnames);
    Py_CLEAR(Q.get_task_factory);
    Py_CLEAR(Q.name_qualname);
    Q.direct_task = 0;
    Py_CLEAR(Q.name_result);
    Py_CLEAR(Q.name_add_done_callback);
    Q.loop = NULL;
    Q.settle = NULL;
    Q.settle_many = NULL;
    Py_CLEAR(Q.foreign);
    Py_XDECREF(drainfn);
    Py_XDECREF(g);
    hb_inline_loop_end();
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
    return err;
}

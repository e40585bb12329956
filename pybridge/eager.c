/* eager.c: the first step of a Go caller's coroutine, run at once.
 *
 * Most coroutines Go calls (an ASGI request whose response needs no I/O, an
 * rpc_call target that computes) finish in their first step. Made into an
 * asyncio Task each, they would pay for the Task (its registration in
 * asyncio's weak set of all tasks, a scheduled first step, a pass through the
 * loop, the table of tasks cancellable by id): side by side on one CPU, an
 * ASGI hello request cost 13% more CPU that way, a FastAPI route 5%.
 *
 * So the loop's drain runs the first step itself, inside a Task that already
 * exists: a host, whose coroutine is the small driver below. While the step
 * runs, the host is the current task (asyncio._enter_task), so current_task(),
 * asyncio.timeout, anyio's cancel scopes and task-keyed state see a real Task,
 * the same one for the whole call; each call runs in a context of its own, a
 * copy of the loop's, as a Task's would. A call that finished goes back to Go
 * and leaves the host idle for the next. A call that waits (it awaited a
 * future, or slept) keeps the host: the host's Task takes over from there and
 * waits for what the call awaits, and only then does the drain make a new
 * host for the calls that follow. Idle hosts wait on a future of their own,
 * at most HOST_IDLE_MAX of them. A host is reused only when nothing of its
 * earlier calls is left on its Task (reusable); one that ends a call with an
 * exception that ends Tasks (CancelledError, KeyboardInterrupt, SystemExit)
 * ends with it, as the call's own Task would have. A call cancelled in the
 * batch that brings it is not run here (loop.c), so that its code never runs.
 *
 * Python 3.12's eager tasks do the same with a new Task per call. */
#include "bridge.h"

/* Idle hosts kept: with Python 3.11's Task only, as reusable() counts the
 * references to an idle host's Task as 3.11 makes them. */
enum { HOST_IDLE_CAP = 256 };
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define HOST_IDLE_MAX HOST_IDLE_CAP
#else
#define HOST_IDLE_MAX 0
#endif

typedef struct {
    PyObject_HEAD
    PyObject *task;    /* the Task that steps this host; NULL once the host ended */
    PyObject *job;     /* the job it runs (job.c), NULL while idle */
    PyObject *ctx;     /* the job's context */
    PyObject *waiting; /* what the job awaited in its first step (None for a bare
                          yield), for the Task to wait on; NULL when nothing is */
    PyObject *raise;   /* what the job raised in its first step, for the Task to end with */
    PyObject *park;    /* the future an idle host's Task waits on */
    char idle;         /* among E.idle */
    char retired;      /* to end at its next step, not to be reused */
    char running;      /* its job is being stepped */
} hb_host;

static PyTypeObject host_type;

/* The attributes and methods used here, by name, interned in E.name. */
enum {
    N_CANCELLING, N_SET_NAME, N_SET_RESULT, N_CANCEL, N_DONE, N_CREATE_FUTURE,
    N_BLOCKING, N_LOG_PENDING, N_MUST_CANCEL, N_CALLBACKS, N_COUNT
};
static const char *const NAMES[N_COUNT] = {
    [N_CANCELLING] = "cancelling", [N_SET_NAME] = "set_name", [N_SET_RESULT] = "set_result",
    [N_CANCEL] = "cancel", [N_DONE] = "done", [N_CREATE_FUTURE] = "create_future",
    [N_BLOCKING] = "_asyncio_future_blocking", [N_LOG_PENDING] = "_log_destroy_pending",
    [N_MUST_CANCEL] = "_must_cancel", [N_CALLBACKS] = "_callbacks",
};

/* Loop thread only, GIL held. */
static struct {
    PyObject *loop, *enter, *leave;
    PyObject *name[N_COUNT];
    hb_host *idle[HOST_IDLE_CAP];
    int nidle;
    int stopped; /* the loop has stopped: hosts end, no call starts here */
} E;

/* is_true answers attribute name of o, or method name's result when call;
 * -1 when that fails. */
static int is_true(PyObject *o, PyObject *name, int call) {
    PyObject *v = call ? PyObject_CallMethodNoArgs(o, name) : PyObject_GetAttr(o, name);
    int t = v == NULL ? -1 : PyObject_IsTrue(v);
    Py_XDECREF(v);
    if (t < 0) PyErr_Clear();
    return t;
}

/* cancelling is task.cancelling(): the cancels asked of it; -1 when unknown. */
static long cancelling(PyObject *task) {
    PyObject *n = PyObject_CallMethodNoArgs(task, E.name[N_CANCELLING]);
    long c = n ? PyLong_AsLong(n) : -1;
    Py_XDECREF(n);
    PyErr_Clear();
    return c;
}

static void push_idle(hb_host *h) {
    if (h->idle || h->task == NULL || E.nidle >= HOST_IDLE_MAX) return;
    h->idle = 1;
    E.idle[E.nidle++] = (hb_host *)Py_NewRef(h);
}

/* drop_job lets go of h's job, done or ended. */
static void drop_job(hb_host *h) {
    Py_CLEAR(h->job);
    Py_CLEAR(h->ctx);
}

/* end leaves h for good: its Task ends with this step. */
static void end(hb_host *h) {
    Py_CLEAR(h->task);
    Py_CLEAR(h->park);
    Py_CLEAR(h->ctx);
}

/* set_log_pending sets whether asyncio logs h's Task if it is destroyed
 * pending: not while idle, when it waits for ever; as any Task's while it
 * runs a call. */
static void set_log_pending(hb_host *h, int on) {
    if (h->task != NULL && PyObject_SetAttr(h->task, E.name[N_LOG_PENDING], on ? Py_True : Py_False) < 0)
        PyErr_Clear();
}

/* park makes h idle: its Task waits on a future of its own, set when a call
 * that waits is given to h. A host over the bound, or whose Task was
 * cancelled, ends instead. */
static PySendResult park(hb_host *h, PyObject **result) {
    if (E.stopped || h->retired || h->task == NULL || cancelling(h->task) != 0 ||
        (!h->idle && E.nidle >= HOST_IDLE_MAX)) {
        end(h);
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    PyObject *fut = PyObject_CallMethodNoArgs(E.loop, E.name[N_CREATE_FUTURE]);
    if (fut == NULL || PyObject_SetAttr(fut, E.name[N_BLOCKING], Py_True) < 0) {
        Py_XDECREF(fut);
        end(h);
        *result = NULL;
        return PYGEN_ERROR;
    }
    Py_XSETREF(h->park, Py_NewRef(fut));
    set_log_pending(h, 0);
    push_idle(h);
    *result = fut;
    return PYGEN_NEXT;
}

/* wake has h's Task take over what its job awaited, or end with what it
 * raised, or end (retired). */
static void wake(hb_host *h) {
    if (h->park == NULL) return; /* never stepped: its first step is due */
    PyObject *park = h->park;
    h->park = NULL;
    /* Refused only if the future is done: then the Task was cancelled (the
       call cancelled its own task), and it wakes to that. */
    PyObject *r = PyObject_CallMethodOneArg(park, E.name[N_SET_RESULT], Py_None);
    if (r == NULL) PyErr_Clear();
    Py_XDECREF(r);
    Py_DECREF(park);
}

/* after ends a step of h's job with outcome st: the job's next await goes to
 * the Task; its end leaves h idle, or ends h with the job's BaseException. */
static PySendResult after(hb_host *h, PySendResult st, PyObject **result) {
    if (st == PYGEN_NEXT) return st;
    drop_job(h);
    if (st == PYGEN_ERROR) {
        end(h);
        return st;
    }
    Py_DECREF(*result); /* a job returns None: its value went to Go */
    return park(h, result);
}

/* executing refuses to touch h while its job is being stepped, as a
 * generator refuses (a call could reach its own host through get_coro()).
 * So nothing but h's own steps ends h while a step runs. */
static int executing(hb_host *h) {
    if (!h->running) return 0;
    PyErr_SetString(PyExc_ValueError, "hornbeam host already executing");
    return 1;
}

/* step steps h's job in its context: sends arg, or throws throw()'s args
 * when throw is set. */
static PySendResult step(hb_host *h, PyObject *arg, PyObject *throw, PyObject **result) {
    *result = NULL;
    if (PyContext_Enter(h->ctx) < 0) return PYGEN_ERROR; /* its job answers Go when dropped */
    h->running = 1;
    PySendResult st = throw ? hb_job_throw(h->job, throw, result) : PyIter_Send(h->job, arg, result);
    h->running = 0;
    PyContext_Exit(h->ctx);
    return st;
}

static PySendResult host_am_send(PyObject *self, PyObject *arg, PyObject **result) {
    hb_host *h = (hb_host *)self;
    *result = NULL;
    if (executing(h)) return PYGEN_ERROR;
    if (h->task == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an ended hornbeam host");
        return PYGEN_ERROR;
    }
    Py_CLEAR(h->park); /* woken */
    if (h->raise != NULL) {
        end(h);
        hb_restore_exception(h->raise);
        h->raise = NULL;
        return PYGEN_ERROR;
    }
    if (h->waiting != NULL) { /* the Task now waits for what the first step awaited */
        *result = h->waiting;
        h->waiting = NULL;
        return PYGEN_NEXT;
    }
    if (h->job == NULL) return park(h, result);
    PySendResult st = step(h, arg, NULL, result);
    return after(h, st, result);
}

static PyObject *host_send(PyObject *self, PyObject *arg) {
    PyObject *result;
    PySendResult st = host_am_send(self, arg, &result);
    return hb_send_outcome(st, result);
}

static PyObject *host_iternext(PyObject *self) {
    PyObject *result;
    PySendResult st = host_am_send(self, Py_None, &result);
    return hb_next_outcome(st, result);
}

/* throw: the Task was cancelled, or what the job awaited failed. An idle
 * host ends with the exception; a busy one throws it into its job, as a Task
 * throws into its coroutine. */
static PyObject *host_throw(PyObject *self, PyObject *args) {
    hb_host *h = (hb_host *)self;
    PyObject *typ, *val = NULL, *tb = NULL;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb)) return NULL;
    if (executing(h)) return NULL;
    Py_CLEAR(h->park); /* woken */
    if (h->job == NULL) {
        PyObject *raise = h->raise; /* what the call ended with comes first */
        h->raise = NULL;
        end(h);
        if (raise != NULL)
            hb_restore_exception(raise);
        else
            hb_raise_thrown(typ, val);
        return NULL;
    }
    PyObject *waiting = h->waiting;
    if (waiting != NULL) {
        /* Cancelled before it took over what the call awaited: as a Task
           whose cancel comes while its coroutine hands it a future, it
           cancels that and waits for it, and the call then learns it from
           that. Its blocking flag is still set. */
        h->waiting = NULL;
        if (waiting != Py_None && is_true(waiting, E.name[N_CANCEL], 1) == 1) return waiting;
        Py_DECREF(waiting);
    }
    PyObject *result;
    PySendResult st = step(h, NULL, args, &result);
    st = after(h, st, &result);
    return hb_send_outcome(st, result);
}

static PyObject *host_await(PyObject *self) { return Py_NewRef(self); }

static int host_traverse(PyObject *self, visitproc visit, void *arg) {
    hb_host *h = (hb_host *)self;
    Py_VISIT(h->task);
    Py_VISIT(h->job);
    Py_VISIT(h->ctx);
    Py_VISIT(h->waiting);
    Py_VISIT(h->raise);
    Py_VISIT(h->park);
    return 0;
}

static int host_clear(PyObject *self) {
    hb_host *h = (hb_host *)self;
    Py_CLEAR(h->task);
    Py_CLEAR(h->job);
    Py_CLEAR(h->ctx);
    Py_CLEAR(h->waiting);
    Py_CLEAR(h->raise);
    Py_CLEAR(h->park);
    return 0;
}

static void host_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    host_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *host_close(PyObject *self, PyObject *unused) {
    (void)unused;
    hb_host *h = (hb_host *)self;
    if (executing(h)) return NULL;
    PyObject *job = h->job;
    h->job = NULL;
    host_clear(self); /* it ends */
    if (job == NULL) Py_RETURN_NONE;
    PyObject *r = PyObject_CallMethod(job, "close", NULL); /* the job answers Go */
    Py_DECREF(job);
    return r;
}

static PyAsyncMethods host_as_async = {
    .am_await = host_await,
    .am_send = host_am_send,
};

static PyMethodDef host_methods[] = {
    {"send", host_send, METH_O, NULL},
    {"throw", host_throw, METH_VARARGS, NULL},
    {"close", host_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject host_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hornbeam.host",
    .tp_basicsize = sizeof(hb_host),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Runs the node's calls from Go in an asyncio Task, one after another.",
    .tp_dealloc = host_dealloc,
    .tp_traverse = host_traverse,
    .tp_clear = host_clear,
    .tp_as_async = &host_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = host_iternext,
    .tp_methods = host_methods,
};

/* weakrefs counts the weak references to o. */
static Py_ssize_t weakrefs(PyObject *o) {
    Py_ssize_t off = Py_TYPE(o)->tp_weaklistoffset, n = 0;
    if (off <= 0) return 0;
    for (PyWeakReference *r = *(PyWeakReference **)((char *)o + off); r != NULL; r = r->wr_next) n++;
    return n;
}

/* reusable: nothing of an earlier call is left on h's Task, so that no
 * earlier call's code reaches the next call through it. Nothing else holds
 * it: an idle host's Task is held by the host and by one callback (its next
 * step's, or the one its future wakes), and weakly by asyncio's set of all
 * tasks; the host is held by take_host and by its Task. A call that kept
 * current_task() (strongly or weakly) or its get_coro() leaves more. No
 * cancel is pending on it (a cancel() that uncancel() took back still
 * cancels the future it waits on, or its next step), and it has no done
 * callbacks and no attributes of a call's making. */
static int reusable(hb_host *h) {
    PyObject *t = h->task;
    if (t == NULL || h->retired || Py_REFCNT(t) != 2 || weakrefs(t) != 1 || Py_REFCNT(h) != 2) return 0;
    PyObject **dict = _PyObject_GetDictPtr(t);
    if (dict != NULL && *dict != NULL && PyDict_GET_SIZE(*dict) > 0) return 0;
    if (h->park != NULL ? is_true(h->park, E.name[N_DONE], 1) != 0 : is_true(t, E.name[N_MUST_CANCEL], 0) != 0)
        return 0;
    PyObject *cbs = PyObject_GetAttr(t, E.name[N_CALLBACKS]);
    int none = cbs == Py_None;
    Py_XDECREF(cbs);
    PyErr_Clear();
    return none && cancelling(t) == 0;
}

/* take_host returns an idle host that is reusable, or a new one. */
static hb_host *take_host(PyObject *name) {
    while (E.nidle > 0) {
        hb_host *h = E.idle[--E.nidle];
        h->idle = 0;
        if (reusable(h)) return h;
        h->retired = 1; /* its Task, if it has one, ends at its next step */
        wake(h);
        Py_DECREF(h);
    }
    hb_host *h = PyObject_GC_New(hb_host, &host_type);
    if (h == NULL) return NULL;
    h->task = h->job = h->ctx = h->waiting = h->raise = h->park = NULL;
    h->idle = h->retired = h->running = 0;
    PyObject_GC_Track(h);
    if ((h->task = hb_loop_new_task((PyObject *)h, name)) == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    set_log_pending(h, 0);
    return h;
}

static int call_task_fn(PyObject *fn, PyObject *task) {
    PyObject *args[] = {E.loop, task};
    PyObject *r = PyObject_Vectorcall(fn, args, 2, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

int hb_eager_start(PyObject *job, PyObject *name, PyObject **task) {
    *task = NULL;
    if (E.loop == NULL || E.stopped) return 0;
    hb_host *h = take_host(name);
    if (h == NULL) {
        PyErr_Clear();
        return 0;
    }
    /* Named after this call's function: the last call may have been another
       function's, or renamed its Task. Setting costs what reading would. */
    PyObject *r = PyObject_CallMethodOneArg(h->task, E.name[N_SET_NAME], name);
    Py_XDECREF(r);
    PyErr_Clear();
    /* Refused inside another task's step (a drain nested in a call it ran):
       the caller makes the call a Task of its own. */
    if (call_task_fn(E.enter, h->task) < 0) {
        PyErr_Clear();
        push_idle(h);
        Py_DECREF(h);
        return 0;
    }
    h->ctx = PyContext_CopyCurrent();
    PyObject *result = NULL, *exc = NULL;
    PySendResult st = PYGEN_ERROR;
    if (h->ctx != NULL) {
        h->job = Py_NewRef(job);
        st = step(h, Py_None, NULL, &result);
    }
    if (st == PYGEN_ERROR) exc = hb_take_exception();
    /* h->task is still there: while the step ran, h refused to end. */
    if (call_task_fn(E.leave, h->task) < 0) PyErr_WriteUnraisable(h->task);
    switch (st) {
    case PYGEN_RETURN: /* done: Go has the outcome */
        Py_DECREF(result);
        drop_job(h);
        push_idle(h);
        break;
    case PYGEN_ERROR:
        if (h->job == NULL) { /* no context for it: the job answers Go with that error */
            hb_restore_exception(exc);
            exc = NULL;
            hb_job_abort(job);
            push_idle(h);
            break;
        }
        /* A BaseException, reported: the Task ends with it. */
        drop_job(h);
        h->raise = exc != NULL ? exc : PyObject_CallNoArgs(PyExc_SystemError);
        exc = NULL;
        wake(h);
        break;
    case PYGEN_NEXT: /* it waits: h's Task carries on with it */
        h->waiting = result;
        set_log_pending(h, 1);
        *task = Py_NewRef(h->task);
        wake(h);
        break;
    }
    Py_XDECREF(exc);
    Py_DECREF(h);
    return 1;
}

int hb_eager_open(PyObject *loop) {
    for (int i = 0; i < N_COUNT; i++)
        if ((E.name[i] = PyUnicode_InternFromString(NAMES[i])) == NULL) goto fail;
    PyObject *c = PyImport_ImportModule("_asyncio");
    if (c == NULL) goto fail;
    E.enter = PyObject_GetAttrString(c, "_enter_task");
    E.leave = E.enter ? PyObject_GetAttrString(c, "_leave_task") : NULL;
    Py_DECREF(c);
    if (E.leave == NULL || PyType_Ready(&host_type) < 0) goto fail;
    E.loop = loop;
    return 0;
fail:
    hb_eager_close();
    return -1;
}

void hb_eager_stop(void) { E.stopped = 1; }

void hb_eager_close(void) {
    E.stopped = 0;
    while (E.nidle > 0) Py_DECREF(E.idle[--E.nidle]);
    E.loop = NULL;
    Py_CLEAR(E.enter);
    Py_CLEAR(E.leave);
    for (int i = 0; i < N_COUNT; i++) Py_CLEAR(E.name[i]);
}

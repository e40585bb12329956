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

/* Idle hosts kept. Python 3.11's Task only: the check that no one else holds
 * an idle host's Task (take_host) counts its references as 3.11 makes them. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
enum { HOST_IDLE_MAX = 256 };
#else
enum { HOST_IDLE_MAX = 1 };
#endif
static const int host_idle_max = PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 ? HOST_IDLE_MAX : 0;

typedef struct hb_host_s {
    PyObject_HEAD
    PyObject *task;    /* the Task that steps this host; NULL once the host ended */
    PyObject *job;     /* the job it runs (job.c), NULL while idle */
    PyObject *ctx;     /* the job's context */
    PyObject *waiting; /* what the job awaited in its first step, for the Task to wait on */
    PyObject *raise;   /* what the job raised in its first step, for the Task to end with */
    PyObject *park;    /* the future an idle host's Task waits on */
    char idle;         /* among E.idle */
    char has_waiting;  /* waiting is set (the job may have awaited None: a bare yield) */
    char retired;      /* to end at its next step, not to be reused */
    char running;      /* its job is being stepped */
} hb_host;

static PyTypeObject host_type;
static void wake(struct hb_host_s *h);
static int is_true(PyObject *o, PyObject *name, int call);

/* Loop thread only, GIL held. */
static struct {
    PyObject *loop, *task_type, *task_kwnames, *enter, *leave;
    PyObject *name_cancelling, *name_set_name, *name_set_result, *name_cancel, *name_blocking;
    PyObject *name_throw, *name_qualname, *name_log_pending, *name_done, *name_must_cancel,
        *name_callbacks, *name_get_name;
    hb_host *idle[HOST_IDLE_MAX];
    int nidle;
    int stopped; /* the loop has stopped: hosts end, no call starts here */
} E;

static void push_idle(hb_host *h) {
    if (h->idle || h->task == NULL || E.nidle >= host_idle_max) return;
    h->idle = 1;
    E.idle[E.nidle++] = (hb_host *)Py_NewRef(h);
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
    if (h->task != NULL && PyObject_SetAttr(h->task, E.name_log_pending, on ? Py_True : Py_False) < 0)
        PyErr_Clear();
}

/* park makes h idle: its Task waits on a future of its own, set when a call
 * that waits is given to h. A host over the bound, or whose Task was
 * cancelled, ends instead. */
static PySendResult park(hb_host *h, PyObject **result) {
    PyObject *n = h->task ? PyObject_CallMethodNoArgs(h->task, E.name_cancelling) : NULL;
    long cancelling = n ? PyLong_AsLong(n) : -1;
    Py_XDECREF(n);
    PyErr_Clear();
    if (E.stopped || h->retired || cancelling != 0 || (!h->idle && E.nidle >= host_idle_max)) {
        end(h);
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    PyObject *fut = PyObject_CallMethod(E.loop, "create_future", NULL);
    if (fut == NULL || PyObject_SetAttr(fut, E.name_blocking, Py_True) < 0) {
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

/* after ends a step of h's job with outcome st: the job's next await goes to
 * the Task; its end leaves h idle, or ends h with the job's BaseException. */
static PySendResult after(hb_host *h, PySendResult st, PyObject **result) {
    if (st == PYGEN_NEXT) return st;
    Py_CLEAR(h->job);
    Py_CLEAR(h->ctx);
    if (st == PYGEN_ERROR) {
        end(h);
        return st;
    }
    Py_DECREF(*result); /* a job returns None: its value went to Go */
    return park(h, result);
}

/* executing refuses to step h while its job is being stepped, as a
 * generator refuses (a call could reach its own host through get_coro()). */
static int executing(hb_host *h) {
    if (!h->running) return 0;
    PyErr_SetString(PyExc_ValueError, "hornbeam host already executing");
    return 1;
}

/* step steps h's job in its context, sending arg, or throwing typ, val, tb
 * when typ is set; the job and its context are held for the step. */
static PySendResult step(hb_host *h, PyObject *arg, PyObject *typ, PyObject *val, PyObject *tb,
                         PyObject **result) {
    PyObject *job = Py_NewRef(h->job), *ctx = Py_NewRef(h->ctx);
    PySendResult st = PYGEN_ERROR;
    *result = NULL;
    if (PyContext_Enter(ctx) == 0) {
        h->running = 1;
        if (typ == NULL) {
            st = PyIter_Send(job, arg, result);
        } else {
            PyObject *v = PyObject_CallMethodObjArgs(job, E.name_throw, typ, val, tb, NULL);
            st = PYGEN_NEXT;
            if (v == NULL) {
                if (PyErr_ExceptionMatches(PyExc_StopIteration)) { /* the job ended */
                    PyErr_Clear();
                    v = Py_NewRef(Py_None);
                    st = PYGEN_RETURN;
                } else {
                    st = PYGEN_ERROR;
                }
            }
            *result = v;
        }
        h->running = 0;
        PyContext_Exit(ctx);
    }
    Py_DECREF(job);
    Py_DECREF(ctx);
    return st;
}

/* woken starts a step of h's Task. */
static void woken(hb_host *h) { Py_CLEAR(h->park); }

static PySendResult host_am_send(PyObject *self, PyObject *arg, PyObject **result) {
    hb_host *h = (hb_host *)self;
    if (executing(h)) {
        *result = NULL;
        return PYGEN_ERROR;
    }
    if (h->task == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an ended hornbeam host");
        *result = NULL;
        return PYGEN_ERROR;
    }
    woken(h);
    if (h->raise != NULL) {
        PyObject *exc = h->raise;
        h->raise = NULL;
        end(h);
        hb_restore_exception(exc);
        *result = NULL;
        return PYGEN_ERROR;
    }
    if (h->has_waiting) { /* the Task now waits for what the first step awaited */
        h->has_waiting = 0;
        *result = h->waiting;
        h->waiting = NULL;
        return PYGEN_NEXT;
    }
    if (h->job == NULL) return park(h, result);
    PySendResult st = step(h, arg, NULL, NULL, NULL, result);
    return after(h, st, result);
}

/* The generator protocol's shape of an am_send outcome. */
static PyObject *to_python(PySendResult st, PyObject *result) {
    if (st == PYGEN_NEXT) return result;
    if (st == PYGEN_RETURN) {
        Py_DECREF(result);
        PyErr_SetNone(PyExc_StopIteration);
    }
    return NULL;
}

static PyObject *host_send(PyObject *self, PyObject *arg) {
    PyObject *result;
    PySendResult st = host_am_send(self, arg, &result);
    return to_python(st, result);
}

static PyObject *host_iternext(PyObject *self) {
    PyObject *result;
    PySendResult st = host_am_send(self, Py_None, &result);
    if (st == PYGEN_RETURN) {
        Py_DECREF(result);
        return NULL;
    }
    return st == PYGEN_NEXT ? result : NULL;
}

/* throw: the Task was cancelled, or what the job awaited failed. An idle
 * host ends with the exception; a busy one throws it into its job, as a Task
 * throws into its coroutine, cancelling first what the job awaited if the
 * Task never got to wait on it. */
static PyObject *host_throw(PyObject *self, PyObject *args) {
    hb_host *h = (hb_host *)self;
    PyObject *typ, *val = NULL, *tb = NULL;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb)) return NULL;
    if (executing(h)) return NULL;
    if (h->task != NULL) woken(h);
    if (h->job == NULL) {
        PyObject *raise = h->raise; /* what the call ended with comes first */
        h->raise = NULL;
        end(h);
        if (raise != NULL)
            hb_restore_exception(raise);
        else if (PyExceptionInstance_Check(typ))
            PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
        else if (PyExceptionClass_Check(typ))
            PyErr_SetObject(typ, val);
        else
            PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
        return NULL;
    }
    if (h->has_waiting) {
        /* Cancelled before it took over what the call awaited: as a Task
           whose cancel comes while its coroutine hands it a future, it
           cancels that and waits for it, and the call then learns it from
           that. */
        PyObject *waiting = h->waiting;
        h->has_waiting = 0;
        h->waiting = NULL;
        int cancelled = waiting != Py_None && is_true(waiting, E.name_cancel, 1) == 1;
        if (cancelled) return waiting; /* its blocking flag is still set */
        Py_DECREF(waiting);
    }
    PyObject *result;
    PySendResult st = step(h, NULL, typ, val, tb, &result);
    st = after(h, st, &result);
    return st == PYGEN_RETURN ? to_python(st, result) : (st == PYGEN_NEXT ? result : NULL);
}

static PyObject *host_close(PyObject *self, PyObject *unused) {
    (void)unused;
    hb_host *h = (hb_host *)self;
    if (executing(h)) return NULL;
    PyObject *job = h->job;
    h->job = NULL;
    Py_CLEAR(h->waiting);
    h->has_waiting = 0;
    Py_CLEAR(h->raise);
    end(h);
    if (job == NULL) Py_RETURN_NONE;
    PyObject *r = PyObject_CallMethod(job, "close", NULL); /* the job answers Go */
    Py_DECREF(job);
    return r;
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

/* is_true answers attribute name of o, or method name's result when call. */
static int is_true(PyObject *o, PyObject *name, int call) {
    PyObject *v = call ? PyObject_CallMethodNoArgs(o, name) : PyObject_GetAttr(o, name);
    int t = v == NULL ? -1 : PyObject_IsTrue(v);
    Py_XDECREF(v);
    if (t < 0) PyErr_Clear();
    return t;
}

/* reusable: nothing of an earlier call is left on h's Task, so that no
 * earlier call's code reaches the next call through it. Nothing else holds
 * it: an idle host's Task is held by the host and by one callback (its next
 * step's, or the one its future wakes), and weakly by asyncio's set of all
 * tasks; a call that kept current_task(), strongly or weakly, leaves more.
 * No cancel is pending on it (a cancel() that uncancel() took back still
 * cancels the future it waits on, or its next step), and it has no done
 * callbacks and no attributes of a call's making. */
static int reusable(hb_host *h) {
    PyObject *t = h->task;
    /* The host is held by take_host and its Task: a call that kept it (its
       Task's get_coro()) could step or close it under a later call. */
    if (t == NULL || h->retired || Py_REFCNT(t) != 2 || weakrefs(t) != 1 || Py_REFCNT(h) != 2) return 0;
    PyObject **dict = _PyObject_GetDictPtr(t);
    if (dict != NULL && *dict != NULL && PyDict_GET_SIZE(*dict) > 0) return 0;
    if (h->park != NULL ? is_true(h->park, E.name_done, 1) != 0 : is_true(t, E.name_must_cancel, 0) != 0)
        return 0;
    PyObject *cbs = PyObject_GetAttr(t, E.name_callbacks);
    int none = cbs == Py_None;
    Py_XDECREF(cbs);
    PyErr_Clear();
    if (!none) return 0;
    PyObject *n = PyObject_CallMethodNoArgs(t, E.name_cancelling);
    long cancelling = n ? PyLong_AsLong(n) : -1;
    Py_XDECREF(n);
    PyErr_Clear();
    return cancelling == 0;
}

/* take_host returns an idle host that is reusable, or a new one. */
static hb_host *take_host(PyObject *name) {
    while (E.nidle > 0) {
        hb_host *h = E.idle[--E.nidle];
        h->idle = 0;
        if (h->task == NULL) {
            Py_DECREF(h);
            continue;
        }
        if (reusable(h)) return h;
        h->retired = 1; /* its Task ends at its next step */
        wake(h);
        Py_DECREF(h);
    }
    hb_host *h = PyObject_GC_New(hb_host, &host_type);
    if (h == NULL) return NULL;
    h->task = h->job = h->ctx = h->waiting = h->raise = h->park = NULL;
    h->idle = h->has_waiting = h->retired = h->running = 0;
    PyObject_GC_Track(h);
    PyObject *args[] = {(PyObject *)h, E.loop, name};
    h->task = PyObject_Vectorcall(E.task_type, args, 1, E.task_kwnames);
    if (h->task == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    set_log_pending(h, 0);
    return h;
}

/* wake has h's Task take over what its job awaited, or end with what it raised. */
static void wake(struct hb_host_s *h) {
    if (h->park == NULL) return; /* never stepped: its first step is due */
    PyObject *park = h->park;
    h->park = NULL;
    /* Refused only if the future is done: then the Task was cancelled (the
       call cancelled its own task), and it wakes to that. */
    PyObject *r = PyObject_CallMethodOneArg(park, E.name_set_result, Py_None);
    if (r == NULL) PyErr_Clear();
    Py_XDECREF(r);
    Py_DECREF(park);
}

static PyObject *call_task_fn(PyObject *fn, PyObject *task) {
    PyObject *args[] = {E.loop, task};
    return PyObject_Vectorcall(fn, args, 2, NULL);
}

int hb_eager_start(PyObject *job, PyObject *coro, PyObject **task) {
    *task = NULL;
    if (E.loop == NULL || E.stopped) return 0;
    PyObject *name = PyObject_GetAttr(coro, E.name_qualname);
    if (name == NULL || !PyUnicode_CheckExact(name)) {
        PyErr_Clear();
        Py_XDECREF(name);
        return 0;
    }
    hb_host *h = take_host(name);
    if (h == NULL) {
        PyErr_Clear();
        Py_DECREF(name);
        return 0;
    }
    PyObject *cur = PyObject_CallMethodNoArgs(h->task, E.name_get_name);
    if (cur != name) { /* another function's call, or a call renamed it */
        PyObject *r = PyObject_CallMethodOneArg(h->task, E.name_set_name, name);
        if (r == NULL) PyErr_Clear();
        Py_XDECREF(r);
    }
    Py_XDECREF(cur);
    PyErr_Clear();
    Py_DECREF(name);
    /* Held here: the call could end the host (close its Task's coroutine). */
    PyObject *t = Py_NewRef(h->task);
    /* Refused inside another task's step (a drain nested in a call it ran):
       the caller makes the call a Task of its own. */
    PyObject *r = call_task_fn(E.enter, t);
    if (r == NULL) {
        PyErr_Clear();
        Py_DECREF(t);
        push_idle(h);
        Py_DECREF(h);
        return 0;
    }
    Py_DECREF(r);
    PyObject *ctx = PyContext_CopyCurrent();
    PyObject *result = NULL;
    PySendResult st = PYGEN_ERROR;
    int ran = 0;
    if (ctx != NULL && PyContext_Enter(ctx) == 0) {
        h->running = 1;
        st = PyIter_Send(job, Py_None, &result);
        h->running = 0;
        PyContext_Exit(ctx);
        ran = 1;
    }
    PyObject *exc = st == PYGEN_ERROR ? hb_take_exception() : NULL;
    r = call_task_fn(E.leave, t);
    if (r == NULL) PyErr_WriteUnraisable(t);
    Py_XDECREF(r);
    Py_DECREF(t);
    if (ran && st == PYGEN_NEXT && h->task == NULL) { /* it ended its own host */
        Py_DECREF(result);
        PyErr_SetString(PyExc_RuntimeError, "the call's task was closed while the call ran");
        exc = hb_take_exception();
        ran = 0;
    }
    if (!ran) { /* it did not run, or its host ended under it: Go gets the error */
        hb_restore_exception(exc);
        hb_job_abort(job);
        Py_XDECREF(ctx);
        push_idle(h);
        Py_DECREF(h);
        return 1;
    }
    switch (st) {
    case PYGEN_RETURN: /* done: Go has the outcome */
        Py_DECREF(result);
        Py_XDECREF(ctx);
        push_idle(h);
        break;
    case PYGEN_ERROR: /* a BaseException, reported: the Task ends with it */
        Py_DECREF(ctx);
        if (exc == NULL) exc = PyObject_CallNoArgs(PyExc_SystemError);
        h->raise = exc;
        wake(h);
        break;
    case PYGEN_NEXT: /* it waits: h's Task carries on with it */
        h->job = Py_NewRef(job);
        h->ctx = ctx;
        h->waiting = result;
        h->has_waiting = 1;
        set_log_pending(h, 1);
        *task = Py_NewRef(h->task);
        wake(h);
        break;
    }
    Py_DECREF(h);
    return 1;
}

int hb_eager_open(PyObject *loop) {
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    PyObject *c = asyncio ? PyImport_ImportModule("_asyncio") : NULL;
    if (c == NULL) {
        Py_XDECREF(asyncio);
        return -1;
    }
    E.loop = loop;
    E.task_type = PyObject_GetAttrString(asyncio, "Task");
    E.enter = E.task_type ? PyObject_GetAttrString(c, "_enter_task") : NULL;
    E.leave = E.enter ? PyObject_GetAttrString(c, "_leave_task") : NULL;
    Py_XDECREF(asyncio);
    Py_XDECREF(c);
    E.task_kwnames = Py_BuildValue("(ss)", "loop", "name");
    E.name_cancelling = PyUnicode_InternFromString("cancelling");
    E.name_set_name = PyUnicode_InternFromString("set_name");
    E.name_set_result = PyUnicode_InternFromString("set_result");
    E.name_cancel = PyUnicode_InternFromString("cancel");
    E.name_blocking = PyUnicode_InternFromString("_asyncio_future_blocking");
    E.name_throw = PyUnicode_InternFromString("throw");
    E.name_qualname = PyUnicode_InternFromString("__qualname__");
    E.name_log_pending = PyUnicode_InternFromString("_log_destroy_pending");
    E.name_done = PyUnicode_InternFromString("done");
    E.name_must_cancel = PyUnicode_InternFromString("_must_cancel");
    E.name_callbacks = PyUnicode_InternFromString("_callbacks");
    E.name_get_name = PyUnicode_InternFromString("get_name");
    if (E.name_done == NULL || E.name_must_cancel == NULL || E.name_callbacks == NULL ||
        E.name_get_name == NULL ||
        PyType_Ready(&host_type) < 0 || E.task_type == NULL || E.enter == NULL || E.leave == NULL ||
        E.task_kwnames == NULL || E.name_cancelling == NULL || E.name_set_name == NULL ||
        E.name_set_result == NULL || E.name_cancel == NULL || E.name_blocking == NULL ||
        E.name_throw == NULL || E.name_qualname == NULL || E.name_log_pending == NULL) {
        hb_eager_close();
        return -1;
    }
    return 0;
}

void hb_eager_stop(void) { E.stopped = 1; }

void hb_eager_close(void) {
    E.stopped = 0;
    while (E.nidle > 0) Py_DECREF(E.idle[--E.nidle]);
    E.loop = NULL;
    Py_CLEAR(E.task_type);
    Py_CLEAR(E.task_kwnames);
    Py_CLEAR(E.enter);
    Py_CLEAR(E.leave);
    Py_CLEAR(E.name_cancelling);
    Py_CLEAR(E.name_set_name);
    Py_CLEAR(E.name_set_result);
    Py_CLEAR(E.name_cancel);
    Py_CLEAR(E.name_blocking);
    Py_CLEAR(E.name_throw);
    Py_CLEAR(E.name_qualname);
    Py_CLEAR(E.name_log_pending);
    Py_CLEAR(E.name_done);
    Py_CLEAR(E.name_must_cancel);
    Py_CLEAR(E.name_callbacks);
    Py_CLEAR(E.name_get_name);
}

/* job.c: the awaitable through which the loop runs a Go caller's coroutine.
 *
 * A job wraps the coroutine and is what the asyncio Task steps (through
 * am_send, as it steps a coroutine). When the coroutine returns or raises, the
 * job reports the outcome to Go at once, from inside that step. A done
 * callback on the Task would cost a bound method, a scheduled callback and a
 * second pass through the loop for every call; under load that was a tenth of
 * the loop thread's time for an ASGI request.
 *
 * The Task stays a real asyncio Task: current_task(), cancellation and the
 * libraries that rely on them (anyio, asyncio.timeout) see nothing different.
 * An Exception the coroutine raises is reported to Go and not raised on to the
 * Task, so nothing logs "exception was never retrieved" for it; a
 * BaseException (CancelledError, KeyboardInterrupt, SystemExit) is reported and
 * raised on, so the Task ends as Python would end it. A job dropped before its
 * coroutine finished (its Task destroyed while pending) still answers Go. */
#include "bridge.h"

typedef struct {
    PyObject_HEAD
    PyObject *coro; /* the coroutine being driven; NULL once it finished */
    PyObject *key;  /* the job id as an int: the key of its Task in the loop's table */
    uint64_t id;
    int reported;   /* Go has the outcome */
    int tracked;    /* its task is in the loop's table of tasks */
    int running;    /* its coroutine is being stepped */
} hb_job;

static void report(hb_job *j, hb_result *r) {
    j->reported = 1;
    if (j->tracked) hb_loop_forget(j->key);
    hb_loop_complete(j->id, r);
}

/* finish turns the coroutine's last step (status st, *result its return value
 * or NULL with an exception raised) into the report and the job's own result. */
static PySendResult finish(hb_job *j, PySendResult st, PyObject **result) {
    Py_CLEAR(j->coro);
    hb_result r;
    memset(&r, 0, sizeof r);
    if (st == PYGEN_RETURN) {
        hb_result_from_value(*result, &r); /* steals it */
        *result = Py_NewRef(Py_None);
        report(j, &r);
        return PYGEN_RETURN;
    }
    PyObject *exc = hb_take_exception();
    int reraise = exc == NULL || !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception);
    hb_restore_exception(Py_XNewRef(exc));
    r.status = HB_ERROR;
    hb_error_capture(&r.err);
    report(j, &r);
    if (reraise) {
        if (exc == NULL) PyErr_SetString(PyExc_SystemError, "coroutine failed without an exception");
        hb_restore_exception(exc);
        *result = NULL;
        return PYGEN_ERROR;
    }
    Py_DECREF(exc);
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

/* executing refuses to touch a job while its coroutine is being stepped, as
 * a generator refuses (code it runs could reach it through get_coro()). */
static int executing(hb_job *j) {
    if (!j->running) return 0;
    PyErr_SetString(PyExc_ValueError, "hornbeam job already executing");
    return 1;
}

/* finished refuses a step of a job whose coroutine has ended, or is being
 * stepped. */
static int finished(hb_job *j) {
    if (executing(j)) return 1;
    if (j->coro != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse an awaited hornbeam job");
    return 1;
}

static PySendResult job_am_send(PyObject *self, PyObject *arg, PyObject **result) {
    hb_job *j = (hb_job *)self;
    if (finished(j)) {
        *result = NULL;
        return PYGEN_ERROR;
    }
    j->running = 1;
    PySendResult st = PyIter_Send(j->coro, arg, result);
    j->running = 0;
    if (st == PYGEN_NEXT) return st;
    return finish(j, st, result);
}

PyObject *hb_send_outcome(PySendResult st, PyObject *result) {
    if (st == PYGEN_NEXT) return result;
    if (st == PYGEN_RETURN) {
        /* Always None: the value went to Go. */
        Py_DECREF(result);
        PyErr_SetNone(PyExc_StopIteration);
    }
    return NULL;
}

PyObject *hb_next_outcome(PySendResult st, PyObject *result) {
    if (st == PYGEN_RETURN) {
        Py_DECREF(result);
        return NULL; /* exhausted, no exception: as a finished generator */
    }
    return st == PYGEN_NEXT ? result : NULL;
}

void hb_raise_thrown(PyObject *typ, PyObject *val) {
    if (PyExceptionInstance_Check(typ))
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    else if (PyExceptionClass_Check(typ))
        PyErr_SetObject(typ, val);
    else
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
}

static PyObject *job_send(PyObject *self, PyObject *arg) {
    PyObject *result;
    PySendResult st = job_am_send(self, arg, &result);
    return hb_send_outcome(st, result);
}

static PyObject *job_iternext(PyObject *self) {
    PyObject *result;
    PySendResult st = job_am_send(self, Py_None, &result);
    return hb_next_outcome(st, result);
}

PySendResult hb_job_throw(PyObject *self, PyObject *args, PyObject **result) {
    hb_job *j = (hb_job *)self;
    *result = NULL;
    if (finished(j)) return PYGEN_ERROR;
    PyObject *meth = PyObject_GetAttrString(j->coro, "throw");
    j->running = 1;
    PyObject *v = meth ? PyObject_Call(meth, args, NULL) : NULL;
    j->running = 0;
    Py_XDECREF(meth);
    if (v != NULL) { /* the coroutine caught it and awaits again */
        *result = v;
        return PYGEN_NEXT;
    }
    PySendResult st = PYGEN_ERROR;
    if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
        PyObject *stop = hb_take_exception();
        v = PyObject_GetAttrString(stop, "value");
        Py_DECREF(stop);
        if (v != NULL) st = PYGEN_RETURN;
    }
    *result = v;
    return finish(j, st, result);
}

static PyObject *job_throw(PyObject *self, PyObject *args) {
    PyObject *result;
    PySendResult st = hb_job_throw(self, args, &result);
    return hb_send_outcome(st, result);
}

static PyObject *job_close(PyObject *self, PyObject *unused) {
    hb_job *j = (hb_job *)self;
    if (executing(j)) return NULL;
    if (j->coro == NULL) Py_RETURN_NONE;
    PyObject *r = PyObject_CallMethod(j->coro, "close", NULL);
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "the call's coroutine was closed before it finished");
    }
    /* Reported to Go either way; only a BaseException from close is raised on. */
    PyObject *result = NULL;
    if (finish(j, PYGEN_ERROR, &result) == PYGEN_ERROR) return NULL;
    Py_DECREF(result);
    Py_RETURN_NONE;
}

static PyObject *job_await(PyObject *self) { return Py_NewRef(self); }

static int job_traverse(PyObject *self, visitproc visit, void *arg) {
    hb_job *j = (hb_job *)self;
    Py_VISIT(j->coro);
    return 0;
}

static int job_clear(PyObject *self) {
    Py_CLEAR(((hb_job *)self)->coro);
    return 0;
}

static void job_dealloc(PyObject *self) {
    hb_job *j = (hb_job *)self;
    PyObject_GC_UnTrack(self);
    if (!j->reported) {
        /* The Task was destroyed while pending (cancelled at shutdown and
         * collected, or never started): the caller must still be answered. */
        PyObject *saved = hb_take_exception();
        hb_result r;
        memset(&r, 0, sizeof r);
        r.status = HB_ERROR;
        hb_error_set(&r.err, "RuntimeError", "the call's task was destroyed before it finished");
        report(j, &r);
        hb_restore_exception(saved);
    }
    Py_CLEAR(j->coro);
    Py_CLEAR(j->key);
    PyObject_GC_Del(self);
}

static PyAsyncMethods job_as_async = {
    .am_await = job_await,
    .am_send = job_am_send,
};

static PyMethodDef job_methods[] = {
    {"send", job_send, METH_O, NULL},
    {"throw", job_throw, METH_VARARGS, NULL},
    {"close", job_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject job_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hornbeam.job",
    .tp_basicsize = sizeof(hb_job),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A Go caller's coroutine, run by the node's event loop.",
    .tp_dealloc = job_dealloc,
    .tp_traverse = job_traverse,
    .tp_clear = job_clear,
    .tp_as_async = &job_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = job_iternext,
    .tp_methods = job_methods,
};

void hb_job_abort(PyObject *self) {
    hb_job *j = (hb_job *)self;
    PyObject *result = NULL;
    if (j->reported)
        PyErr_Clear();
    else if (finish(j, PYGEN_ERROR, &result) == PYGEN_RETURN)
        Py_DECREF(result);
    else
        PyErr_Clear(); /* a BaseException: reported, and no task to raise it in */
}

void hb_job_track(PyObject *self) { ((hb_job *)self)->tracked = 1; }

int hb_job_ready(void) { return PyType_Ready(&job_type); }

PyObject *hb_job_new(uint64_t id, PyObject *key, PyObject *coro) {
    hb_job *j = PyObject_GC_New(hb_job, &job_type);
    if (j == NULL) return NULL;
    j->coro = coro;
    j->key = Py_NewRef(key);
    j->id = id;
    j->reported = 0;
    j->tracked = 0;
    j->running = 0;
    PyObject_GC_Track(j);
    return (PyObject *)j;
}

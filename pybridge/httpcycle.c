/* httpcycle.c: the common steps of an ASGI HTTP request's receive and send.
 *
 * Most requests are one http.request in (read ahead by Go) and one
 * http.response.start and one final http.response.body out. Written as
 * Python coroutines, each of those calls cost a coroutine object and a frame;
 * here they are C methods that return an awaitable already done. Every other
 * case (a streamed body, a body still to be read, a bad message) goes to the
 * subclass's _receive_slow and _send_slow coroutines, so that its errors are
 * raised where a coroutine raises them: at the await, not the call.
 *
 * The awaitable ("ready") is a Coroutine to asyncio and collections.abc
 * (send, throw, close, __await__), so that asyncio.create_task(send(...))
 * works as it does with a coroutine function. */
#include "bridge.h"
#include <structmember.h>

/* ---- ready: an awaitable whose outcome is known when it is made ---------- */

typedef struct {
    PyObject_HEAD
    PyObject *value; /* the result; NULL once handed out (or thrown into, or closed) */
} hb_ready;

static PyTypeObject ready_type;

static PyObject *ready_new(PyObject *value) {
    hb_ready *r = PyObject_New(hb_ready, &ready_type);
    if (r == NULL) return NULL;
    r->value = Py_NewRef(value);
    return (PyObject *)r;
}

/* Like a finished coroutine, a ready awaitable can be awaited once. */
static int ready_take(hb_ready *r, PyObject **result) {
    if (r->value == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return -1;
    }
    *result = r->value; /* the reference moves to the caller */
    r->value = NULL;
    return 0;
}

static PySendResult ready_am_send(PyObject *self, PyObject *arg, PyObject **result) {
    (void)arg;
    if (ready_take((hb_ready *)self, result) < 0) {
        *result = NULL;
        return PYGEN_ERROR;
    }
    return PYGEN_RETURN;
}

/* The generator protocol: the value arrives in StopIteration. */
static PyObject *ready_stop(PyObject *self) {
    PyObject *v;
    if (ready_take((hb_ready *)self, &v) < 0) return NULL;
    /* StopIteration(v) made first, so that a tuple v stays one value. */
    PyObject *stop = v == Py_None ? NULL : PyObject_CallOneArg(PyExc_StopIteration, v);
    Py_DECREF(v);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    } else if (!PyErr_Occurred()) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    return NULL;
}

static PyObject *ready_send(PyObject *self, PyObject *arg) {
    (void)arg;
    return ready_stop(self);
}

static PyObject *ready_iternext(PyObject *self) { return ready_stop(self); }

/* throw on an awaitable that never suspends: as on a coroutine not yet
 * started, the exception is raised at once and the awaitable is spent. */
static PyObject *ready_throw(PyObject *self, PyObject *args) {
    hb_ready *r = (hb_ready *)self;
    PyObject *typ, *val = NULL, *tb = NULL;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb)) return NULL;
    Py_CLEAR(r->value);
    hb_raise_thrown(typ, val);
    return NULL;
}

static PyObject *ready_close(PyObject *self, PyObject *unused) {
    (void)unused;
    Py_CLEAR(((hb_ready *)self)->value);
    Py_RETURN_NONE;
}

static PyObject *ready_await(PyObject *self) { return Py_NewRef(self); }

static void ready_dealloc(PyObject *self) {
    Py_XDECREF(((hb_ready *)self)->value);
    PyObject_Free(self);
}

static PyAsyncMethods ready_as_async = {
    .am_await = ready_await,
    .am_send = ready_am_send,
};

static PyMethodDef ready_methods[] = {
    {"send", ready_send, METH_O, NULL},
    {"throw", ready_throw, METH_VARARGS, NULL},
    {"close", ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* Not tracked by the collector: before it is awaited a ready awaitable holds
 * only what this file made (None, or a message of bytes and a bool), which
 * cannot lead back to it; once awaited it holds nothing. */
static PyTypeObject ready_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hornbeam.ready",
    .tp_basicsize = sizeof(hb_ready),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The outcome of an ASGI receive or send that did not need to wait.",
    .tp_dealloc = ready_dealloc,
    .tp_as_async = &ready_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = ready_iternext,
    .tp_methods = ready_methods,
};

/* ---- HTTPCycle: one request's receive and send --------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *req;      /* the request's id in Go */
    PyObject *head;     /* the body read ahead, until the first receive */
    PyObject *more;     /* more of the body is to be read */
    PyObject *start;    /* (status, headers) once http.response.start came */
    PyObject *final;    /* the whole body of a response not streamed */
    PyObject *body_out; /* the stream of a streamed response */
    char sent;          /* the response's head went to Go */
    char done;          /* the app sent its last body message */
} hb_cycle;

static struct {
    PyObject *type, *body, *more_body, *status, *headers;
    PyObject *http_request, *response_start, *response_body;
    PyObject *receive_slow, *send_slow, *put;
    PyObject *empty, *empty_bytes; /* made last: see hb_httpcycle_add */
} K;

static int cycle_init(PyObject *self, PyObject *args, PyObject *kw) {
    hb_cycle *c = (hb_cycle *)self;
    PyObject *req, *head, *more;
    if (kw != NULL && PyDict_GET_SIZE(kw) > 0) {
        PyErr_SetString(PyExc_TypeError, "HTTPCycle() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_UnpackTuple(args, "HTTPCycle", 3, 3, &req, &head, &more)) return -1;
    Py_XSETREF(c->req, Py_NewRef(req));
    Py_XSETREF(c->head, Py_NewRef(head));
    Py_XSETREF(c->more, Py_NewRef(more));
    Py_XSETREF(c->start, Py_NewRef(Py_None));
    Py_XSETREF(c->final, Py_NewRef(Py_None));
    Py_XSETREF(c->body_out, Py_NewRef(Py_None));
    c->sent = c->done = 0;
    return 0;
}

/* gone refuses a call once the interpreter has begun to end (atexit
 * handlers, coroutines closed by the collector), when K is dropped. */
static int gone(void) {
    if (K.type != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "hornbeam: the request ended with the interpreter");
    return 1;
}

/* receive(): the body read ahead, as the first http.request; after that, the
 * subclass's _receive_slow() (the rest of the body, or the disconnect). */
static PyObject *cycle_receive(PyObject *self, PyObject *unused) {
    (void)unused;
    if (gone()) return NULL;
    hb_cycle *c = (hb_cycle *)self;
    if (c->head == NULL || c->head == Py_None) return PyObject_CallMethodNoArgs(self, K.receive_slow);
    PyObject *msg = PyDict_New();
    if (msg == NULL) return NULL;
    if (PyDict_SetItem(msg, K.type, K.http_request) < 0 || PyDict_SetItem(msg, K.body, c->head) < 0 ||
        PyDict_SetItem(msg, K.more_body, c->more ? c->more : Py_False) < 0) {
        Py_DECREF(msg);
        return NULL;
    }
    PyObject *r = ready_new(msg);
    Py_DECREF(msg);
    if (r != NULL) Py_SETREF(c->head, Py_NewRef(Py_None));
    return r;
}

/* send_start keeps an http.response.start whose status is an int and whose
 * headers a list or tuple: 1 kept, 0 not this case. */
static int send_start(hb_cycle *c, PyObject *message) {
    if (c->start != NULL && c->start != Py_None) return 0; /* sent twice: an error */
    /* Held while the next lookup runs, which may run Python code (a key's
     * __eq__) that changes the message. */
    PyObject *status = Py_XNewRef(PyDict_GetItemWithError(message, K.status));
    if (status == NULL || !PyLong_CheckExact(status)) {
        Py_XDECREF(status);
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *headers = PyDict_GetItemWithError(message, K.headers);
    int kept = 0;
    if (headers == NULL && PyErr_Occurred()) {
        kept = -1;
    } else if (headers == NULL || PyList_CheckExact(headers) || PyTuple_CheckExact(headers)) {
        /* Copied, as the app may reuse its list. */
        PyObject *copy = PySequence_List(headers ? headers : K.empty);
        PyObject *start = copy ? PyTuple_Pack(2, status, copy) : NULL;
        Py_XDECREF(copy);
        if (start == NULL) {
            kept = -1;
        } else {
            Py_XSETREF(c->start, start);
            kept = 1;
        }
    }
    Py_DECREF(status);
    return kept;
}

/* send_final keeps the one body of a response not streamed: 1 kept, 0 not
 * this case. */
static int send_final(hb_cycle *c, PyObject *message) {
    if (c->start == NULL || c->start == Py_None || c->done || c->sent) return 0;
    PyObject *more = PyDict_GetItemWithError(message, K.more_body);
    if (more == NULL && PyErr_Occurred()) return -1;
    if (more != NULL && more != Py_False && more != Py_None) return 0;
    PyObject *body = PyDict_GetItemWithError(message, K.body);
    if (body == NULL) {
        if (PyErr_Occurred()) return -1;
        body = K.empty_bytes;
    }
    if (!PyBytes_CheckExact(body)) return 0;
    Py_XSETREF(c->final, Py_NewRef(body));
    c->done = 1;
    return 1;
}

/* send_piece: a piece of a streamed body (its head sent, more to come, the
 * body bytes) goes to body_out.put from here, without _send_slow's coroutine;
 * put's answer is None (no wait: *kept) or an awaitable, which send returns.
 * 0: not such a piece; -1: an error. */
static int send_piece(hb_cycle *c, PyObject *message, PyObject **answer) {
    if (!c->sent || c->done || c->body_out == NULL) return 0;
    PyObject *more = PyDict_GetItemWithError(message, K.more_body);
    if (more != Py_True) return more == NULL && PyErr_Occurred() ? -1 : 0;
    PyObject *body = PyDict_GetItemWithError(message, K.body);
    if (body == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyBytes_CheckExact(body) || PyBytes_GET_SIZE(body) == 0) return 0;
    /* Again: a key's __eq__ in the lookups above may have changed the cycle. */
    if (!c->sent || c->done || c->body_out == NULL) return 0;
    /* Held across the call: put is Python code, which may drop the
     * message's or the cycle's references. */
    PyObject *out = Py_NewRef(c->body_out);
    Py_INCREF(body);
    *answer = PyObject_CallMethodOneArg(out, K.put, body);
    Py_DECREF(body);
    Py_DECREF(out);
    return *answer == NULL ? -1 : 1;
}

/* send(message): keeps the start and the final body of a response that is
 * not streamed, and hands a streamed body's pieces to body_out.put; anything
 * else goes to the subclass's _send_slow(message).
 * Unlike the coroutine's, the fast path's effect comes at the call, not at the
 * await: the same for an app that awaits each send before the next, as ASGI
 * asks; sends made at once (gather) may be kept in another order. */
static PyObject *cycle_send(PyObject *self, PyObject *message) {
    if (gone()) return NULL;
    hb_cycle *c = (hb_cycle *)self;
    int kept = 0;
    PyObject *answer = NULL;
    if (PyDict_CheckExact(message)) {
        PyObject *t = PyDict_GetItemWithError(message, K.type);
        if (t == NULL && PyErr_Occurred()) return NULL;
        if (t != NULL && PyUnicode_CheckExact(t)) {
            if (PyUnicode_Compare(t, K.response_body) == 0) {
                kept = send_final(c, message);
                if (kept == 0) kept = send_piece(c, message, &answer);
            } else if (PyUnicode_Compare(t, K.response_start) == 0) {
                kept = send_start(c, message);
            }
        }
    }
    if (kept < 0) return NULL;
    if (answer != NULL && answer != Py_None) return answer; /* put's wait */
    Py_XDECREF(answer);
    if (kept) return ready_new(Py_None);
    return PyObject_CallMethodOneArg(self, K.send_slow, message);
}

static PyMemberDef cycle_members[] = {
    {"req", T_OBJECT, offsetof(hb_cycle, req), 0, NULL},
    {"head", T_OBJECT, offsetof(hb_cycle, head), 0, NULL},
    {"more", T_OBJECT, offsetof(hb_cycle, more), 0, NULL},
    {"start", T_OBJECT, offsetof(hb_cycle, start), 0, NULL},
    {"final", T_OBJECT, offsetof(hb_cycle, final), 0, NULL},
    {"body_out", T_OBJECT, offsetof(hb_cycle, body_out), 0, NULL},
    {"sent", T_BOOL, offsetof(hb_cycle, sent), 0, NULL},
    {"done", T_BOOL, offsetof(hb_cycle, done), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef cycle_methods[] = {
    {"receive", cycle_receive, METH_NOARGS, "receive(): the next ASGI message from the client"},
    {"send", cycle_send, METH_O, "send(message): an ASGI message to the client"},
    {NULL, NULL, 0, NULL},
};

static int cycle_traverse(PyObject *self, visitproc visit, void *arg) {
    hb_cycle *c = (hb_cycle *)self;
    Py_VISIT(c->req);
    Py_VISIT(c->head);
    Py_VISIT(c->more);
    Py_VISIT(c->start);
    Py_VISIT(c->final);
    Py_VISIT(c->body_out);
    return 0;
}

static int cycle_clear(PyObject *self) {
    hb_cycle *c = (hb_cycle *)self;
    Py_CLEAR(c->req);
    Py_CLEAR(c->head);
    Py_CLEAR(c->more);
    Py_CLEAR(c->start);
    Py_CLEAR(c->final);
    Py_CLEAR(c->body_out);
    return 0;
}

/* A subclass's instances come here through subtype_dealloc, which releases
 * their (heap) type itself. */
static void cycle_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    cycle_clear(self);
    Py_TYPE(self)->tp_free(self);
}

static PyTypeObject cycle_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_hornbeam.HTTPCycle",
    .tp_basicsize = sizeof(hb_cycle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "HTTPCycle(req, head, more): one ASGI HTTP request's receive and send. "
              "A subclass gives the coroutines _receive_slow() and _send_slow(message).",
    .tp_dealloc = cycle_dealloc,
    .tp_traverse = cycle_traverse,
    .tp_clear = cycle_clear,
    .tp_methods = cycle_methods,
    .tp_members = cycle_members,
    .tp_init = cycle_init,
    .tp_new = PyType_GenericNew,
};

static PyObject *intern(const char *s) { return PyUnicode_InternFromString(s); }

int hb_httpcycle_add(PyObject *module) {
    if (K.empty_bytes == NULL) { /* the last made: all are there */
        hb_httpcycle_forget(); /* what a failed attempt made */
        K.type = intern("type");
        K.body = intern("body");
        K.more_body = intern("more_body");
        K.status = intern("status");
        K.headers = intern("headers");
        K.http_request = intern("http.request");
        K.response_start = intern("http.response.start");
        K.response_body = intern("http.response.body");
        K.receive_slow = intern("_receive_slow");
        K.send_slow = intern("_send_slow");
        K.put = intern("put");
        K.empty = PyTuple_New(0);
        K.empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
        if (PyErr_Occurred()) return -1;
    }
    if (PyType_Ready(&ready_type) < 0 || PyType_Ready(&cycle_type) < 0) return -1;
    Py_INCREF(&cycle_type);
    if (PyModule_AddObject(module, "HTTPCycle", (PyObject *)&cycle_type) < 0) {
        Py_DECREF(&cycle_type);
        return -1;
    }
    return 0;
}

void hb_httpcycle_forget(void) {
    PyObject **k = (PyObject **)&K;
    for (size_t i = 0; i < sizeof K / sizeof *k; i++) Py_CLEAR(k[i]);
}

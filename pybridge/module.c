/* module.c: the built-in _hornbeam extension module, Python's door into Go.
 *
 * State operations are short and never block, so they keep the GIL; calls that may
 * wait (hbGoCall) release it for the whole time Go works. */
#include "bridge.h"
#include "_cgo_export.h"
#include <string.h>

static size_t state_max_value; /* 0: none; set once before Python starts */

void hb_set_state_max_value(size_t n) { state_max_value = n; }

static const char *key_utf8(PyObject *key, Py_ssize_t *n) {
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "state key must be str, not %.100s", Py_TYPE(key)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(key, n);
}

/* Keyword-or-positional parsing for the few optional arguments, keeping the
 * positional fast path free of any allocation. */
static int parse(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fname,
                 int required, int total, const char *const *names, PyObject **out) {
    if (nargs > total) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, total,
                     nargs);
        return -1;
    }
    for (int i = 0; i < total; i++) out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kn = PyTuple_GET_ITEM(kwnames, k);
        int found = 0;
        for (int i = 0; i < total; i++) {
            if (PyUnicode_CompareWithASCIIString(kn, names[i]) == 0) {
                if (out[i] != NULL) {
                    PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                                 fname, names[i]);
                    return -1;
                }
                out[i] = args[nargs + k];
                found = 1;
            }
        }
        if (!found) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, kn);
            return -1;
        }
    }
    for (int i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *state_get(PyObject *self, PyObject *key) {
    (void)self;
    Py_ssize_t n;
    const char *k = key_utf8(key, &n);
    if (k == NULL) return NULL;
    return hbStateGet((char *)k, (size_t)n);
}

static PyObject *state_set(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    (void)self;
    static const char *const names[] = {"key", "value", "ttl"};
    PyObject *a[3];
    if (parse(args, nargs, kwnames, "state_set", 2, 3, names, a) < 0) return NULL;
    Py_ssize_t n;
    const char *k = key_utf8(a[0], &n);
    if (k == NULL) return NULL;
    int64_t ttl_ns = 0;
    if (a[2] != NULL && a[2] != Py_None) {
        double ttl = PyFloat_AsDouble(a[2]);
        if (ttl == -1.0 && PyErr_Occurred()) return NULL;
        if (!(ttl > 0) || ttl > 9e9) {
            PyErr_SetString(PyExc_ValueError, "state_set(): ttl must be a positive number of seconds");
            return NULL;
        }
        ttl_ns = (int64_t)(ttl * 1e9);
        if (ttl_ns < 1) ttl_ns = 1;
    }
    hb_buf b;
    hb_buf_init(&b);
    /* Checked as the value encodes: a huge value stops at the limit instead of
     * holding the GIL while all of it is encoded. */
    b.limit = state_max_value;
    if (hb_encode(a[1], &b) < 0) {
        if (b.over) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "state_set(): the value is over the %zu-byte limit (--state-max-value)",
                         state_max_value);
        }
        hb_buf_free(&b);
        return NULL;
    }
    int rc = hbStateSet((char *)k, (size_t)n, b.data, b.len, ttl_ns);
    hb_buf_free(&b);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *state_delete(PyObject *self, PyObject *key) {
    (void)self;
    Py_ssize_t n;
    const char *k = key_utf8(key, &n);
    if (k == NULL) return NULL;
    if (hbStateDelete((char *)k, (size_t)n) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *incr(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      const char *fname, int sign) {
    static const char *const names[] = {"key", "delta"};
    PyObject *a[2];
    if (nargs == 1 && kwnames == NULL) {
        a[0] = args[0];
        a[1] = NULL;
    } else if (parse(args, nargs, kwnames, fname, 1, 2, names, a) < 0) {
        return NULL;
    }
    Py_ssize_t n;
    const char *k = key_utf8(a[0], &n);
    if (k == NULL) return NULL;
    long long delta = 1;
    if (a[1] != NULL) {
        if (!PyLong_Check(a[1])) {
            PyErr_Format(PyExc_TypeError, "%s(): delta must be int, not %.100s", fname,
                         Py_TYPE(a[1])->tp_name);
            return NULL;
        }
        delta = PyLong_AsLongLong(a[1]);
        if (delta == -1 && PyErr_Occurred()) return NULL;
    }
    if (sign < 0) {
        if (delta == INT64_MIN) {
            PyErr_Format(PyExc_OverflowError, "%s(): delta out of range", fname);
            return NULL;
        }
        delta = -delta;
    }
    int64_t v;
    if (hbStateIncr((char *)k, (size_t)n, delta, &v) < 0) return NULL;
    return PyLong_FromLongLong(v);
}

static PyObject *state_incr(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    (void)self;
    return incr(args, nargs, kwnames, "state_incr", 1);
}

static PyObject *state_decr(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    (void)self;
    return incr(args, nargs, kwnames, "state_decr", -1);
}

static PyObject *state_get_multi(PyObject *self, PyObject *keys) {
    (void)self;
    PyObject *seq = PySequence_Fast(keys, "state_get_multi() expects a sequence of keys");
    if (seq == NULL) return NULL;
    PyObject *d = PyDict_New();
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; d != NULL && i < len; i++) {
        PyObject *key = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *v = state_get(NULL, key);
        if (v == NULL || PyDict_SetItem(d, key, v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    Py_DECREF(seq);
    return d;
}

static PyObject *state_keys(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    (void)self;
    static const char *const names[] = {"prefix"};
    PyObject *a[1];
    if (parse(args, nargs, kwnames, "state_keys", 0, 1, names, a) < 0) return NULL;
    if (a[0] == NULL || a[0] == Py_None) return hbStateKeys(NULL, 0);
    Py_ssize_t n;
    const char *p = key_utf8(a[0], &n);
    if (p == NULL) return NULL;
    return hbStateKeys((char *)p, (size_t)n);
}

static PyObject *node(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return hbNodeName();
}

static PyObject *encode(PyObject *self, PyObject *obj) {
    (void)self;
    hb_buf b;
    hb_buf_init(&b);
    if (hb_encode(obj, &b) < 0) {
        hb_buf_free(&b);
        return NULL;
    }
    PyObject *r = PyBytes_FromStringAndSize((const char *)b.data, (Py_ssize_t)b.len);
    hb_buf_free(&b);
    return r;
}

static PyObject *decode(PyObject *self, PyObject *data) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *r = hb_decode(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return r;
}

/* encode_args writes args[from:nargs] as one CBOR array into a new buffer. */
static int encode_args(PyObject *const *args, Py_ssize_t from, Py_ssize_t nargs, hb_buf *b) {
    PyObject *rest = PyTuple_New(nargs - from);
    if (rest == NULL) return -1;
    for (Py_ssize_t i = from; i < nargs; i++) PyTuple_SET_ITEM(rest, i - from, Py_NewRef(args[i]));
    hb_buf_init(b);
    int rc = hb_encode(rest, b);
    Py_DECREF(rest);
    if (rc < 0) hb_buf_free(b);
    return rc;
}

/* go_call runs the Go function registered under args[0] with args[1:]; its
 * error becomes the exception class it names. With release, the GIL is given
 * up for the call. fname names the Python function in errors. */
static PyObject *go_call(PyObject *const *args, Py_ssize_t nargs, int release, const char *fname) {
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s() needs a function name (str) first", fname);
        return NULL;
    }
    Py_ssize_t nlen;
    const char *name = PyUnicode_AsUTF8AndSize(args[0], &nlen);
    if (name == NULL) return NULL;
    hb_buf b;
    if (encode_args(args, 1, nargs, &b) < 0) return NULL;
    hb_result r;
    memset(&r, 0, sizeof r);
    if (release) {
        /* name stays valid without the GIL: args[0] is referenced by our caller. */
        Py_BEGIN_ALLOW_THREADS
        hbGoCall((char *)name, (size_t)nlen, b.data, b.len, &r);
        Py_END_ALLOW_THREADS
    } else {
        hbGoCall((char *)name, (size_t)nlen, b.data, b.len, &r);
    }
    hb_buf_free(&b);
    PyObject *v = NULL;
    if (r.status == HB_OK) {
        v = hb_decode(r.data, r.len);
    } else {
        hb_raise(r.err.type ? r.err.type : "RuntimeError", r.err.message ? r.err.message : "",
                 r.data, r.len);
    }
    hb_result_free(&r);
    return v;
}

/* call(name, *args): runs the Go function registered under name with the GIL
 * released. */
static PyObject *call(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return go_call(args, nargs, 1, "call");
}

/* call_fast(name, *args): call() for Go functions that never block (a send,
 * a pid): the GIL stays held, since giving it up and taking it back costs far
 * more than the call when other threads want it. */
static PyObject *call_fast(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return go_call(args, nargs, 0, "call_fast");
}

/* call_async(future, name, *args): starts the Go function registered under name
 * and returns at once; its outcome completes the future on the future's loop. */
static PyObject *call_async(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs < 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "call_async() needs a future and a function name (str)");
        return NULL;
    }
    Py_ssize_t nlen;
    const char *name = PyUnicode_AsUTF8AndSize(args[1], &nlen);
    if (name == NULL) return NULL;
    hb_buf b;
    if (encode_args(args, 2, nargs, &b) < 0) return NULL;
    /* The reference travels with the Go call and is released by the loop. */
    PyObject *fut = Py_NewRef(args[0]);
    int rc = hbGoCallAsync((char *)name, (size_t)nlen, b.data, b.len, fut);
    if (rc == 1)
        hb_buf_init(&b); /* Go reads the arguments in place and frees them when its call ends */
    else
        hb_buf_free(&b);
    if (rc < 0) {
        Py_DECREF(fut);
        PyErr_Format(PyExc_AttributeError, "_hornbeam has no Go function '%s'", name);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* http_direct(handle, data) -> 0, 1 or 2: a streamed response's piece
 * written from this thread (directwrite.c). */
static PyObject *http_direct(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "http_direct(handle: int, data: bytes)");
        return NULL;
    }
    unsigned long long h = PyLong_AsUnsignedLongLong(args[0]);
    if (h == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    int r = hb_dw_write((uint64_t)h, PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]));
    return PyLong_FromLong(r);
}

static PyMethodDef methods[] = {
    {"state_get", state_get, METH_O, "state_get(key) -> value or None"},
    {"state_set", (PyCFunction)(void (*)(void))state_set, METH_FASTCALL | METH_KEYWORDS,
     "state_set(key, value, ttl=None)"},
    {"state_delete", state_delete, METH_O, "state_delete(key)"},
    {"state_incr", (PyCFunction)(void (*)(void))state_incr, METH_FASTCALL | METH_KEYWORDS,
     "state_incr(key, delta=1) -> int"},
    {"state_decr", (PyCFunction)(void (*)(void))state_decr, METH_FASTCALL | METH_KEYWORDS,
     "state_decr(key, delta=1) -> int"},
    {"state_get_multi", state_get_multi, METH_O, "state_get_multi(keys) -> dict"},
    {"state_keys", (PyCFunction)(void (*)(void))state_keys, METH_FASTCALL | METH_KEYWORDS,
     "state_keys(prefix=None) -> list"},
    {"node", node, METH_NOARGS, "node() -> str"},
    {"encode", encode, METH_O, "encode(obj) -> bytes (CBOR)"},
    {"decode", decode, METH_O, "decode(data) -> object"},
    {"call", (PyCFunction)(void (*)(void))call, METH_FASTCALL, "call(name, *args)"},
    {"call_async", (PyCFunction)(void (*)(void))call_async, METH_FASTCALL,
     "call_async(future, name, *args)"},
    {"call_fast", (PyCFunction)(void (*)(void))call_fast, METH_FASTCALL,
     "call_fast(name, *args): call() keeping the GIL, for Go functions that never block"},
    {"http_direct", (PyCFunction)(void (*)(void))http_direct, METH_FASTCALL,
     "http_direct(handle, data) -> int: a streamed response's piece written from this thread"},
    {"register_tag", (PyCFunction)(void (*)(void))hb_ext_register, METH_FASTCALL,
     "register_tag(cls, tag, decode): instances of cls travel as CBOR tag `tag`"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_hornbeam",
    "The host's functions, implemented in Go. Use hornbeam_erlang, not this.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyObject *hb_module_init(void) {
    PyObject *m = PyModule_Create(&moddef);
    if (m != NULL && hb_httpcycle_add(m) < 0) Py_CLEAR(m);
    if (m != NULL) hb_call_resolve();
    return m;
}

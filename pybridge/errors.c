/* errors.c: Python exceptions to Go (type, message, traceback) and Go errors to
 * Python exceptions (resolved by "module:Class"). */
#include "bridge.h"
#include <stdlib.h>
#include <string.h>

static char *dup_utf8(PyObject *s) {
    if (s == NULL) return strdup("");
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        PyErr_Clear();
        return strdup("<unprintable>");
    }
    char *r = malloc((size_t)n + 1);
    if (r == NULL) return NULL;
    memcpy(r, u, (size_t)n);
    r[n] = 0;
    return r;
}

static char *type_name(PyObject *type) {
    PyObject *mod = PyObject_GetAttrString(type, "__module__");
    PyObject *qual = PyObject_GetAttrString(type, "__qualname__");
    char *r = NULL;
    if (qual == NULL) {
        PyErr_Clear();
        r = strdup(((PyTypeObject *)type)->tp_name);
    } else if (mod == NULL || !PyUnicode_Check(mod) ||
               PyUnicode_CompareWithASCIIString(mod, "builtins") == 0) {
        PyErr_Clear();
        r = dup_utf8(qual);
    } else {
        PyObject *full = PyUnicode_FromFormat("%U.%U", mod, qual);
        if (full == NULL) {
            PyErr_Clear();
            r = dup_utf8(qual);
        } else {
            r = dup_utf8(full);
            Py_DECREF(full);
        }
    }
    Py_XDECREF(mod);
    Py_XDECREF(qual);
    return r;
}

static char *format_tb(PyObject *exc) {
    PyObject *tbmod = PyImport_ImportModule("traceback");
    if (tbmod == NULL) {
        PyErr_Clear();
        return strdup("");
    }
    PyObject *lines = PyObject_CallMethod(tbmod, "format_exception", "O", exc);
    Py_DECREF(tbmod);
    if (lines == NULL) {
        PyErr_Clear();
        return strdup("");
    }
    PyObject *empty = PyUnicode_FromString("");
    PyObject *joined = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    if (joined == NULL) {
        PyErr_Clear();
        return strdup("");
    }
    char *r = dup_utf8(joined);
    Py_DECREF(joined);
    return r;
}

void hb_error_capture(hb_error *e) {
    PyObject *exc = hb_take_exception();
    memset(e, 0, sizeof(*e));
    if (exc == NULL) {
        hb_error_set(e, "SystemError", "error return without exception set");
        return;
    }
    e->type = type_name((PyObject *)Py_TYPE(exc));
    PyObject *s = PyObject_Str(exc);
    if (s == NULL) PyErr_Clear();
    e->message = dup_utf8(s);
    Py_XDECREF(s);
    e->traceback = format_tb(exc);
    Py_DECREF(exc);
}

void hb_error_set(hb_error *e, const char *type, const char *msg) {
    e->type = strdup(type);
    e->message = strdup(msg);
    e->traceback = strdup("");
}

void hb_error_free(hb_error *e) {
    free(e->type);
    free(e->message);
    free(e->traceback);
    memset(e, 0, sizeof(*e));
}

/* Resolves "pkg.mod:Class" or a builtin name such as "TimeoutError". Falls back to
 * RuntimeError so a bad spec from Go never hides the error itself. */
static PyObject *resolve_exc(const char *spec) {
    const char *colon = strchr(spec, ':');
    PyObject *cls = NULL;
    if (colon == NULL) {
        PyObject *b = PyEval_GetBuiltins(); /* borrowed */
        cls = b ? PyDict_GetItemString(b, spec) : NULL;
        Py_XINCREF(cls);
    } else {
        PyObject *modname = PyUnicode_FromStringAndSize(spec, colon - spec);
        PyObject *mod = modname ? PyImport_Import(modname) : NULL;
        Py_XDECREF(modname);
        if (mod != NULL) {
            cls = PyObject_GetAttrString(mod, colon + 1);
            Py_DECREF(mod);
        }
        if (cls == NULL) PyErr_Clear();
    }
    if (cls == NULL || !PyExceptionClass_Check(cls)) {
        Py_XDECREF(cls);
        cls = Py_NewRef(PyExc_RuntimeError);
    }
    return cls;
}

void hb_raise(const char *spec, const char *message, const unsigned char *attrs, size_t attrs_len) {
    PyObject *cls = resolve_exc(spec);
    PyObject *exc = PyObject_CallFunction(cls, "s", message);
    Py_DECREF(cls);
    if (exc == NULL) return; /* constructing it raised: that exception stands */
    if (attrs != NULL && attrs_len > 0) {
        PyObject *d = hb_decode(attrs, attrs_len);
        if (d != NULL && PyDict_Check(d)) {
            PyObject *k, *v;
            Py_ssize_t pos = 0;
            while (PyDict_Next(d, &pos, &k, &v)) {
                if (PyUnicode_Check(k) && PyObject_SetAttr(exc, k, v) < 0) PyErr_Clear();
            }
        }
        if (d == NULL) PyErr_Clear();
        Py_XDECREF(d);
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

void hb_result_free(hb_result *r) {
    free(r->data);
    r->data = NULL;
    r->len = 0;
    hb_error_free(&r->err);
}

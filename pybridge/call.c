/* call.c: resolving module.function and calling it with CBOR-encoded arguments,
 * on a pool thread (sync) or the loop thread (coroutine functions). */
#include "bridge.h"
#include <string.h>

void hb_encode_result(PyObject *v, size_t limit, hb_result *out) {
    hb_buf b;
    hb_buf_init(&b);
    b.limit = limit;
    if (hb_encode(v, &b) < 0) {
        int over = b.over;
        hb_buf_free(&b); /* what was encoded goes back now, not after the refusal */
        out->status = over ? HB_TOO_LARGE : HB_ERROR;
        hb_error_capture(&out->err);
        return;
    }
    out->status = HB_OK;
    out->data = b.data; /* ownership moves to the result */
    out->len = b.len;
}

void hb_result_from_value(PyObject *v, hb_result *out) {
    hb_encode_result(v, 0, out);
    Py_DECREF(v);
}

static int is_awaitable(PyObject *o) {
    if (PyCoro_CheckExact(o)) return 1;
    PyAsyncMethods *am = Py_TYPE(o)->tp_as_async;
    return am != NULL && am->am_await != NULL;
}

/* Distinguishes "the target module does not exist" from an import that failed
 * inside the module (a missing dependency is the module's error, not a bad call). */
static int missing_module(PyObject *modname) {
    if (!PyErr_ExceptionMatches(PyExc_ModuleNotFoundError)) return 0;
    PyObject *exc = hb_take_exception();
    PyObject *name = exc ? PyObject_GetAttrString(exc, "name") : NULL;
    int missing = 0;
    if (name == NULL) {
        PyErr_Clear();
    } else if (PyUnicode_Check(name)) {
        /* "a.b" is missing when "a" or "a.b" itself is what was not found */
        Py_ssize_t n = PyUnicode_GetLength(name);
        missing = PyUnicode_Tailmatch(modname, name, 0, n, -1) == 1 &&
                  (PyUnicode_GetLength(modname) == n ||
                   PyUnicode_ReadChar(modname, n) == '.');
    }
    Py_XDECREF(name);
    hb_restore_exception(exc);
    return missing;
}

/* The functions called lately, by module and function name: finding one
 * through sys.modules and the module's attributes (which also asks whether the
 * module is still being imported) cost more than a small call. An entry holds
 * only while sys.modules still maps the name to the same module and the
 * module's dict the name to the same function, so a reload or a reassignment is
 * seen at once; a module still being imported is not entered (other threads
 * must go on waiting for its import), nor is any entry made once the
 * interpreter has begun to end. The GIL guards it; RESOLVED bounds it whatever
 * names callers send. */
#define RESOLVED 16
static struct resolved {
    PyObject *modname, *mod, *fname, *fn;
} resolved[RESOLVED];
static int resolving; /* between the interpreter's start and its end */

static unsigned resolved_slot(const char *mod, size_t modlen, const char *fn, size_t fnlen) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < modlen; i++) h = (h ^ (unsigned char)mod[i]) * 16777619u;
    for (size_t i = 0; i < fnlen; i++) h = (h ^ (unsigned char)fn[i]) * 16777619u;
    return h % RESOLVED;
}

static int same_text(PyObject *s, const char *p, size_t n) {
    return PyUnicode_IS_ASCII(s) && (size_t)PyUnicode_GET_LENGTH(s) == n && memcmp(PyUnicode_1BYTE_DATA(s), p, n) == 0;
}

/* The function for mod.fn (a new reference) if the entry still holds, else
 * NULL. The entry is read into references of its own first: a lookup below
 * may run Python code (a key's __eq__) that lets another thread replace it. */
static PyObject *resolved_get(const char *mod, size_t modlen, const char *fn, size_t fnlen) {
    struct resolved *e = &resolved[resolved_slot(mod, modlen, fn, fnlen)];
    if (e->fn == NULL || !same_text(e->modname, mod, modlen) || !same_text(e->fname, fn, fnlen)) return NULL;
    PyObject *modname = Py_NewRef(e->modname), *m = Py_NewRef(e->mod), *fname = Py_NewRef(e->fname),
             *f = Py_NewRef(e->fn);
    PyObject *modules = PyImport_GetModuleDict();
    int holds = Py_IS_TYPE(m, &PyModule_Type) && PyDict_CheckExact(modules) &&
                PyDict_GetItemWithError(modules, modname) == m &&
                PyDict_GetItemWithError(PyModule_GetDict(m), fname) == f;
    PyErr_Clear();
    Py_DECREF(modname);
    Py_DECREF(m);
    Py_DECREF(fname);
    if (!holds) Py_CLEAR(f);
    return f;
}

/* initializing says whether module m is still being imported (by this
 * thread: others wait for the import before they get m). */
static int initializing(PyObject *d) {
    PyObject *spec = PyDict_GetItemString(d, "__spec__");
    PyObject *flag = spec ? PyObject_GetAttrString(spec, "_initializing") : NULL;
    int yes = flag != NULL && PyObject_IsTrue(flag) == 1;
    Py_XDECREF(flag);
    PyErr_Clear();
    return yes;
}

/* Remembers f as m's attribute fname when it is plainly an entry of the
 * dict of a module whose import is complete. */
static void resolved_put(PyObject *modname, PyObject *m, PyObject *fname, PyObject *f) {
    if (!resolving || !PyModule_CheckExact(m) || !PyUnicode_IS_ASCII(modname) || !PyUnicode_IS_ASCII(fname)) return;
    PyObject *d = PyModule_GetDict(m);
    if (d == NULL || PyDict_GetItemWithError(d, fname) != f || initializing(d)) {
        PyErr_Clear();
        return;
    }
    struct resolved *e = &resolved[resolved_slot((const char *)PyUnicode_1BYTE_DATA(modname),
                                                 (size_t)PyUnicode_GET_LENGTH(modname),
                                                 (const char *)PyUnicode_1BYTE_DATA(fname),
                                                 (size_t)PyUnicode_GET_LENGTH(fname))];
    struct resolved old = *e; /* released once the entry is whole */
    *e = (struct resolved){Py_NewRef(modname), Py_NewRef(m), Py_NewRef(fname), Py_NewRef(f)};
    Py_XDECREF(old.modname);
    Py_XDECREF(old.mod);
    Py_XDECREF(old.fname);
    Py_XDECREF(old.fn);
}

void hb_call_resolve(void) { resolving = 1; }

void hb_call_forget(void) {
    resolving = 0; /* none made while the interpreter ends */
    for (int i = 0; i < RESOLVED; i++) {
        Py_CLEAR(resolved[i].modname);
        Py_CLEAR(resolved[i].mod);
        Py_CLEAR(resolved[i].fname);
        Py_CLEAR(resolved[i].fn);
    }
}

void hb_call_locked(const char *mod, size_t modlen, const char *fn, size_t fnlen,
                    const unsigned char *args, size_t argslen, size_t limit, int ask_coro_fn,
                    hb_result *out) {
    memset(out, 0, sizeof(*out));
    PyObject *modname = NULL, *m = NULL, *f = NULL, *tuple = NULL, *res = NULL;

    f = resolved_get(mod, modlen, fn, fnlen);
    if (f != NULL) goto call;
    modname = hb_short_text(mod, modlen);
    if (modname == NULL) goto error;
    m = PyImport_GetModule(modname);
    if (m == NULL) {
        if (PyErr_Occurred()) goto error;
        m = PyImport_Import(modname);
        if (m == NULL) {
            out->status = missing_module(modname) ? HB_NO_MODULE : HB_ERROR;
            hb_error_capture(&out->err);
            goto done;
        }
    }
    PyObject *fname = hb_short_text(fn, fnlen);
    if (fname == NULL) goto error;
    f = PyObject_GetAttr(m, fname);
    if (f == NULL || !PyCallable_Check(f)) {
        Py_DECREF(fname);
        if (f == NULL && !PyErr_ExceptionMatches(PyExc_AttributeError)) goto error;
        PyErr_Clear();
        out->status = HB_NO_FUNCTION;
        char msg[512];
        snprintf(msg, sizeof msg, "module '%.*s' has no %s '%.*s'", (int)modlen, mod,
                 f == NULL ? "function" : "callable", (int)fnlen, fn);
        hb_error_set(&out->err, "AttributeError", msg);
        goto done;
    }
    resolved_put(modname, m, fname, f);
    Py_DECREF(fname);
call:
    if (argslen == 0) {
        tuple = PyTuple_New(0);
    } else {
        tuple = hb_decode_args(args, argslen);
    }
    if (tuple == NULL) goto error;
    res = PyObject_Call(f, tuple, NULL);
    if (res == NULL) goto error;
    if (is_awaitable(res)) {
        out->status = HB_ASYNC;
        out->coro = res;
        res = NULL;
        if (ask_coro_fn) { /* the loop does not ask: it runs every awaitable */
            /* inspect's answer also covers methods, partials and markcoroutinefunction. */
            PyObject *inspect = PyImport_ImportModule("inspect");
            PyObject *yes = inspect ? PyObject_CallMethod(inspect, "iscoroutinefunction", "O", f) : NULL;
            out->coro_fn = yes != NULL && PyObject_IsTrue(yes) == 1;
            Py_XDECREF(yes);
            Py_XDECREF(inspect);
            PyErr_Clear();
        }
    } else {
        hb_encode_result(res, limit, out);
    }
    goto done;
error:
    out->status = HB_ERROR;
    hb_error_capture(&out->err);
done:
    Py_XDECREF(modname);
    Py_XDECREF(m);
    Py_XDECREF(f);
    Py_XDECREF(tuple);
    Py_XDECREF(res);
}

void hb_call_job(hb_worker *w, uint64_t job, const char *mod, size_t modlen, const char *fn,
                 size_t fnlen, const unsigned char *args, size_t argslen, size_t limit,
                 hb_result *out) {
    w->job = job;
    hb_call_locked(mod, modlen, fn, fnlen, args, argslen, limit, 1, out);
    w->job = 0;
    if (w->interrupted) {
        /* An interrupt aimed at this job that did not fire must not hit the next. */
        w->interrupted = 0;
        PyThreadState_SetAsyncExc(w->tid, NULL);
    }
}

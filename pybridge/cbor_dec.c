/* cbor_dec.c: CBOR -> Python. Owns hb_decode and the decoder's numpy cache.
 * Input is untrusted: every length is checked against the bytes left before
 * anything is allocated or read, nesting is bounded by HB_MAX_DEPTH, and every
 * rejection is a ValueError starting with "hornbeam: ". */
#include "cbor.h"
#include <stdint.h>
#include <string.h>

#define MAX_NDIM 32 /* numpy 1.x's NPY_MAXDIMS; numpy 2 allows more, but the peer must not depend on it */

typedef struct {
    const unsigned char *p, *end;
} dec;

static inline size_t left(const dec *d) { return (size_t)(d->end - d->p); }

static PyObject *fail(const char *msg) {
    PyErr_SetString(PyExc_ValueError, msg);
    return NULL;
}

static int failr(const char *msg) {
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

/* Replaces the current exception with ValueError(msg), keeping it as __cause__
 * so that the real reason (say, numpy's own import error) is not lost. */
static void value_error_from_current(const char *msg) {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *cause = PyErr_GetRaisedException();
    PyErr_SetString(PyExc_ValueError, msg);
    PyObject *exc = PyErr_GetRaisedException();
    if (cause != NULL) PyException_SetCause(exc, cause);
    PyErr_SetRaisedException(exc);
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL) PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    PyErr_SetString(PyExc_ValueError, msg);
    PyObject *t2, *v2, *tb2;
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v != NULL && v2 != NULL) PyException_SetCause(v2, v); /* steals v */
    else Py_XDECREF(v);
    PyErr_Restore(t2, v2, tb2);
#endif
}

/* Reads an initial byte and its argument. Indefinite lengths (and the break
 * code) are refused here, so no caller ever has to handle them. */
static int head(dec *d, unsigned *major, unsigned *ai, uint64_t *arg) {
    if (d->p >= d->end) return failr("hornbeam: truncated CBOR input");
    unsigned ib = *d->p++;
    *major = ib >> 5;
    *ai = ib & 31;
    if (*ai < 24) {
        *arg = *ai;
        return 0;
    }
    if (*ai == 31)
        return failr(*major == 7 ? "hornbeam: unexpected CBOR break code"
                                 : "hornbeam: indefinite-length CBOR items are not supported");
    if (*ai > 27) return failr("hornbeam: reserved CBOR additional information value");
    size_t n = (size_t)1 << (*ai - 24);
    if (left(d) < n) return failr("hornbeam: truncated CBOR input");
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | d->p[i];
    d->p += n;
    *arg = v;
    return 0;
}

/* ---- numpy ---------------------------------------------------------------- */

/* RFC 8746 typed-array tags 64..87 as numpy dtype strings; NULL = refused
 * (76 is reserved; 83/87 are IEEE binary128, which numpy does not have). */
static const char *const dtype_str[24] = {
    "|u1", ">u2", ">u4", ">u8", "|u1" /* 68: clamped uint8 */, "<u2", "<u4", "<u8",
    "|i1", ">i2", ">i4", ">i8", NULL, "<i2", "<i4", "<i8",
    ">f2", ">f4", ">f8", NULL, "<f2", "<f4", "<f8", NULL,
};

static struct {
    PyObject *empty;     /* numpy.empty; NULL until numpy has been imported */
    PyObject *dtype_cls; /* numpy.dtype */
    PyObject *dtype[24]; /* numpy.dtype per tag, built on first use */
} np;

static int np_ready(void) {
    if (np.empty != NULL) return 0;
    PyObject *mod = PyImport_ImportModule("numpy");
    if (mod == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception))
            value_error_from_current("hornbeam: numpy is required to decode a typed array");
        return -1;
    }
    PyObject *empty = PyObject_GetAttrString(mod, "empty");
    PyObject *dtype = empty ? PyObject_GetAttrString(mod, "dtype") : NULL;
    Py_DECREF(mod);
    if (dtype == NULL) {
        Py_XDECREF(empty);
        return -1;
    }
    if (np.empty != NULL) { /* the import released the GIL and another thread finished first */
        Py_DECREF(empty);
        Py_DECREF(dtype);
        return 0;
    }
    np.dtype_cls = dtype;
    np.empty = empty;
    return 0;
}

static PyObject *np_dtype(unsigned tag) { /* borrowed */
    PyObject **slot = &np.dtype[tag - 64];
    if (*slot == NULL) {
        PyObject *dt = PyObject_CallFunction(np.dtype_cls, "s", dtype_str[tag - 64]);
        if (dt == NULL) return NULL;
        if (*slot == NULL) *slot = dt;
        else Py_DECREF(dt);
    }
    return *slot;
}

/* Reads the byte string of a typed array (tag already consumed) into a new
 * numpy array of the given shape, or 1-D when dims is NULL. One copy: straight
 * from the input into numpy.empty's buffer. */
static PyObject *typed_array(dec *d, uint64_t tag, const uint64_t *dims, int ndim) {
    if (tag < 64 || tag > 87 || dtype_str[tag - 64] == NULL) {
        PyErr_Format(PyExc_ValueError, "hornbeam: unsupported typed array tag %llu", (unsigned long long)tag);
        return NULL;
    }
    size_t isz = tag >= 80 ? (size_t)2 << (tag & 3) : (size_t)1 << (tag & 3);
    unsigned major, ai;
    uint64_t n;
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if (major != 2) return fail("hornbeam: typed array content must be a byte string");
    if (n > left(d)) return fail("hornbeam: byte string length exceeds the input");
    if (n % isz != 0) return fail("hornbeam: typed array length is not a multiple of its element size");
    uint64_t count = n / isz;
    PyObject *shape;
    if (dims == NULL) {
        shape = Py_BuildValue("(K)", (unsigned long long)count);
    } else {
        /* Bound the product by the largest array numpy can address (it checks
         * the same, but with its own message); zero dimensions skip the bound. */
        uint64_t prod = 1;
        int zero = 0;
        for (int i = 0; i < ndim; i++) {
            if (dims[i] == 0) {
                zero = 1;
            } else if (__builtin_mul_overflow(prod, dims[i], &prod) ||
                       prod > (uint64_t)PY_SSIZE_T_MAX / isz) {
                return fail("hornbeam: typed array shape is too large");
            }
        }
        if ((zero ? 0 : prod) != count) return fail("hornbeam: typed array shape does not match its data");
        shape = PyTuple_New(ndim);
        for (int i = 0; shape != NULL && i < ndim; i++) {
            PyObject *x = PyLong_FromUnsignedLongLong(dims[i]);
            if (x == NULL) Py_CLEAR(shape);
            else PyTuple_SET_ITEM(shape, i, x);
        }
    }
    if (shape == NULL) return NULL;
    PyObject *dt = np_ready() < 0 ? NULL : np_dtype((unsigned)tag);
    PyObject *arr = dt ? PyObject_CallFunctionObjArgs(np.empty, shape, dt, NULL) : NULL;
    Py_DECREF(shape);
    if (arr == NULL) return NULL;
    if (n > 0) {
        Py_buffer v;
        if (PyObject_GetBuffer(arr, &v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            Py_DECREF(arr);
            return NULL;
        }
        if ((uint64_t)v.len != n) {
            PyBuffer_Release(&v);
            Py_DECREF(arr);
            PyErr_SetString(PyExc_RuntimeError, "hornbeam: numpy.empty returned an unexpected size");
            return NULL;
        }
        memcpy(v.buf, d->p, (size_t)n);
        PyBuffer_Release(&v);
    }
    d->p += n;
    return arr;
}

/* Tag 40 (RFC 8746 row-major multi-dimensional array): [shape, typed array]. */
static PyObject *md_array(dec *d) {
    unsigned major, ai;
    uint64_t n;
    uint64_t dims[MAX_NDIM];
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if (major != 4 || n != 2) return fail("hornbeam: tag 40 content must be [shape, typed array]");
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if (major != 4) return fail("hornbeam: tag 40 shape must be an array of unsigned integers");
    if (n > MAX_NDIM) return fail("hornbeam: tag 40 array has more than 32 dimensions");
    int ndim = (int)n;
    for (int i = 0; i < ndim; i++) {
        if (head(d, &major, &ai, &dims[i]) < 0) return NULL;
        if (major != 0) return fail("hornbeam: tag 40 shape must be an array of unsigned integers");
    }
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if (major != 6 || n < 64 || n > 87) return fail("hornbeam: tag 40 data must be a typed array");
    return typed_array(d, n, dims, ndim);
}

/* ---- items ------------------------------------------------------------------ */

static PyObject *item(dec *d, int depth, int key);

static PyObject *too_deep(void) { return fail("hornbeam: CBOR nested deeper than 128 levels"); }

/* In key position (key != 0) arrays become tuples, all the way down, so that
 * the key is hashable. */
static PyObject *array(dec *d, uint64_t n, int depth, int as_tuple, int key) {
    if (depth >= HB_MAX_DEPTH) return too_deep();
    if (n > left(d)) return fail("hornbeam: array length exceeds the input");
    PyObject *seq = as_tuple ? PyTuple_New((Py_ssize_t)n) : PyList_New((Py_ssize_t)n);
    if (seq == NULL) return NULL;
    for (Py_ssize_t i = 0; i < (Py_ssize_t)n; i++) {
        PyObject *x = item(d, depth + 1, key);
        if (x == NULL) {
            Py_DECREF(seq); /* unset slots are NULL, which list and tuple deallocation skip */
            return NULL;
        }
        if (as_tuple) PyTuple_SET_ITEM(seq, i, x);
        else PyList_SET_ITEM(seq, i, x);
    }
    return seq;
}

static PyObject *map(dec *d, uint64_t n, int depth) {
    if (depth >= HB_MAX_DEPTH) return too_deep();
    if (n > left(d) / 2) return fail("hornbeam: map length exceeds the input");
    PyObject *dict = PyDict_New();
    if (dict == NULL) return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *k = item(d, depth + 1, 1);
        PyObject *v = k ? item(d, depth + 1, 0) : NULL;
        Py_ssize_t before = PyDict_GET_SIZE(dict);
        int rc = v ? PyDict_SetItem(dict, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc == 0 && PyDict_GET_SIZE(dict) == before) { /* an equal key replaced the earlier value */
            PyErr_SetString(PyExc_ValueError, "hornbeam: duplicate map key");
            rc = -1;
        }
        if (rc < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

static PyObject *bignum(dec *d, int negative) {
    unsigned major, ai;
    uint64_t n;
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if (major != 2) return fail("hornbeam: bignum tag content must be a byte string");
    if (n > left(d)) return fail("hornbeam: byte string length exceeds the input");
    PyObject *v = _PyLong_FromByteArray(d->p, (size_t)n, 0, 0);
    d->p += n;
    if (v == NULL || !negative) return v;
    PyObject *r = PyNumber_Invert(v); /* tag 3 carries -1 - value */
    Py_DECREF(v);
    return r;
}

static PyObject *asgi_scope(dec *d, int depth, int key);

static PyObject *tagged(dec *d, uint64_t tag, int depth, int key) {
    if (tag == 2 || tag == 3) return bignum(d, tag == 3);
    if (tag == HB_TAG_ASGI_SCOPE) return asgi_scope(d, depth, key);
    if (tag == HB_TAG_TUPLE) {
        unsigned major, ai;
        uint64_t n;
        if (head(d, &major, &ai, &n) < 0) return NULL;
        if (major != 4) return fail("hornbeam: tuple tag content must be an array");
        return array(d, n, depth, 1, key);
    }
    if (tag == 40 || (tag >= 64 && tag <= 87)) {
        if (key) return fail("hornbeam: typed array used as a map key");
        return tag == 40 ? md_array(d) : typed_array(d, tag, NULL, 1);
    }
    PyObject *decode = hb_ext_decoder(tag);
    if (decode != NULL) {
        PyObject *c = item(d, depth + 1, key);
        PyObject *r = c ? PyObject_CallOneArg(decode, c) : NULL;
        Py_XDECREF(c);
        Py_DECREF(decode);
        return r;
    }
    PyErr_Format(PyExc_ValueError, "hornbeam: unsupported CBOR tag %llu", (unsigned long long)tag);
    return NULL;
}

static PyObject *simple(uint64_t arg, unsigned ai) {
    unsigned char raw[8];
    double f;
    switch (ai) {
    case 20: Py_RETURN_FALSE;
    case 21: Py_RETURN_TRUE;
    case 22: /* null */
    case 23: /* undefined: Python has no closer value */
        Py_RETURN_NONE;
    case 25:
        raw[0] = (unsigned char)(arg >> 8);
        raw[1] = (unsigned char)arg;
        f = PyFloat_Unpack2((const char *)raw, 0);
        break;
    case 26:
        for (int i = 0; i < 4; i++) raw[i] = (unsigned char)(arg >> (24 - 8 * i));
        f = PyFloat_Unpack4((const char *)raw, 0);
        break;
    case 27:
        for (int i = 0; i < 8; i++) raw[i] = (unsigned char)(arg >> (56 - 8 * i));
        f = PyFloat_Unpack8((const char *)raw, 0);
        break;
    default:
        PyErr_Format(PyExc_ValueError, "hornbeam: unsupported CBOR simple value %llu", (unsigned long long)arg);
        return NULL;
    }
    if (f == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(f);
}

/* Short strings repeat from one message to the next: the keys of an ASGI
 * scope or a WSGI environ, "GET", "http", header names. Each is kept once, in a
 * table of SHORT_SLOTS entries of at most SHORT_MAX bytes (a fixed bound
 * whatever the input), and handed out again when the same bytes
 * come: no allocation, no UTF-8 decode, and a text key is the interned string
 * the app's own literals are, so its dict lookups compare pointers. Only ASCII
 * text is kept (so the bytes compare directly); strings and bytes are both
 * immutable, so sharing one object is safe. The GIL guards the tables. */
#define SHORT_MAX 32
#define SHORT_SLOTS 1024 /* in pairs: each string has two places, the more recent first */
static PyObject *short_text[SHORT_SLOTS], *short_bytes[SHORT_SLOTS];

/* The pair a string's bytes map to; *ascii says whether they are all ASCII. */
static inline unsigned short_pair(const unsigned char *p, size_t n, int *ascii) {
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull, seen = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        seen |= w;
        h = (h ^ w) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, p + i, n - i);
    seen |= w;
    h = (h ^ w) * 0x100000001B3ull;
    h ^= h >> 32;
    *ascii = (seen & 0x8080808080808080ull) == 0;
    return (unsigned)h & (SHORT_SLOTS - 2);
}

/* Looks for a kept string in its pair; a hit in the second place moves to
 * the first. A miss returns NULL and leaves the first place free for the
 * string about to be made (its former holder moves to the second). */
static PyObject *short_find(PyObject **table, unsigned pair, int text, const unsigned char *p, size_t n) {
    for (unsigned i = 0; i < 2; i++) {
        PyObject *o = table[pair + i];
        if (o == NULL) continue;
        int same = text ? (size_t)PyUnicode_GET_LENGTH(o) == n && memcmp(PyUnicode_1BYTE_DATA(o), p, n) == 0
                        : (size_t)PyBytes_GET_SIZE(o) == n && memcmp(PyBytes_AS_STRING(o), p, n) == 0;
        if (same) {
            if (i == 1) {
                table[pair + 1] = table[pair];
                table[pair] = o;
            }
            return Py_NewRef(o);
        }
    }
    Py_XDECREF(table[pair + 1]);
    table[pair + 1] = table[pair];
    table[pair] = NULL;
    return NULL;
}

static PyObject *short_text_of(const unsigned char *p, size_t n) {
    int ascii;
    unsigned pair = short_pair(p, n, &ascii);
    if (!ascii) return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
    PyObject *s = short_find(short_text, pair, 1, p, n);
    if (s != NULL) return s;
    s = PyUnicode_New((Py_ssize_t)n, 127);
    if (s == NULL) return NULL;
    memcpy(PyUnicode_1BYTE_DATA(s), p, n);
    PyUnicode_InternInPlace(&s); /* an equal interned string, if there is one, replaces s */
    short_text[pair] = Py_NewRef(s);
    return s;
}

static PyObject *short_bytes_of(const unsigned char *p, size_t n) {
    int ascii;
    unsigned pair = short_pair(p, n, &ascii);
    PyObject *b = short_find(short_bytes, pair, 0, p, n);
    if (b != NULL) return b;
    b = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    if (b == NULL) return NULL;
    short_bytes[pair] = Py_NewRef(b);
    return b;
}

/* An ASGI scope comes as its values in a fixed order (tag HB_TAG_ASGI_SCOPE):
 * type, http_version, method (or a websocket's subprotocols), scheme, path,
 * raw_path, query_string, root_path, headers, client, server (null: absent).
 * The keys are this file's own interned strings, "asgi" is a copy of one
 * dict, and each short value is first compared with the one that came last in
 * its place, which it nearly always is ("http", "1.1", "GET", the server's
 * address), before the table of short strings is asked. */
enum { SCOPE_FIELDS = 11, SCOPE_CLIENT = 9, SCOPE_SERVER = 10 };
static const char *const scope_key_names[SCOPE_FIELDS] = {
    "type", "http_version", "method", "scheme", "path", "raw_path",
    "query_string", "root_path", "headers", "client", "server",
};
static struct {
    PyObject *keys[SCOPE_FIELDS];
    PyObject *subprotocols, *asgi, *asgi_spec; /* the key, the key, the dict copied */
    PyObject *last[SCOPE_FIELDS];              /* the short value that came last in each place */
} S;

static int scope_ready(void) {
    if (S.asgi_spec != NULL) return 0;
    for (int i = 0; i < SCOPE_FIELDS; i++) {
        Py_XSETREF(S.keys[i], PyUnicode_InternFromString(scope_key_names[i]));
        if (S.keys[i] == NULL) return -1;
    }
    Py_XSETREF(S.subprotocols, PyUnicode_InternFromString("subprotocols"));
    Py_XSETREF(S.asgi, PyUnicode_InternFromString("asgi"));
    if (S.subprotocols == NULL || S.asgi == NULL) return -1;
    S.asgi_spec = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.3");
    return S.asgi_spec == NULL ? -1 : 0;
}

/* The value in place i: the last one there when its bytes are the same. */
static PyObject *scope_value(dec *d, int i, int depth) {
    const unsigned char *at = d->p;
    unsigned major, ai;
    uint64_t n;
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if ((major == 2 || major == 3) && n <= SHORT_MAX && n <= left(d)) {
        PyObject *m = S.last[i];
        int same = m != NULL &&
                   (major == 3 ? PyUnicode_CheckExact(m) && PyUnicode_IS_ASCII(m) &&
                                     (uint64_t)PyUnicode_GET_LENGTH(m) == n && memcmp(PyUnicode_1BYTE_DATA(m), d->p, n) == 0
                               : PyBytes_CheckExact(m) && (uint64_t)PyBytes_GET_SIZE(m) == n &&
                                     memcmp(PyBytes_AS_STRING(m), d->p, n) == 0);
        if (same) {
            d->p += n;
            return Py_NewRef(m);
        }
        d->p = at;
        PyObject *v = item(d, depth + 1, 0);
        if (v != NULL) Py_XSETREF(S.last[i], Py_NewRef(v));
        return v;
    }
    d->p = at;
    return item(d, depth + 1, 0);
}

static PyObject *asgi_scope(dec *d, int depth, int key) {
    if (key) return fail("hornbeam: ASGI scope used as a map key");
    if (depth >= HB_MAX_DEPTH) return too_deep();
    unsigned major, ai;
    uint64_t n;
    if (head(d, &major, &ai, &n) < 0) return NULL;
    if (major != 4 || n != SCOPE_FIELDS) return fail("hornbeam: ASGI scope tag content must be an array of 11");
    if (scope_ready() < 0) return NULL;
    PyObject *scope = PyDict_New();
    if (scope == NULL) return NULL;
    for (int i = 0; i < SCOPE_FIELDS; i++) {
        PyObject *v = scope_value(d, i, depth);
        if (v == NULL) goto fail;
        int rc = 0;
        if (v != Py_None || (i != SCOPE_CLIENT && i != SCOPE_SERVER)) {
            PyObject *k = i == 2 && PyList_CheckExact(v) ? S.subprotocols : S.keys[i];
            rc = PyDict_SetItem(scope, k, v);
        }
        Py_DECREF(v);
        if (rc < 0) goto fail;
        if (i == 0) { /* "asgi" second, as the ASGI spec lists the keys */
            PyObject *spec = PyDict_Copy(S.asgi_spec);
            rc = spec ? PyDict_SetItem(scope, S.asgi, spec) : -1;
            Py_XDECREF(spec);
            if (rc < 0) goto fail;
        }
    }
    return scope;
fail:
    Py_DECREF(scope);
    return NULL;
}

PyObject *hb_short_text(const char *p, size_t n) {
    if (n > SHORT_MAX) return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
    return short_text_of((const unsigned char *)p, n);
}

void hb_decode_forget(void) {
    for (int i = 0; i < SCOPE_FIELDS; i++) {
        Py_CLEAR(S.last[i]);
        Py_CLEAR(S.keys[i]);
    }
    Py_CLEAR(S.subprotocols);
    Py_CLEAR(S.asgi);
    Py_CLEAR(S.asgi_spec);
    for (int i = 0; i < SHORT_SLOTS; i++) {
        Py_CLEAR(short_text[i]);
        Py_CLEAR(short_bytes[i]);
    }
}

static PyObject *item(dec *d, int depth, int key) {
    unsigned major, ai;
    uint64_t arg;
    if (head(d, &major, &ai, &arg) < 0) return NULL;
    switch (major) {
    case 0:
        return PyLong_FromUnsignedLongLong(arg);
    case 1:
        if (arg <= INT64_MAX) return PyLong_FromLongLong(-1 - (long long)arg);
        {
            PyObject *u = PyLong_FromUnsignedLongLong(arg);
            PyObject *r = u ? PyNumber_Invert(u) : NULL;
            Py_XDECREF(u);
            return r;
        }
    case 2: {
        if (arg > left(d)) return fail("hornbeam: byte string length exceeds the input");
        PyObject *r = arg <= SHORT_MAX ? short_bytes_of(d->p, (size_t)arg)
                                       : PyBytes_FromStringAndSize((const char *)d->p, (Py_ssize_t)arg);
        d->p += arg;
        return r;
    }
    case 3: {
        if (arg > left(d)) return fail("hornbeam: text string length exceeds the input");
        PyObject *r = arg <= SHORT_MAX ? short_text_of(d->p, (size_t)arg)
                                       : PyUnicode_DecodeUTF8((const char *)d->p, (Py_ssize_t)arg, "strict");
        d->p += arg;
        if (r == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return fail("hornbeam: invalid UTF-8 in CBOR text string");
        }
        return r;
    }
    case 4:
        return array(d, arg, depth, key, key);
    case 5:
        if (key) return fail("hornbeam: map used as a map key");
        return map(d, arg, depth);
    case 6:
        return tagged(d, arg, depth, key);
    default:
        return simple(arg, ai);
    }
}

/* The top-level item of all of data: args != 0 decodes a call's arguments (an
 * array, or a tuple) straight into a tuple. */
static PyObject *decode_all(const unsigned char *data, size_t len, int args) {
    if (data == NULL || len == 0) return fail("hornbeam: truncated CBOR input");
    dec d = {data, data + len};
    PyObject *r;
    if (args) {
        unsigned major, ai;
        uint64_t n;
        if (head(&d, &major, &ai, &n) < 0) return NULL;
        if (major == 6 && n == HB_TAG_TUPLE && head(&d, &major, &ai, &n) < 0) return NULL; /* a Python tuple */
        if (major != 4) {
            PyErr_SetString(PyExc_TypeError, "hornbeam: call arguments must be a list or a tuple");
            return NULL;
        }
        r = array(&d, n, 0, 1, 0);
    } else {
        r = item(&d, 0, 0);
    }
    if (r != NULL && d.p != d.end) {
        Py_DECREF(r);
        return fail("hornbeam: trailing bytes after CBOR item");
    }
    return r;
}

PyObject *hb_decode_args(const unsigned char *data, size_t len) { return decode_all(data, len, 1); }

PyObject *hb_decode(const unsigned char *data, size_t len) { return decode_all(data, len, 0); }

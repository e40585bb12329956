/* cbor_enc.c: Python -> CBOR. Owns hb_buf, hb_encode and the encoder's numpy
 * cache. The encoder never imports numpy: a process that has not loaded it
 * cannot be holding ndarrays, so sys.modules is the only place we look. */
#include "cbor.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Typed arrays are written with little-endian tags straight from native memory. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cbor_enc.c assumes a little-endian host"
#endif

#define SUPPORTED "None, bool, int, float, str, bytes, list, tuple, dict, numpy.ndarray"
#define NP_DTYPES "uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, float32, float64"

void hb_buf_init(hb_buf *b) {
    b->data = NULL;
    b->len = b->cap = b->limit = 0;
    b->over = 0;
}

void hb_buf_free(hb_buf *b) {
    free(b->data); /* malloc, not PyMem: the buffer outlives the GIL and is freed by Go-side code */
    hb_buf_init(b);
}

static int buf_grow(hb_buf *b, size_t need) {
    if (need > SIZE_MAX - b->len) return PyErr_NoMemory(), -1;
    size_t want = b->len + need, cap = b->cap ? b->cap : 256;
    if (b->limit && want > b->limit) {
        b->over = 1;
        PyErr_Format(PyExc_MemoryError, "hornbeam: the encoded value is over the %zu-byte limit", b->limit);
        return -1;
    }
    if (want / 2 > cap) {
        /* One large piece (a response body, an array): its size and an eighth
         * for what follows, not the next power of two. Doubling gave a 64 KiB
         * body a 128 KiB buffer; a burst of such replies then outgrew the
         * heap that hb_init keeps (M_TRIM_THRESHOLD), which was given back to
         * the kernel and faulted in again for the next burst. */
        cap = want > SIZE_MAX - want / 8 ? want : want + want / 8;
    } else {
        while (cap < want) cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    }
    if (b->limit && cap > b->limit) cap = b->limit;
    unsigned char *p = realloc(b->data, cap);
    if (p == NULL) return PyErr_NoMemory(), -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline int reserve(hb_buf *b, size_t n) {
    return n <= b->cap - b->len ? 0 : buf_grow(b, n);
}

static inline void be16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}
static inline void be32(unsigned char *p, uint32_t v) {
    be16(p, (uint16_t)(v >> 16));
    be16(p + 2, (uint16_t)v);
}
static inline void be64(unsigned char *p, uint64_t v) {
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* Shortest head (preferred serialization); the caller has reserved 9 bytes. */
static inline size_t head_at(unsigned char *p, unsigned major, uint64_t v) {
    unsigned char m = (unsigned char)(major << 5);
    if (v < 24) {
        p[0] = (unsigned char)(m | v);
        return 1;
    }
    if (v <= UINT8_MAX) {
        p[0] = m | 24;
        p[1] = (unsigned char)v;
        return 2;
    }
    if (v <= UINT16_MAX) {
        p[0] = m | 25;
        be16(p + 1, (uint16_t)v);
        return 3;
    }
    if (v <= UINT32_MAX) {
        p[0] = m | 26;
        be32(p + 1, (uint32_t)v);
        return 5;
    }
    p[0] = m | 27;
    be64(p + 1, v);
    return 9;
}

static inline int put_head(hb_buf *b, unsigned major, uint64_t v) {
    if (reserve(b, 9) < 0) return -1;
    b->len += head_at(b->data + b->len, major, v);
    return 0;
}

static inline int put_byte(hb_buf *b, unsigned char c) {
    if (reserve(b, 1) < 0) return -1;
    b->data[b->len++] = c;
    return 0;
}

static int put_string(hb_buf *b, unsigned major, const void *s, size_t n) {
    if (n > (size_t)PY_SSIZE_T_MAX) return PyErr_NoMemory(), -1; /* keeps 9 + n from wrapping */
    if (reserve(b, 9 + n) < 0) return -1;
    b->len += head_at(b->data + b->len, major, n);
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int too_deep(void) {
    PyErr_SetString(PyExc_ValueError, "hornbeam: value nested deeper than 128 levels");
    return -1;
}

static int unsupported(PyObject *o) {
    PyObject *name = PyType_GetQualName(Py_TYPE(o));
    if (name == NULL) return -1;
    PyErr_Format(PyExc_TypeError,
                 "hornbeam: cannot convert object of type '%U' (supported: " SUPPORTED ")", name);
    Py_DECREF(name);
    return -1;
}

/* ---- numpy ---------------------------------------------------------------- */

static struct {
    PyTypeObject *ndarray; /* NULL until numpy has been seen in sys.modules */
    PyTypeObject *generic;
    PyObject *ascontiguousarray;
} np;

/* 1 when numpy is loaded (and cached), else 0; never leaves an exception set. */
static int np_loaded(void) {
    if (np.ndarray != NULL) return 1;
    PyObject *mod = PyDict_GetItemString(PyImport_GetModuleDict(), "numpy"); /* borrowed */
    if (mod == NULL) return 0;
    Py_INCREF(mod);
    PyObject *nd = PyObject_GetAttrString(mod, "ndarray");
    PyObject *gen = nd ? PyObject_GetAttrString(mod, "generic") : NULL;
    PyObject *asc = gen ? PyObject_GetAttrString(mod, "ascontiguousarray") : NULL;
    Py_DECREF(mod);
    /* A numpy still being imported (or blocked with None) is treated as absent. */
    if (asc == NULL || !PyType_Check(nd) || !PyType_Check(gen) || np.ndarray != NULL) {
        PyErr_Clear();
        Py_XDECREF(nd);
        Py_XDECREF(gen);
        Py_XDECREF(asc);
        return np.ndarray != NULL;
    }
    np.generic = (PyTypeObject *)gen;
    np.ascontiguousarray = asc;
    np.ndarray = (PyTypeObject *)nd; /* last: it is the "ready" flag */
    return 1;
}

static int bad_dtype(PyObject *arr) {
    PyObject *dt = PyObject_GetAttrString(arr, "dtype");
    PyObject *s = dt ? PyObject_Str(dt) : NULL;
    Py_XDECREF(dt);
    if (s == NULL) {
        PyErr_Clear();
        if ((s = PyUnicode_FromString("?")) == NULL) return -1;
    }
    PyErr_Format(PyExc_TypeError,
                 "hornbeam: cannot convert numpy.ndarray of dtype %U; supported dtypes: " NP_DTYPES,
                 s);
    Py_DECREF(s);
    return -1;
}

/* RFC 8746 little-endian tag for a buffer's element type, or 0 if unsupported.
 * The buffer format, not dtype attributes, decides: it costs no Python calls.
 * Sizes come from itemsize because numpy's letters ('l' vs 'q') vary by platform. */
static unsigned typed_tag(const Py_buffer *v, int *swap) {
    const char *f = v->format;
    char order = '@';
    if (f == NULL) return 0;
    if (*f != '\0' && strchr("@=<>!", *f) != NULL) order = *f++;
    if (f[0] == '\0' || f[1] != '\0') return 0; /* structured, subarray, complex ("Zd") */
    int ll;
    switch (v->itemsize) {
    case 1: ll = 0; break;
    case 2: ll = 1; break;
    case 4: ll = 2; break;
    case 8: ll = 3; break;
    default: return 0;
    }
    *swap = (order == '>' || order == '!') && ll > 0;
    if (strchr("bhilqn", f[0]) != NULL) return ll == 0 ? 72 : 76 + (unsigned)ll;
    if (strchr("BHILQN", f[0]) != NULL) return ll == 0 ? 64 : 68 + (unsigned)ll;
    if (strchr("efd", f[0]) != NULL && ll > 0) return 83 + (unsigned)ll;
    return 0; /* '?' bool, 'O' object, 'g' long double, 'w' str, ... */
}

/* Big-endian input is byte-swapped into a little-endian copy, so the peer gets
 * (and a round trip yields) the native little-endian dtype, not the original. */
static int enc_ndarray(PyObject *arr, hb_buf *b) {
    PyObject *copy = NULL;
    Py_buffer v;
    unsigned tag;
    for (;;) {
        if (PyObject_GetBuffer(arr, &v, PyBUF_RECORDS_RO) < 0) {
            /* numpy refuses buffers for datetime and similar dtypes */
            if (!PyErr_ExceptionMatches(PyExc_ValueError) && !PyErr_ExceptionMatches(PyExc_BufferError) &&
                !PyErr_ExceptionMatches(PyExc_TypeError))
                goto fail;
            PyErr_Clear();
            bad_dtype(arr);
            goto fail;
        }
        int swap = 0;
        tag = typed_tag(&v, &swap);
        if (tag == 0) {
            PyBuffer_Release(&v);
            bad_dtype(arr);
            goto fail;
        }
        if (!swap && PyBuffer_IsContiguous(&v, 'C')) break;
        PyBuffer_Release(&v);
        if (copy != NULL) { /* a fresh copy must already be contiguous little-endian */
            PyErr_SetString(PyExc_RuntimeError, "hornbeam: could not make a contiguous array copy");
            goto fail;
        }
        if (swap) {
            PyObject *dt = PyObject_GetAttrString(arr, "dtype");
            PyObject *le = dt ? PyObject_CallMethod(dt, "newbyteorder", "s", "<") : NULL;
            Py_XDECREF(dt);
            copy = le ? PyObject_CallMethod(arr, "astype", "Os", le, "C") : NULL;
            Py_XDECREF(le);
        } else {
            copy = PyObject_CallOneArg(np.ascontiguousarray, arr);
        }
        if (copy == NULL) goto fail;
        arr = copy;
    }
    int rc = 0;
    if (v.ndim != 1) {
        rc = put_head(b, 6, 40) || put_byte(b, 0x82) || put_head(b, 4, (uint64_t)v.ndim);
        for (int i = 0; rc == 0 && i < v.ndim; i++) rc = put_head(b, 0, (uint64_t)v.shape[i]);
    }
    if (rc == 0) rc = put_head(b, 6, tag) || put_string(b, 2, v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    Py_XDECREF(copy);
    return rc ? -1 : 0;
fail:
    Py_XDECREF(copy);
    return -1;
}

static int enc_obj(PyObject *o, hb_buf *b, int depth);

/* numpy scalars travel as their Python equivalents; item() results that are
 * not plain scalars (longdouble stays a numpy scalar, datetime64 becomes a
 * datetime) are refused under the numpy type's own name. */
static int enc_npscalar(PyObject *o, hb_buf *b, int depth) {
    PyObject *v = PyObject_CallMethod(o, "item", NULL);
    if (v == NULL) return -1;
    int rc;
    if ((v == Py_None || PyBool_Check(v) || PyLong_Check(v) || PyFloat_Check(v) || PyUnicode_Check(v) ||
         PyBytes_Check(v)) &&
        !PyObject_TypeCheck(v, np.generic))
        rc = enc_obj(v, b, depth);
    else
        rc = unsupported(o);
    Py_DECREF(v);
    return rc;
}

/* ---- Python types ---------------------------------------------------------- */

static int enc_bignum(hb_buf *b, uint64_t tag, PyObject *n) { /* n >= 2**64 */
    size_t bits = _PyLong_NumBits(n);
    if (bits == (size_t)-1 && PyErr_Occurred()) return -1;
    size_t nbytes = (bits + 7) / 8;
    if (put_head(b, 6, tag) < 0 || put_head(b, 2, nbytes) < 0 || reserve(b, nbytes) < 0) return -1;
#if PY_VERSION_HEX >= 0x030D0000
    if (_PyLong_AsByteArray((PyLongObject *)n, b->data + b->len, nbytes, 0, 0, 1) < 0) return -1;
#else
    if (_PyLong_AsByteArray((PyLongObject *)n, b->data + b->len, nbytes, 0, 0) < 0) return -1;
#endif
    b->len += nbytes;
    return 0;
}

static int enc_long(PyObject *o, hb_buf *b) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) {
        if (v == -1 && PyErr_Occurred()) return -1;
        return v >= 0 ? put_head(b, 0, (uint64_t)v) : put_head(b, 1, (uint64_t)(-1 - v));
    }
    /* Major 0/1 reach 2**64-1 and -2**64; only beyond that is a bignum needed.
     * Negative n is carried as ~n = -1 - n; PyNumber_Index first makes it an exact
     * int so a subclass's __invert__ (IntFlag) cannot change the value. */
    PyObject *n;
    if (overflow > 0) {
        n = Py_NewRef(o);
    } else {
        PyObject *x = PyNumber_Index(o);
        if (x == NULL) return -1;
        n = PyNumber_Invert(x);
        Py_DECREF(x);
        if (n == NULL) return -1;
    }
    int rc;
    unsigned long long u = PyLong_AsUnsignedLongLong(n);
    if (u != (unsigned long long)-1 || !PyErr_Occurred()) {
        rc = put_head(b, overflow > 0 ? 0 : 1, u);
    } else if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        rc = enc_bignum(b, overflow > 0 ? 2 : 3, n);
    } else {
        rc = -1;
    }
    Py_DECREF(n);
    return rc;
}

static inline int enc_double(hb_buf *b, double d) {
    if (reserve(b, 9) < 0) return -1;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    b->data[b->len] = 0xfb;
    be64(b->data + b->len + 1, u);
    b->len += 9;
    return 0;
}

static inline int enc_str(PyObject *o, hb_buf *b) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    return s == NULL ? -1 : put_string(b, 3, s, (size_t)n);
}

/* Items and dict entries are held while encoding because numpy conversions
 * can run Python code that mutates the container being walked. */
static int enc_list(PyObject *o, hb_buf *b, int depth) {
    if (depth >= HB_MAX_DEPTH) return too_deep();
    Py_ssize_t n = PyList_GET_SIZE(o);
    if (put_head(b, 4, (uint64_t)n) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(o)) {
            PyErr_SetString(PyExc_RuntimeError, "hornbeam: list changed size during encoding");
            return -1;
        }
        PyObject *it = Py_NewRef(PyList_GET_ITEM(o, i));
        int rc = enc_obj(it, b, depth + 1);
        Py_DECREF(it);
        if (rc < 0) return -1;
    }
    return 0;
}

static int enc_tuple(PyObject *o, hb_buf *b, int depth) {
    if (depth >= HB_MAX_DEPTH) return too_deep();
    Py_ssize_t n = PyTuple_GET_SIZE(o);
    if (put_head(b, 6, HB_TAG_TUPLE) < 0 || put_head(b, 4, (uint64_t)n) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++)
        if (enc_obj(PyTuple_GET_ITEM(o, i), b, depth + 1) < 0) return -1;
    return 0;
}

static int enc_dict(PyObject *o, hb_buf *b, int depth) {
    if (depth >= HB_MAX_DEPTH) return too_deep();
    Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0, seen = 0;
    PyObject *k, *v;
    if (put_head(b, 5, (uint64_t)n) < 0) return -1;
    while (seen < n && PyDict_Next(o, &pos, &k, &v)) {
        seen++;
        Py_INCREF(k);
        Py_INCREF(v);
        int rc = enc_obj(k, b, depth + 1);
        if (rc == 0) rc = enc_obj(v, b, depth + 1);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0) return -1;
    }
    if (seen != n || PyDict_GET_SIZE(o) != n) { /* the head already promised n entries */
        PyErr_SetString(PyExc_RuntimeError, "hornbeam: dict changed size during encoding");
        return -1;
    }
    return 0;
}

static int enc_memoryview(PyObject *o, hb_buf *b) {
    Py_buffer v;
    if (PyObject_GetBuffer(o, &v, PyBUF_FULL_RO) < 0) return -1;
    int rc;
    size_t n = (size_t)v.len;
    if (PyBuffer_IsContiguous(&v, 'C')) {
        rc = put_string(b, 2, v.buf, n);
    } else { /* strided views are gathered straight into the output */
        rc = put_head(b, 2, n) || reserve(b, n) || PyBuffer_ToContiguous(b->data + b->len, &v, v.len, 'C');
        if (rc == 0) b->len += n;
    }
    PyBuffer_Release(&v);
    return rc ? -1 : 0;
}

/* A registered class: its tag over the list __cbor__() returns. */
static int enc_ext(PyObject *o, uint64_t tag, hb_buf *b, int depth) {
    if (depth >= HB_MAX_DEPTH) return too_deep();
    PyObject *c = PyObject_CallMethod(o, "__cbor__", NULL);
    if (c == NULL) return -1;
    int rc = -1;
    if (!PyList_CheckExact(c))
        PyErr_Format(PyExc_TypeError, "hornbeam: %.100s.__cbor__() must return a list", Py_TYPE(o)->tp_name);
    else if (put_head(b, 6, tag) == 0)
        rc = enc_list(c, b, depth + 1);
    Py_DECREF(c);
    return rc;
}

/* Subclasses, bytes-likes, registered classes and numpy: off the hot path. */
static int enc_other(PyObject *o, hb_buf *b, int depth) {
    uint64_t tag;
    if (hb_ext_tag_of(o, &tag)) return enc_ext(o, tag, b, depth);
    if (PyLong_Check(o)) return enc_long(o, b); /* bool never gets here: True/False are singletons */
    if (PyFloat_Check(o)) return enc_double(b, PyFloat_AS_DOUBLE(o));
    if (PyUnicode_Check(o)) return enc_str(o, b);
    if (PyBytes_Check(o)) return put_string(b, 2, PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    if (PyByteArray_Check(o))
        return put_string(b, 2, PyByteArray_AS_STRING(o), (size_t)PyByteArray_GET_SIZE(o));
    if (PyMemoryView_Check(o)) return enc_memoryview(o, b);
    if (PyList_Check(o)) return enc_list(o, b, depth);
    if (PyTuple_Check(o)) return enc_tuple(o, b, depth);
    if (PyDict_Check(o)) return enc_dict(o, b, depth);
    if (np_loaded()) {
        if (PyObject_TypeCheck(o, np.ndarray)) return enc_ndarray(o, b);
        if (PyObject_TypeCheck(o, np.generic)) return enc_npscalar(o, b, depth);
    }
    return unsupported(o);
}

static int enc_obj(PyObject *o, hb_buf *b, int depth) {
    if (PyUnicode_CheckExact(o)) return enc_str(o, b);
    if (PyLong_CheckExact(o)) return enc_long(o, b);
    if (PyFloat_CheckExact(o)) return enc_double(b, PyFloat_AS_DOUBLE(o));
    if (PyDict_CheckExact(o)) return enc_dict(o, b, depth);
    if (PyList_CheckExact(o)) return enc_list(o, b, depth);
    if (PyTuple_CheckExact(o)) return enc_tuple(o, b, depth);
    if (o == Py_None) return put_byte(b, 0xf6);
    if (o == Py_True) return put_byte(b, 0xf5);
    if (o == Py_False) return put_byte(b, 0xf4);
    if (PyBytes_CheckExact(o)) return put_string(b, 2, PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    return enc_other(o, b, depth);
}

int hb_encode(PyObject *obj, hb_buf *out) {
    size_t start = out->len;
    if (enc_obj(obj, out, 0) < 0) {
        out->len = start; /* drop the partial item so out stays a valid sequence */
        return -1;
    }
    return 0;
}

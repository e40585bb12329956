/* cbor_ext.c: Python classes that travel as CBOR tags (hornbeam_erlang.Pid).
 *
 * _hornbeam.register_tag(cls, tag, decode) makes instances of exactly cls
 * encode as tag `tag` over the list their __cbor__() returns, and the tag
 * decode as decode(content). Only tags of our private block 0x484200xx are
 * accepted, so no standard tag can be redirected to Python code. The table
 * holds a reference to each class and decoder for the interpreter's life. */
#include "cbor.h"

#define HB_EXT_MAX 8
#define HB_EXT_BLOCK 0x484200u

static struct {
    PyTypeObject *type;
    uint64_t tag;
    PyObject *decode;
} ext[HB_EXT_MAX];
static int n_ext;

int hb_ext_tag_of(PyObject *o, uint64_t *tag) {
    for (int i = 0; i < n_ext; i++) {
        if (Py_TYPE(o) == ext[i].type) {
            *tag = ext[i].tag;
            return 1;
        }
    }
    return 0;
}

/* New reference to the decoder of tag, or NULL (no exception set). The first
 * unknown tag of the block imports hornbeam_erlang, which registers its
 * classes, so a Pid decodes in code that never imported it. */
PyObject *hb_ext_decoder(uint64_t tag) {
    static int imported;
    if ((tag >> 8) != HB_EXT_BLOCK) return NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_ext; i++)
            if (ext[i].tag == tag) return Py_NewRef(ext[i].decode);
        if (imported) break;
        imported = 1;
        PyObject *m = PyImport_ImportModule("hornbeam_erlang");
        if (m == NULL) PyErr_Clear();
        Py_XDECREF(m);
    }
    return NULL;
}

PyObject *hb_ext_register(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyType_Check(args[0]) || !PyLong_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "register_tag(cls: type, tag: int, decode: callable)");
        return NULL;
    }
    unsigned long long tag = PyLong_AsUnsignedLongLong(args[1]);
    if (tag == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if ((tag >> 8) != HB_EXT_BLOCK || tag == HB_TAG_TUPLE) {
        PyErr_Format(PyExc_ValueError, "register_tag(): tag %llu is not in hornbeam's private block", tag);
        return NULL;
    }
    for (int i = 0; i < n_ext; i++) {
        if (ext[i].type == (PyTypeObject *)args[0] || ext[i].tag == tag) {
            Py_SETREF(ext[i].type, (PyTypeObject *)Py_NewRef(args[0]));
            Py_SETREF(ext[i].decode, Py_NewRef(args[2]));
            ext[i].tag = tag;
            Py_RETURN_NONE;
        }
    }
    if (n_ext == HB_EXT_MAX) {
        PyErr_SetString(PyExc_RuntimeError, "register_tag(): too many registered classes");
        return NULL;
    }
    ext[n_ext].type = (PyTypeObject *)Py_NewRef(args[0]);
    ext[n_ext].decode = Py_NewRef(args[2]);
    ext[n_ext].tag = tag;
    n_ext++;
    Py_RETURN_NONE;
}

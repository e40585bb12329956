/* cbor.h: the value codec between Python objects and CBOR (RFC 8949), the wire
 * format of every argument, result and message that crosses the Go boundary.
 * Encoding lives in cbor_enc.c (with hb_buf), decoding in cbor_dec.c. The
 * decoder treats its input as untrusted: bounded depth, no over-reads, and no
 * allocation larger than the input justifies. */
#ifndef HB_CBOR_H
#define HB_CBOR_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>
#include <stddef.h>

/* malloc'd, grows; with limit set, growing past it fails (over set, MemoryError
 * raised) before any memory for the rest is taken. */
typedef struct { unsigned char *data; size_t len, cap, limit; int over; } hb_buf;
void hb_buf_init(hb_buf *b);
void hb_buf_free(hb_buf *b);
/* Append the CBOR encoding of obj to out. GIL held. Returns 0, or -1 with a Python exception set. */
int hb_encode(PyObject *obj, hb_buf *out);
/* Decode exactly one CBOR item that must span all of data[0:len]. GIL held. New reference, or NULL with a
   Python exception set (ValueError for malformed/limit-exceeding input; the message starts with "hornbeam: "). */
PyObject *hb_decode(const unsigned char *data, size_t len);
/* The arguments of a call: a CBOR array, decoded as a tuple (TypeError for
   anything else). GIL held. New reference, or NULL with an exception set. */
PyObject *hb_decode_args(const unsigned char *data, size_t len);
/* A str from UTF-8 that a name (a module, a function) is likely to repeat:
   short ASCII ones come interned from the decoder's table. GIL held. */
PyObject *hb_short_text(const char *p, size_t n);
/* Drops the decoder's table of short strings; before the interpreter ends. GIL held. */
void hb_decode_forget(void);
#define HB_MAX_DEPTH 128          /* nesting limit both ways */
#define HB_TAG_TUPLE 1212284929u  /* 0x48420001: our private tag (FCFS range) for Python tuples */
#define HB_TAG_ASGI_SCOPE 0x48420101u /* an ASGI scope as values in a fixed order (cbor_dec.c) */
/* Classes registered to travel as tags of the block 0x484200xx (cbor_ext.c). */
int hb_ext_tag_of(PyObject *o, uint64_t *tag);
PyObject *hb_ext_decoder(uint64_t tag);
PyObject *hb_ext_register(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

#endif

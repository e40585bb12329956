/* interp.c: interpreter lifecycle (init, the main thread's jobs, finalize) and the
 * thread states of the threads Go lends to Python. */
#include "bridge.h"
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* Written once by hb_init, before the threads that read it exist. */
static unsigned long g_main_tid;

unsigned long hb_main_tid(void) { return g_main_tid; }

static char *status_msg(PyStatus st, const char *what) {
    const char *m = st.err_msg ? st.err_msg : "unknown error";
    size_t n = strlen(what) + strlen(m) + 4;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s: %s", what, m);
    return r;
}

static char *exc_msg(const char *what) {
    hb_error e;
    hb_error_capture(&e);
    size_t n = strlen(what) + strlen(e.traceback) + strlen(e.type) + strlen(e.message) + 8;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s: %s: %s\n%s", what, e.type, e.message, e.traceback);
    hb_error_free(&e);
    return r;
}

/* Runs after Py_Initialize: sys.path, sys.executable and the multiprocessing start
 * method. Forking a process that runs the Go runtime leaves a child without Go's
 * threads, so multiprocessing must spawn fresh interpreters instead. */
static const char *BOOT =
    "import sys, os\n"
    "sys.path[0:0] = _hb_paths\n"
    "if _hb_venv:\n"
    "    _exe = os.path.join(_hb_venv, 'bin', 'python')\n"
    "else:\n"
    "    _exe = os.path.join(sys.base_exec_prefix, 'bin', 'python%d.%d' % sys.version_info[:2])\n"
    "if os.path.exists(_exe):\n"
    "    sys.executable = _exe\n"
    "    sys._base_executable = os.path.join(sys.base_exec_prefix, 'bin', 'python%d.%d' % sys.version_info[:2])\n"
    "import multiprocessing\n"
    "multiprocessing.set_start_method('spawn', force=True)\n";

char *hb_init(const hb_init_opts *o, PyThreadState **main_ts) {
    /* Results wait in a queue until Go takes a batch (loop.c), and response
     * bodies stay in C memory until they are written, so a burst of large
     * replies is alive at once and then freed together. With glibc's
     * defaults each burst went back to the kernel (trimmed, or mapped and
     * unmapped) and the next one faulted every page in again: half the CPU
     * of a node serving 64 KiB responses. With 8 MiB kept, 64 connections
     * fetching 256 KiB each still outgrew it: 7.6 page faults and 3.2 times
     * the CPU a request, against 64 MiB kept. So keep up to 64 MiB of freed
     * heap per arena (the most glibc's own adaptive threshold would keep),
     * and map only blocks of 4 MiB and more. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if (PyImport_AppendInittab("_hornbeam", hb_module_init) < 0)
        return strdup("pybridge: cannot register the _hornbeam module");

    PyConfig c;
    PyConfig_InitPythonConfig(&c);
    c.install_signal_handlers = 0; /* Go owns signals */
    c.parse_argv = 0;
    c.safe_path = 1; /* hb_run_main puts the script's directory on sys.path itself */
    c.faulthandler = 0; /* its SIGSEGV handler would take over Go's */
    PyStatus st = PyConfig_SetBytesArgv(&c, o->argc, (char *const *)o->argv);
    if (PyStatus_Exception(st)) goto fail;
    if (o->executable != NULL) {
        /* A venv's python makes getpath find pyvenv.cfg, as python3 itself would. */
        st = PyConfig_SetBytesString(&c, &c.executable, o->executable);
        if (PyStatus_Exception(st)) goto fail;
    }
    st = Py_InitializeFromConfig(&c);
    if (PyStatus_Exception(st)) goto fail;
    PyConfig_Clear(&c);
    g_main_tid = PyThread_get_thread_ident();

    PyObject *paths = PyList_New(0), *g = PyDict_New();
    char *err = NULL;
    if (paths == NULL || g == NULL) {
        err = exc_msg("pybridge: init");
        goto out;
    }
    for (int i = 0; i < o->npath; i++) {
        PyObject *p = PyUnicode_DecodeFSDefault(o->path[i]);
        if (p == NULL || PyList_Append(paths, p) < 0) {
            Py_XDECREF(p);
            err = exc_msg("pybridge: sys.path");
            goto out;
        }
        Py_DECREF(p);
    }
    PyObject *venv = o->venv ? PyUnicode_DecodeFSDefault(o->venv) : Py_NewRef(Py_None);
    if (venv == NULL || PyDict_SetItemString(g, "_hb_paths", paths) < 0 ||
        PyDict_SetItemString(g, "_hb_venv", venv) < 0 ||
        PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0) {
        Py_XDECREF(venv);
        err = exc_msg("pybridge: init");
        goto out;
    }
    Py_DECREF(venv);
    PyObject *r = PyRun_String(BOOT, Py_file_input, g, g);
    if (r == NULL) err = exc_msg("pybridge: bootstrap");
    Py_XDECREF(r);
out:
    Py_XDECREF(paths);
    Py_XDECREF(g);
    *main_ts = PyEval_SaveThread();
    return err;
fail:
    PyConfig_Clear(&c);
    return status_msg(st, "pybridge: Python init");
}

hb_worker *hb_worker_new(void) {
    hb_inline_forget_thread();
    hb_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    /* Created on the thread that will use it, so PyGILState_* (used by numpy,
     * torch and friends when they release the GIL) find this same state. */
    w->ts = PyThreadState_New(PyInterpreterState_Main());
    w->tid = PyThread_get_thread_ident();
    return w;
}

void hb_worker_delete(hb_worker *w) {
    PyEval_RestoreThread(w->ts);
    PyThreadState_Clear(w->ts);
    PyThreadState_DeleteCurrent();
    free(w);
}

void hb_interrupt_thread(unsigned long tid, int exc_kind) {
    PyObject *exc = exc_kind == 1 ? PyExc_TimeoutError
                  : exc_kind == 2 ? PyExc_SystemExit
                                  : PyExc_KeyboardInterrupt;
    PyThreadState_SetAsyncExc(tid, exc);
}

/* The exit status of an uncaught SystemExit, as python3 computes it. */
static int exit_status(PyObject *exc) {
    PyObject *code = PyObject_GetAttrString(exc, "code");
    int rc = 1;
    if (code == NULL) {
        PyErr_Clear();
    } else if (code == Py_None) {
        rc = 0;
    } else if (PyLong_Check(code)) {
        rc = (int)PyLong_AsLong(code);
        if (rc == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            rc = 1;
        }
    } else {
        PyObject *s = PyObject_Str(code);
        if (s != NULL) {
            PySys_FormatStderr("%U\n", s);
            Py_DECREF(s);
        } else {
            PyErr_Clear();
        }
    }
    Py_XDECREF(code);
    return rc;
}

static const char *RUN_SCRIPT =
    "import runpy, sys, os\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(_hb_target)))\n"
    "runpy.run_path(_hb_target, run_name='__main__')\n";
static const char *RUN_MODULE =
    "import runpy, sys, os\n"
    "sys.path.insert(0, os.getcwd())\n"
    "runpy._run_module_as_main(_hb_target, alter_argv=True)\n";
static const char *RUN_CODE =
    "import sys, os\n"
    "sys.path.insert(0, '')\n"
    "exec(compile(_hb_target, '<string>', 'exec'), sys.modules['__main__'].__dict__)\n";

int hb_run_main(PyThreadState *ts, int kind, const char *target) {
    PyEval_RestoreThread(ts);
    hb_sigint_setup();
    int rc = 0;
    PyObject *g = PyDict_New();
    PyObject *t = PyUnicode_DecodeFSDefault(target);
    if (g == NULL || t == NULL || PyDict_SetItemString(g, "_hb_target", t) < 0 ||
        PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0) {
        PyErr_Print();
        rc = 1;
    } else {
        const char *src = kind == 0 ? RUN_SCRIPT : kind == 1 ? RUN_MODULE : RUN_CODE;
        PyObject *r = PyRun_String(src, Py_file_input, g, g);
        if (r != NULL) {
            Py_DECREF(r);
        } else if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
            PyObject *exc = hb_take_exception();
            rc = exit_status(exc);
            Py_XDECREF(exc);
        } else {
            int interrupted = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
            PyErr_Print();
            rc = interrupted ? 130 : 1;
        }
    }
    Py_XDECREF(t);
    Py_XDECREF(g);
    PyObject *out = PySys_GetObject("stdout"); /* borrowed */
    if (out != NULL) {
        PyObject *r = PyObject_CallMethod(out, "flush", NULL);
        if (r == NULL) PyErr_Clear();
        Py_XDECREF(r);
    }
    PyEval_SaveThread();
    return rc;
}

void hb_wait_threads(PyThreadState *ts) {
    PyEval_RestoreThread(ts);
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *mod = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (mod != NULL) {
        PyObject *r = PyObject_CallMethod(mod, "_shutdown", NULL);
        if (r == NULL) PyErr_WriteUnraisable(mod);
        Py_XDECREF(r);
        Py_DECREF(mod);
    }
    PyErr_Clear();
    PyEval_SaveThread();
}

int hb_finalize(PyThreadState *ts) {
    PyEval_RestoreThread(ts);
    hb_decode_forget();
    hb_httpcycle_forget();
    hb_call_forget();
    return Py_FinalizeEx();
}

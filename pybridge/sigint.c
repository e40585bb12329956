/* sigint.c: Ctrl-C for a script that runs on the main thread, as python3 has
 * it: KeyboardInterrupt, even in a blocking call such as time.sleep. */
#include "bridge.h"
#include <pthread.h>
#include <signal.h>

static int g_sigint_ready;

/* Makes Python's SIGINT handler the one Python runs (default_int_handler:
 * KeyboardInterrupt) while the process's handler stays Go's: Go takes the
 * signal and passes it on with hb_sigint_main. Main thread, GIL held. */
void hb_sigint_setup(void) {
    struct sigaction go_sa;
    if (sigaction(SIGINT, NULL, &go_sa) != 0) return;
    PyObject *mod = PyImport_ImportModule("signal");
    PyObject *h = mod != NULL ? PyObject_GetAttrString(mod, "default_int_handler") : NULL;
    PyObject *r = h != NULL ? PyObject_CallMethod(mod, "signal", "iO", SIGINT, h) : NULL;
    if (r == NULL) {
        PyErr_Clear();
    } else {
        __atomic_store_n(&g_sigint_ready, 1, __ATOMIC_RELEASE);
    }
    Py_XDECREF(r);
    Py_XDECREF(h);
    Py_XDECREF(mod);
    sigaction(SIGINT, &go_sa, NULL); /* signal.signal replaced Go's handler */
}

/* Simulates SIGINT for Python (async-signal-safe, no GIL needed), and sends
 * the main thread a signal Go tolerates anywhere (SIGURG, its preemption
 * signal) so that a blocking system call there returns EINTR and Python
 * runs the handler. Returns 0 when hb_sigint_setup did not succeed. */
int hb_sigint_main(void) {
    if (!__atomic_load_n(&g_sigint_ready, __ATOMIC_ACQUIRE)) return 0;
    PyErr_SetInterruptEx(SIGINT);
    pthread_kill((pthread_t)hb_main_tid(), SIGURG);
    return 1;
}

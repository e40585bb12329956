/* pool.c: the pool threads that run synchronous calls (see bridge.h).
 *
 * Each pool thread enters hb_pool_run once and stays in C until its pool
 * closes or it is surplus: it takes calls from the shared queue, runs a batch
 * of them under one hold of the GIL, hands each result to the loop's results
 * queue, and parks on a futex when the queue is empty. Goroutines append to the
 * queue and wake a parked thread without calling into C (pool.go); the elastic
 * accounting (threads lost to calls whose callers gave up) lives here, under
 * the same lock, so that a call's end and its caller's departure cannot race. */
#include "bridge.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Bounds of one thread's run of queued calls under one hold of the GIL, so
 * that other Python threads do not starve. */
#define MAX_BATCH 64
#define MAX_BATCH_NS (2 * 1000 * 1000)
/* How long a surplus thread idles before it exits, so that a pool that grew
 * for stuck calls shrinks back without thrashing under load. */
#define IDLE_EXIT_S 2

/* The calling pool thread, for hb_pool_current. */
static _Thread_local hb_worker *current;

uint64_t hb_pool_current(void) { return current != NULL ? current->job : 0; }

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void futex_wake(uint32_t *addr, int n) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Waits while *addr is seen, at most timeout (NULL: no limit); 1 on timeout. */
static int futex_wait(uint32_t *addr, uint32_t seen, const struct timespec *timeout) {
    long rc = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, seen, timeout, NULL, 0);
    return rc < 0 && errno == ETIMEDOUT;
}

hb_pool *hb_pool_new(int target, int max, int64_t spin_ns) {
    hb_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->arena = malloc(HB_ARENA_CAP);
    if (p->arena == NULL || hb_grow((void **)&p->items, &p->cap, sizeof(hb_pjob)) < 0) {
        free(p->arena);
        free(p);
        return NULL;
    }
    p->arena_cap = HB_ARENA_CAP;
    p->target = target;
    p->max = max;
    p->total = target;
    p->spin_ns = spin_ns;
    return p;
}

int hb_pool_submit(hb_pool *p, uint64_t id, const char *mod, size_t modlen, const char *fn,
                   size_t fnlen, const unsigned char *args, size_t argslen, size_t limit,
                   int go_args) {
    char *block = malloc(modlen + fnlen + (go_args ? 0 : argslen) + 1);
    if (block == NULL) return -1;
    memcpy(block, mod, modlen);
    memcpy(block + modlen, fn, fnlen);
    if (!go_args && argslen) memcpy(block + modlen + fnlen, args, argslen);
    hb_spin_lock(&p->lock);
    int rc = 0;
    if (p->closed) {
        rc = -2;
    } else if (p->len == p->cap && p->head > 0) {
        /* Room at the front: move the queue there (zeroing what it leaves,
         * as Go writes pointer fields into this array). */
        size_t n = p->len - p->head;
        memmove(p->items, p->items + p->head, n * sizeof(hb_pjob));
        memset(p->items + n, 0, p->head * sizeof(hb_pjob));
        p->head = 0;
        p->len = n;
    } else if (p->len == p->cap && hb_grow((void **)&p->items, &p->cap, sizeof(hb_pjob)) < 0) {
        rc = -1;
    }
    if (rc == 0) {
        p->items[p->len++] = (hb_pjob){
            .id = id,
            .mod = block,
            .modlen = modlen,
            .fn = block + modlen,
            .fnlen = fnlen,
            .args = go_args ? (unsigned char *)args : (unsigned char *)block + modlen + fnlen,
            .argslen = argslen,
            .limit = limit,
            .go_args = go_args,
        };
    }
    hb_spin_unlock(&p->lock);
    if (rc != 0) free(block);
    return rc;
}

/* lose_locked counts one more lost thread and starts the count of a
 * replacement while fewer than target threads are available and max allows. */
static int lose_locked(hb_pool *p) {
    p->lost++;
    int flags = 0;
    if (!p->closed && p->total - p->lost < p->target && p->total < p->max) {
        p->total++;
        flags |= HB_POOL_GROW;
    } else if (p->total - p->lost < p->target && !p->at_max) {
        p->at_max = 1;
        flags |= HB_POOL_FULL;
    }
    return flags;
}

static void regain_locked(hb_pool *p) {
    p->lost--;
    if (p->total - p->lost >= p->target) p->at_max = 0;
}

int hb_pool_lose(hb_pool *p) {
    hb_spin_lock(&p->lock);
    int flags = lose_locked(p);
    hb_spin_unlock(&p->lock);
    return flags;
}

void hb_pool_regain(hb_pool *p) {
    hb_spin_lock(&p->lock);
    regain_locked(p);
    hb_spin_unlock(&p->lock);
}

int hb_pool_abandon(hb_pool *p, uint64_t id, hb_worker **w, int *lose) {
    int rc = 0;
    hb_spin_lock(&p->lock);
    for (size_t i = p->head; i < p->len; i++) {
        if (p->items[i].id == id && !p->items[i].abandoned) {
            p->items[i].abandoned = 1;
            rc = HB_POOL_DROPPED;
            break;
        }
    }
    for (hb_worker *x = p->workers; rc == 0 && x != NULL; x = x->next) {
        if (x->pool_job != id || x->lost || x->dropped) continue;
        if (!x->running) {
            /* Taken, but its thread still waits for the GIL: it never runs. */
            x->dropped = 1;
            rc = HB_POOL_DROPPED;
        } else {
            /* Python blocked in C (a sleep, a socket, a model) does not see
             * the interrupt until it returns: the thread is not available. */
            x->lost = 1;
            *w = x;
            *lose = lose_locked(p);
            rc = HB_POOL_LOST;
        }
    }
    hb_spin_unlock(&p->lock);
    return rc;
}

/* unpark unlists the thread that parked last, if any, and marks it woken;
 * lock held. The caller wakes it after unlocking. */
static hb_worker *unpark(hb_pool *p) {
    hb_worker *w = p->parked;
    if (w != NULL) {
        p->parked = w->parked_next;
        w->parked = 0;
        __atomic_store_n(&w->wake, 1, __ATOMIC_RELEASE);
    }
    return w;
}

/* take pops the oldest call that was not abandoned into *j, lock held; gil
 * says that the thread holds the GIL, so the call runs from now on. A call in
 * the arena is copied into buf (HB_ARENA_MAX_COPY bytes) and its arena bytes
 * released: calls leave the queue in the order they were reserved, so the
 * arena's head follows them. */
static int take(hb_pool *p, hb_worker *w, hb_pjob *j, unsigned char *buf, int gil) {
    while (p->head < p->len) {
        hb_pjob *it = &p->items[p->head++];
        int ok = !it->abandoned;
        if (ok && it->in_arena) {
            size_t n = it->modlen + it->fnlen + it->argslen; /* at most HB_ARENA_MAX_COPY */
            memcpy(buf, it->mod, n);
            *j = *it;
            j->mod = (char *)buf;
            j->fn = (char *)buf + it->modlen;
            j->args = buf + it->modlen + it->fnlen;
        } else if (ok) {
            *j = *it; /* the block moves to j */
        } else if (!it->in_arena) {
            free(it->mod);
        }
        if (it->in_arena) {
            p->arena_head = it->arena_end;
            p->arena_used -= it->arena_used;
        }
        /* Zeroed: Go writes pointer fields into this array, and its write
         * barrier may read the value it overwrites (args in Go memory that
         * has since been unpinned and freed). */
        memset(it, 0, sizeof *it);
        if (p->head == p->len) p->head = p->len = 0;
        if (ok) {
            w->pool_job = j->id;
            w->running = gil;
            return 1;
        }
    }
    return 0;
}

/* start reports whether w may run the call it took, now that it holds the
 * GIL: not when its caller gave up meanwhile. Lock not held. */
static int start(hb_pool *p, hb_worker *w) {
    hb_spin_lock(&p->lock);
    int ok = !w->dropped;
    w->running = ok;
    hb_spin_unlock(&p->lock);
    return ok;
}

/* finish ends call j on w, lock not held: a thread lost to it is available
 * again, and its block (when it had one of its own) is freed. */
static void finish(hb_pool *p, hb_worker *w, hb_pjob *j) {
    hb_spin_lock(&p->lock);
    w->pool_job = 0;
    w->running = 0;
    w->dropped = 0;
    if (w->lost) {
        w->lost = 0;
        regain_locked(p);
    }
    hb_spin_unlock(&p->lock);
    if (!j->in_arena) free(j->mod);
}

/* run runs j with the GIL held and hands its outcome to Go. */
static void run(hb_worker *w, hb_pjob *j) {
    hb_result r;
    hb_call_job(w, j->id, j->mod, j->modlen, j->fn, j->fnlen, j->args, j->argslen, j->limit, &r);
    if (r.status != HB_ASYNC) {
        hb_loop_complete(j->id, &r);
        return;
    }
    /* An awaitable: the loop runs it and answers the caller. Only an async
     * def marks the function (Go then sends its calls to the loop): a sync
     * function that returned an awaitable once keeps running on the pool. */
    if (r.coro_fn) {
        hb_result mark = {.status = HB_ASYNC, .coro_fn = 1};
        hb_loop_complete(j->id, &mark);
    }
    int rc = hb_loop_submit_coro(j->id, r.coro);
    if (rc < 0) {
        Py_DECREF(r.coro);
        hb_result e;
        memset(&e, 0, sizeof e);
        e.status = HB_ERROR;
        hb_error_set(&e.err, "MemoryError", "out of memory queueing a coroutine");
        hb_loop_complete(j->id, &e);
    } else if (rc == 1) {
        hb_loop_wake();
    }
}

void hb_pool_run(hb_pool *p, hb_worker *w) {
    unsigned char buf[HB_ARENA_MAX_COPY]; /* a call copied out of the arena */
    hb_pjob j;
    int spun = 0;
    current = w;
    hb_spin_lock(&p->lock);
    w->next = p->workers;
    p->workers = w;
    for (;;) {
        if (take(p, w, &j, buf, 0)) {
            /* Calls queued while this thread spun or slept woke no one: pass
             * the wake-up on, or they would wait for this batch to end. */
            hb_worker *next = p->head < p->len && !p->spinning ? unpark(p) : NULL;
            p->busy++;
            hb_spin_unlock(&p->lock);
            if (next != NULL) futex_wake(&next->wake, 1);
            hb_done_collect();
            /* Each hand-over of the GIL between threads costs a futex
             * wake-up, so a thread that holds it runs what is queued. */
            PyEval_RestoreThread(w->ts);
            int64_t began = now_ns();
            if (start(p, w)) run(w, &j);
            finish(p, w, &j);
            for (int n = 1; n < MAX_BATCH && now_ns() - began <= MAX_BATCH_NS; n++) {
                hb_spin_lock(&p->lock);
                int more = take(p, w, &j, buf, 1);
                hb_spin_unlock(&p->lock);
                if (!more) break;
                run(w, &j);
                finish(p, w, &j);
            }
            PyEval_SaveThread();
            hb_spin_lock(&p->lock);
            p->busy--;
            spun = 0;
            continue;
        }
        if (p->closed) break;
        /* Spin (once per wait) only while no other thread runs a call: that
         * is when a caller waits on each answer before it sends the next, and
         * a wake-up would be on its critical path. Under load calls queue up
         * anyway, and a spinning thread would only take CPU from them. */
        if (!spun && p->spin_ns > 0 && p->busy == 0 && !p->spinning) {
            p->spinning = 1;
            hb_spin_unlock(&p->lock);
            int64_t deadline = now_ns() + p->spin_ns;
            while (__atomic_load_n(&p->len, __ATOMIC_RELAXED) == __atomic_load_n(&p->head, __ATOMIC_RELAXED) &&
                   now_ns() < deadline)
                sched_yield();
            hb_spin_lock(&p->lock);
            p->spinning = 0;
            spun = 1;
            continue;
        }
        /* Park. A goroutine that queues a call unlists this thread and sets
         * its wake word under the lock: the wait below then returns at once
         * if it has not begun. */
        int surplus = p->total - p->lost > p->target;
        w->wake = 0;
        w->parked = 1;
        w->parked_next = p->parked;
        p->parked = w;
        hb_spin_unlock(&p->lock);
        struct timespec idle = {.tv_sec = IDLE_EXIT_S};
        int timedout = 0;
        while (!timedout && !__atomic_load_n(&w->wake, __ATOMIC_ACQUIRE))
            timedout = futex_wait(&w->wake, 0, surplus ? &idle : NULL);
        hb_spin_lock(&p->lock);
        spun = 0;
        if (w->parked) { /* timed out, still listed */
            for (hb_worker **x = &p->parked; *x != NULL; x = &(*x)->parked_next) {
                if (*x == w) {
                    *x = w->parked_next;
                    break;
                }
            }
            w->parked = 0;
            if (p->head == p->len && p->total - p->lost > p->target) {
                p->total--;
                break; /* this thread exits */
            }
        }
    }
    for (hb_worker **x = &p->workers; *x != NULL; x = &(*x)->next) {
        if (*x == w) {
            *x = w->next;
            break;
        }
    }
    hb_spin_unlock(&p->lock);
    current = NULL;
}

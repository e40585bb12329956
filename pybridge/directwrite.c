/* A streamed HTTP/1.1 response's pieces, written to the client's socket from
 * the event loop's thread while Go lends it (web's request.write, and
 * pybridge/direct.go). Without it each piece an app sends crosses to a
 * goroutine that writes it and back to the loop, two thread wake-ups a piece;
 * uvicorn writes it from the loop's thread, as this does.
 *
 * The write never blocks: a full socket takes part of a piece or none. What
 * it did not take goes to Go, which waits for room under the response's
 * deadlines: none of it (Python sends the piece through Go as before), or the
 * rest of a frame begun (kept here, written by Go before anything else). A
 * send to a client that has gone sets err, which Go reports on its next
 * write. The GIL is held, as uvloop holds it for a transport's write. */
#include "bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static hb_dw_slot *slots; /* HB_DW_SLOTS, made on first use and never freed */
static int free_head = -1;
static int made;
static uint32_t lock;

hb_dw_slot *hb_dw_open(int fd, int chunked, int64_t left, uint64_t *handle) {
    hb_spin_lock(&lock);
    if (slots == NULL) {
        hb_dw_slot *s = calloc(HB_DW_SLOTS, sizeof *s); /* every gate closed */
        if (s == NULL) {
            hb_spin_unlock(&lock);
            return NULL;
        }
        __atomic_store_n(&slots, s, __ATOMIC_RELEASE);
    }
    int i;
    if (free_head >= 0) {
        i = free_head;
        free_head = slots[i].next_free;
    } else if (made < HB_DW_SLOTS) {
        i = made++;
    } else {
        hb_spin_unlock(&lock);
        return NULL;
    }
    hb_spin_unlock(&lock);
    hb_dw_slot *s = &slots[i];
    s->fd = fd;
    s->chunked = chunked;
    s->left = left;
    s->written = 0;
    s->carry = NULL;
    s->carry_len = 0;
    s->err = 0;
    *handle = (uint64_t)s->gen << 32 | (uint32_t)(i + 1); /* never 0 */
    __atomic_store_n(&s->gate, HB_DW_OPEN, __ATOMIC_RELEASE);
    return s;
}

void hb_dw_free(hb_dw_slot *s) {
    hb_spin_lock(&lock);
    s->next_free = free_head;
    free_head = (int)(s - slots);
    hb_spin_unlock(&lock);
}

/* enter takes the slot a handle names, if it is lent and its generation is
 * the handle's (a handle kept past its response names nothing). */
static hb_dw_slot *enter(uint64_t handle) {
    hb_dw_slot *all = __atomic_load_n(&slots, __ATOMIC_ACQUIRE);
    uint32_t i = (uint32_t)handle - 1; /* 0: none, which wraps past the end */
    if (all == NULL || i >= HB_DW_SLOTS) return NULL;
    hb_dw_slot *s = &all[i];
    uint32_t open = HB_DW_OPEN;
    if (!__atomic_compare_exchange_n(&s->gate, &open, HB_DW_BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return NULL;
    if (s->gen != (uint32_t)(handle >> 32)) {
        __atomic_store_n(&s->gate, HB_DW_OPEN, __ATOMIC_RELEASE);
        return NULL;
    }
    return s;
}

/* hb_dw_write writes p as the next piece of the body: 1 when it is all on
 * the wire; 2 when it was taken but the socket was full, the rest of its
 * frame kept for Go (the caller then has Go write it); 0 when nothing was
 * taken (not lent, Go writing, bytes kept for Go, a piece over
 * HB_DW_MAX_PIECE, a declared length it would pass, or a failed send): the caller sends it through Go, which says what
 * is wrong, if anything. */
int hb_dw_write(uint64_t handle, const char *p, size_t len) {
    hb_dw_slot *s = enter(handle);
    if (s == NULL) return 0;
    int r = 0;
    if (len == 0 || len > HB_DW_MAX_PIECE || s->carry_len > 0 || s->err != 0 ||
        (s->left >= 0 && (int64_t)len > s->left))
        goto out;
    char head[24];
    struct iovec iov[3];
    int n = 0;
    if (s->chunked) {
        int hl = snprintf(head, sizeof head, "%zx\r\n", len);
        iov[n++] = (struct iovec){head, (size_t)hl};
    }
    iov[n++] = (struct iovec){(void *)p, len};
    if (s->chunked) iov[n++] = (struct iovec){"\r\n", 2};
    size_t total = 0;
    for (int k = 0; k < n; k++) total += iov[k].iov_len;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w;
    do
        w = sendmsg(s->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) s->err = errno;
        goto out;
    }
    if ((size_t)w < total) {
        size_t rest = total - (size_t)w;
        unsigned char *c = malloc(rest);
        if (c == NULL) {
            /* Part of a frame is out and the rest cannot be kept: the
             * response is cut, as when the client leaves. */
            s->err = ENOMEM;
        } else {
            size_t skip = (size_t)w, at = 0;
            for (int k = 0; k < n; k++) {
                size_t l = iov[k].iov_len;
                if (skip >= l) {
                    skip -= l;
                    continue;
                }
                memcpy(c + at, (char *)iov[k].iov_base + skip, l - skip);
                at += l - skip;
                skip = 0;
            }
            s->carry = c;
            s->carry_len = rest;
        }
        r = 2;
    } else {
        r = 1;
    }
    s->written += (int64_t)len;
    if (s->left >= 0) s->left -= (int64_t)len;
out:
    __atomic_store_n(&s->gate, HB_DW_OPEN, __ATOMIC_RELEASE);
    return r;
}

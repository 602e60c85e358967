/* ring.c — single-producer single-consumer ring buffer with blocking
 * waits (see ring.h).
 *
 * Locks: Ring.lock guards head, tail, eof, aborted and the waiter flags.
 * The byte array itself is not guarded: [tail, head) belongs to the
 * consumer, [head, tail + size) to the producer, and each side only moves
 * its own position, under the lock, after copying. */
#include "tape/ring.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

/* The producer publishes bytes in chunks of at most this many, so the
 * consumer can start on a large push before all of it is copied. */
#define RING_CHUNK (256u * 1024)

struct Ring {
    GMutex lock;
    GCond data_cond;     /* consumer waits: bytes, eof or abort */
    GCond space_cond;    /* producer waits: space or abort */
    uint8_t *buf;
    size_t size;
    uint64_t head;       /* bytes ever written */
    uint64_t tail;       /* bytes ever consumed */
    bool eof;
    bool aborted;
};

Ring *ring_new(size_t size)
{
    Ring *r = g_new0(Ring, 1);
    g_mutex_init(&r->lock);
    g_cond_init(&r->data_cond);
    g_cond_init(&r->space_cond);
    r->size = size;
    r->buf = g_malloc(size);
    return r;
}

void ring_free(Ring *r)
{
    if (!r)
        return;
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->data_cond);
    g_cond_clear(&r->space_cond);
    g_free(r->buf);
    g_free(r);
}

size_t ring_size(Ring *r)
{
    return r->size;
}

void ring_reset(Ring *r)
{
    g_mutex_lock(&r->lock);
    r->head = r->tail = 0;
    r->eof = r->aborted = false;
    g_mutex_unlock(&r->lock);
}

ssize_t ring_write_some(Ring *r, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        g_mutex_lock(&r->lock);
        if (r->aborted) {
            g_mutex_unlock(&r->lock);
            return -ECANCELED;
        }
        size_t free_bytes = r->size - (size_t)(r->head - r->tail);
        size_t pos = (size_t)(r->head % r->size);
        g_mutex_unlock(&r->lock);
        size_t n = MIN(MIN(free_bytes, r->size - pos), len - done);
        n = MIN(n, RING_CHUNK);
        if (n == 0)
            break;
        memcpy(r->buf + pos, (const uint8_t *)buf + done, n);
        g_mutex_lock(&r->lock);
        r->head += n;
        g_cond_signal(&r->data_cond);
        g_mutex_unlock(&r->lock);
        done += n;
    }
    return (ssize_t)done;
}

int ring_wait_space(Ring *r)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && r->head - r->tail == r->size)
        g_cond_wait(&r->space_cond, &r->lock);
    int rc = r->aborted ? -ECANCELED : 0;
    g_mutex_unlock(&r->lock);
    return rc;
}

void ring_set_eof(Ring *r)
{
    g_mutex_lock(&r->lock);
    r->eof = true;
    g_cond_broadcast(&r->data_cond);
    g_mutex_unlock(&r->lock);
}

ssize_t ring_peek(Ring *r, size_t want, const uint8_t **p)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && !r->eof && r->head - r->tail < want)
        g_cond_wait(&r->data_cond, &r->lock);
    if (r->aborted) {
        g_mutex_unlock(&r->lock);
        return -ECANCELED;
    }
    size_t avail = (size_t)(r->head - r->tail);
    size_t pos = (size_t)(r->tail % r->size);
    g_mutex_unlock(&r->lock);
    *p = r->buf + pos;
    return (ssize_t)MIN(MIN(avail, want), r->size - pos);
}

void ring_consume(Ring *r, size_t n)
{
    g_mutex_lock(&r->lock);
    r->tail += n;
    g_cond_signal(&r->space_cond);
    g_mutex_unlock(&r->lock);
}

int ring_wait_any(Ring *r)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && !r->eof && r->head == r->tail)
        g_cond_wait(&r->data_cond, &r->lock);
    int rc = r->aborted ? -ECANCELED : r->head > r->tail ? 1 : 0;
    g_mutex_unlock(&r->lock);
    return rc;
}

int ring_wait_full(Ring *r)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && !r->eof && r->head - r->tail < r->size)
        g_cond_wait(&r->data_cond, &r->lock);
    int rc = r->aborted ? -ECANCELED : 0;
    g_mutex_unlock(&r->lock);
    return rc;
}

void ring_abort(Ring *r)
{
    g_mutex_lock(&r->lock);
    r->aborted = true;
    g_cond_broadcast(&r->data_cond);
    g_cond_broadcast(&r->space_cond);
    g_mutex_unlock(&r->lock);
}

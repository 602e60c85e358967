/* ring.c — single-producer single-consumer ring buffer with blocking
 * waits and lent (zero-copy) segments (see ring.h).
 *
 * Locks: Ring.lock guards head, tail, the lent segment (seg, seg_len,
 * seg_off, seg_busy), eof, aborted and the waiter counts. The byte array
 * itself is not guarded: [tail, head) belongs to the consumer, [head,
 * tail + size) to the producer, and each side only moves its own position,
 * under the lock, after copying. A lent segment belongs to the producer's
 * caller; the consumer reads it only between peek and consume/unpeek
 * (seg_busy), and the producer does not return while seg_busy is set.
 * Conditions are signalled only when someone waits on them. */
#include "tape/ring.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

/* The producer publishes copied bytes in chunks of at most this many, so
 * the consumer can start on a push before all of it is copied. */
#define RING_CHUNK (256u * 1024)

struct Ring {
    GMutex lock;
    GCond data_cond;     /* consumer waits: bytes, segment, eof or abort */
    GCond space_cond;    /* producer waits: space, segment taken, abort */
    unsigned data_waiters;
    unsigned space_waiters;
    uint8_t *buf;
    size_t size;
    size_t block;
    uint64_t head;       /* bytes ever copied in */
    uint64_t tail;       /* bytes ever consumed from buf */
    const uint8_t *seg;  /* lent segment, or NULL */
    size_t seg_len;
    size_t seg_off;      /* consumed bytes of the segment */
    bool seg_busy;       /* the consumer holds a pointer into seg */
    bool eof;
    bool aborted;
};

Ring *ring_new(size_t size, size_t block)
{
    Ring *r = g_new0(Ring, 1);
    g_mutex_init(&r->lock);
    g_cond_init(&r->data_cond);
    g_cond_init(&r->space_cond);
    r->size = size;
    r->block = block;
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
    r->seg = NULL;
    r->seg_len = r->seg_off = 0;
    r->seg_busy = false;
    r->eof = r->aborted = false;
    g_mutex_unlock(&r->lock);
}

static void wake_consumer(Ring *r)
{
    if (r->data_waiters)
        g_cond_broadcast(&r->data_cond);
}

static void wake_producer(Ring *r)
{
    if (r->space_waiters)
        g_cond_broadcast(&r->space_cond);
}

static void wait_data(Ring *r)
{
    r->data_waiters++;
    g_cond_wait(&r->data_cond, &r->lock);
    r->data_waiters--;
}

static void wait_space(Ring *r)
{
    wake_consumer(r); /* a prebuffering consumer stops waiting for more */
    r->space_waiters++;
    g_cond_wait(&r->space_cond, &r->lock);
    r->space_waiters--;
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
        wake_consumer(r);
        g_mutex_unlock(&r->lock);
        done += n;
    }
    return (ssize_t)done;
}

int ring_wait_space(Ring *r)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && r->head - r->tail == r->size)
        wait_space(r);
    int rc = r->aborted ? -ECANCELED : 0;
    g_mutex_unlock(&r->lock);
    return rc;
}

size_t ring_to_boundary(Ring *r)
{
    g_mutex_lock(&r->lock);
    size_t k = (size_t)((r->block - r->head % r->block) % r->block);
    g_mutex_unlock(&r->lock);
    return k;
}

int ring_lend(Ring *r, const void *buf, size_t len)
{
    int rc = 0;
    g_mutex_lock(&r->lock);
    while (!r->aborted && r->head != r->tail)
        wait_space(r);
    if (r->aborted) {
        rc = -ECANCELED;
    } else {
        r->seg = buf;
        r->seg_len = len;
        r->seg_off = 0;
        wake_consumer(r);
        while (!r->aborted && r->seg_off < r->seg_len)
            wait_space(r);
        if (r->seg_off < r->seg_len)
            rc = -ECANCELED;
    }
    while (r->seg_busy) /* aborted: wait until the consumer lets go */
        wait_space(r);
    r->seg = NULL;
    r->seg_len = r->seg_off = 0;
    g_mutex_unlock(&r->lock);
    return rc;
}

void ring_set_eof(Ring *r)
{
    g_mutex_lock(&r->lock);
    r->eof = true;
    wake_consumer(r);
    g_mutex_unlock(&r->lock);
}

static bool seg_pending(const Ring *r)
{
    return r->seg && r->seg_off < r->seg_len;
}

ssize_t ring_peek(Ring *r, size_t want, const uint8_t **p)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && !r->eof && r->head - r->tail < want &&
           !seg_pending(r))
        wait_data(r);
    if (r->aborted) {
        g_mutex_unlock(&r->lock);
        return -ECANCELED;
    }
    size_t n;
    if (r->head == r->tail && seg_pending(r)) {
        *p = r->seg + r->seg_off;
        n = MIN(want, r->seg_len - r->seg_off);
        r->seg_busy = true;
    } else {
        size_t avail = (size_t)(r->head - r->tail);
        size_t pos = (size_t)(r->tail % r->size);
        *p = r->buf + pos;
        n = MIN(MIN(avail, want), r->size - pos);
    }
    g_mutex_unlock(&r->lock);
    return (ssize_t)n;
}

void ring_consume(Ring *r, size_t n)
{
    g_mutex_lock(&r->lock);
    if (r->seg_busy) {
        r->seg_off += n;
        r->seg_busy = false;
    } else {
        r->tail += n;
    }
    wake_producer(r);
    g_mutex_unlock(&r->lock);
}

void ring_unpeek(Ring *r)
{
    g_mutex_lock(&r->lock);
    if (r->seg_busy) {
        r->seg_busy = false;
        wake_producer(r);
    }
    g_mutex_unlock(&r->lock);
}

int ring_wait_any(Ring *r)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && !r->eof && r->head == r->tail && !seg_pending(r))
        wait_data(r);
    int rc = r->aborted                               ? -ECANCELED
             : (r->head > r->tail || seg_pending(r)) ? 1
                                                      : 0;
    g_mutex_unlock(&r->lock);
    return rc;
}

int ring_wait_full(Ring *r)
{
    g_mutex_lock(&r->lock);
    while (!r->aborted && !r->eof && r->head - r->tail < r->size &&
           !seg_pending(r) && r->space_waiters == 0)
        wait_data(r);
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

/* taper.c — streams one dumpfile at a time to tape: the producer pushes
 * bytes into a ring buffer, a device thread takes whole blocks from it and
 * writes them as parts of at most part_size bytes, and a part that fails
 * (write error or physical end of medium) is written again on the next
 * volume, its already-consumed bytes re-read from the caller's slices.
 *
 * Threads: the caller (push, add_slice, finish, cancel: one producer, but
 * cancel may come from any thread) and one device thread per dumpfile,
 * which also runs the part-done callback (with no lock held).
 *
 * Locks — order: state before ring (TapeTaper.lock, then Ring's lock;
 * never take the state lock while holding the ring's).
 *   TapeTaper.lock guards status, running, eof, producer_blocked, error,
 *   gerror, self, thread and the slice list. TapeTaper.cond signals any
 *   change of them.
 *   The ring's own lock guards its positions (see ring.h).
 * Fields marked "device thread" are touched only by the device thread
 * while it runs, and by start/free when no device thread runs. */
#include "tape/ring.h"
#include "tape/slice_iter.h"
#include "tape/tape.h"
#include "tape/tape_error.h"

#include <errno.h>

typedef enum {
    TAPER_IDLE,      /* no dumpfile yet, or the last one finished */
    TAPER_STREAMING, /* started, not finished */
    TAPER_FAILED,    /* the device thread gave up; error/gerror say why */
    TAPER_CANCELLED,
} TaperStatus;

struct TapeTaper {
    TapeLibrary *lib;
    uint64_t part_size;
    uint32_t bs;
    Ring *ring;

    GMutex lock;
    GCond cond;
    TaperStatus status;
    bool running;          /* the device thread has not finished */
    bool eof;              /* finish was called */
    bool producer_blocked; /* push waits for ring space */
    int error;
    GError *gerror;
    SliceList *slices;
    GThread *thread;
    GThread *self;         /* the device thread, as it sees itself */

    /* device thread */
    TapeDevice *dev;
    uint64_t dumpfile_id;
    uint32_t kind;
    uint64_t generation;
    TapePartDoneFn done;
    void *user;
    uint64_t consumed;     /* dumpfile bytes taken out of the ring */
    uint8_t *replay_buf;   /* one block re-read from the slices */
};

/* One attempt at writing a part. */
typedef struct {
    uint64_t size;
    bool last;
    bool eom;
    bool device_failed;    /* the device (not the slices) failed */
    bool started;          /* a tape file was started */
    int fileno;
    char volume[TAPE_VOLUME_NAME_MAX];
    double duration;
    uint8_t xxh128[16];
} PartAttempt;

TapeTaper *tape_taper_new(TapeLibrary *lib, const TapeTaperConfig *cfg)
{
    TapeTaper *t = g_new0(TapeTaper, 1);
    t->lib = lib;
    t->bs = tape_library_block_size(lib);
    uint64_t ps = cfg ? cfg->part_size : 0;
    t->part_size = (ps + t->bs - 1) / t->bs * t->bs;
    size_t rs = cfg ? cfg->ring_size : 0;
    rs = (rs + t->bs - 1) / t->bs * t->bs;
    t->ring = ring_new(MAX(rs, (size_t)t->bs), t->bs);
    g_mutex_init(&t->lock);
    g_cond_init(&t->cond);
    t->slices = slice_list_new();
    t->replay_buf = g_malloc(t->bs);
    return t;
}

static bool is_cancelled(TapeTaper *t)
{
    g_mutex_lock(&t->lock);
    bool c = t->status == TAPER_CANCELLED;
    g_mutex_unlock(&t->lock);
    return c;
}

static int cancelled_error(GError **err)
{
    return tape_fail(err, ECANCELED, "dumpfile cancelled");
}

static void report(TapeTaper *t, uint32_t partnum, uint64_t off,
                   const PartAttempt *a, bool ok)
{
    if (!t->done)
        return;
    TapePartDone d = {
        .dumpfile_id = t->dumpfile_id,
        .partnum = partnum,
        .offset = off,
        .size = a->size,
        .duration = a->duration,
        .fileno = a->fileno >= 0 ? (uint32_t)a->fileno : 0,
        .successful = ok,
        .eom = a->eom,
        .eof = ok && a->last,
    };
    g_strlcpy(d.volume, a->volume, sizeof d.volume);
    if (ok)
        memcpy(d.payload_xxh128, a->xxh128, 16);
    t->done(&d, t->user);
}

/* The volume ended or failed: never write it again, go to the next. */
static void retire_device(TapeTaper *t, bool full)
{
    if (!t->dev)
        return;
    if (full)
        tape_library_mark_full(t->lib, t->dev);
    tape_device_unload(t->dev);
    t->dev = NULL;
}

static int ensure_device(TapeTaper *t, GError **err)
{
    if (t->dev && tape_device_is_eom(t->dev))
        retire_device(t, true);
    if (t->dev)
        return 0;
    GError *e = NULL;
    t->dev = tape_library_load_writable(t->lib, &e);
    if (t->dev)
        return 0;
    int code = e ? e->code : EIO;
    g_propagate_error(err, e);
    return -code;
}

/* A retry needs dumpfile bytes [.., need) from the slices. Wait until they
 * are there, unless they never can be: the producer finished, or it waits
 * for ring space (which only this thread frees). */
static int wait_slices(TapeTaper *t, uint64_t from, uint64_t need,
                       GError **err)
{
    g_mutex_lock(&t->lock);
    while (slice_list_end(t->slices) < need &&
           t->status == TAPER_STREAMING && !t->eof && !t->producer_blocked)
        g_cond_wait(&t->cond, &t->lock);
    bool covered = slice_list_end(t->slices) >= need;
    bool cancelled = t->status == TAPER_CANCELLED;
    g_mutex_unlock(&t->lock);
    if (cancelled)
        return cancelled_error(err);
    if (!covered)
        return tape_fail(err, EIO, "dumpfile %" G_GUINT64_FORMAT ": bytes %"
                         G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " are in no "
                         "slice, so the part cannot be written again",
                         t->dumpfile_id, from, need);
    return 0;
}

static int device_failed(PartAttempt *a, int rc)
{
    a->device_failed = true;
    a->eom = rc == -ENOSPC;
    return rc;
}

static int write_part(TapeTaper *t, uint64_t off, uint32_t partnum,
                      PartAttempt *a, GError **err)
{
    TapeDevice *dev = t->dev;
    g_strlcpy(a->volume, tape_device_volume(dev), sizeof a->volume);
    a->fileno = -1;
    int rc = 0;
    if (t->consumed > off)
        rc = wait_slices(t, off, t->consumed, err);
    else if (tape_device_streaming(dev) != TAPE_STREAMING_NONE &&
             ring_wait_full(t->ring) < 0)
        rc = cancelled_error(err);
    if (rc < 0)
        return rc;

    TapePartHeader h = {.dumpfile_id = t->dumpfile_id,
                        .partnum = partnum,
                        .offset = off,
                        .block_size = t->bs,
                        .kind = t->kind,
                        .generation = t->generation};
    int fileno = tape_device_start_file(dev, &h, err);
    if (fileno < 0)
        return device_failed(a, fileno);
    a->fileno = fileno;
    a->started = true;

    uint64_t pos = off;
    SliceIter *it = NULL;
    for (;;) {
        if (t->part_size && pos - off >= t->part_size)
            break;
        if (pos > off && tape_device_is_eom(dev)) {
            a->eom = true;
            break;
        }
        if (pos < t->consumed) {
            /* retry: bytes already taken from the ring come from slices */
            size_t n = (size_t)MIN((uint64_t)t->bs, t->consumed - pos);
            if (is_cancelled(t)) {
                rc = cancelled_error(err);
                break;
            }
            if (!it)
                it = slice_iter_new(t->slices, &t->lock, pos);
            rc = slice_iter_read(it, t->replay_buf, n, err);
            if (rc < 0)
                break;
            rc = tape_device_write_block(dev, t->replay_buf, n, err);
            if (rc < 0) {
                device_failed(a, rc);
                break;
            }
            pos += n;
            continue;
        }
        const uint8_t *p;
        ssize_t n = ring_peek(t->ring, t->bs, &p);
        if (n < 0) {
            rc = cancelled_error(err);
            break;
        }
        if (n == 0) {
            a->last = true;
            break;
        }
        rc = tape_device_write_block(dev, p, (size_t)n, err);
        if (rc < 0) {
            ring_unpeek(t->ring); /* the block is written again later */
            device_failed(a, rc);
            break;
        }
        ring_consume(t->ring, (size_t)n);
        pos += (uint64_t)n;
        t->consumed = pos;
        if ((size_t)n < t->bs) {
            a->last = true;
            break;
        }
    }
    slice_iter_free(it);
    a->size = pos - off;
    if (rc < 0)
        return rc;
    if (!a->last && pos >= t->consumed) {
        int more = ring_wait_any(t->ring);
        if (more < 0)
            return cancelled_error(err);
        a->last = more == 0;
    }
    TapePartTrailer trl = {.length = a->size,
                           .nblocks = (a->size + t->bs - 1) / t->bs,
                           .last = a->last};
    tape_device_payload_xxh128(dev, trl.payload_xxh128);
    rc = tape_device_finish_file(dev, &trl, err);
    if (rc < 0)
        return device_failed(a, rc);
    memcpy(a->xxh128, trl.payload_xxh128, 16);
    return 0;
}

/* Write part `partnum` starting at dumpfile offset `off`, retrying once on
 * the next volume when the device fails. */
static int write_part_with_retry(TapeTaper *t, uint64_t off, uint32_t partnum,
                                 PartAttempt *ok, GError **err)
{
    char first_volume[TAPE_VOLUME_NAME_MAX] = "";
    g_autofree char *first_msg = NULL;
    for (int attempt = 1;; attempt++) {
        GError *e = NULL;
        int rc = ensure_device(t, &e);
        if (rc < 0) {
            if (first_msg)
                tape_fail(err, -rc, "part %u of dumpfile %" G_GUINT64_FORMAT
                          " failed on %s (%s) and cannot be retried: %s",
                          partnum, t->dumpfile_id, first_volume, first_msg,
                          e->message);
            else
                g_propagate_error(err, g_steal_pointer(&e));
            g_clear_error(&e);
            return rc;
        }
        PartAttempt a = {0};
        int64_t t0 = g_get_monotonic_time();
        rc = write_part(t, off, partnum, &a, &e);
        a.duration = (double)(g_get_monotonic_time() - t0) / 1e6;
        if (rc == 0) {
            report(t, partnum, off, &a, true);
            if (a.eom)
                retire_device(t, true);
            *ok = a;
            return 0;
        }
        if (rc == -ECANCELED) {
            /* leave the unfinished tape file as a failed one */
            if (a.started)
                retire_device(t, false);
            g_propagate_error(err, e);
            return rc;
        }
        report(t, partnum, off, &a, false);
        if (!a.device_failed) {
            if (a.started)
                retire_device(t, false);
            g_propagate_error(err, e);
            return rc;
        }
        retire_device(t, true);
        if (attempt >= 2) {
            tape_fail(err, -rc, "part %u of dumpfile %" G_GUINT64_FORMAT
                      " failed on %s (%s) and again on %s: %s", partnum,
                      t->dumpfile_id, first_volume, first_msg, a.volume,
                      e->message);
            g_error_free(e);
            return rc;
        }
        g_strlcpy(first_volume, a.volume, sizeof first_volume);
        first_msg = g_strdup(e->message);
        g_error_free(e);
    }
}

static int run_dumpfile(TapeTaper *t, GError **err)
{
    uint64_t off = 0;
    for (uint32_t partnum = 1;; partnum++) {
        PartAttempt a = {0};
        int rc = write_part_with_retry(t, off, partnum, &a, err);
        if (rc < 0)
            return rc;
        if (a.last)
            return 0;
        off += a.size;
        g_mutex_lock(&t->lock);
        slice_list_release_before(t->slices, off);
        g_mutex_unlock(&t->lock);
    }
}

static gpointer taper_thread(gpointer data)
{
    TapeTaper *t = data;
    g_mutex_lock(&t->lock);
    t->self = g_thread_self();
    g_mutex_unlock(&t->lock);

    GError *err = NULL;
    int rc = run_dumpfile(t, &err);

    g_mutex_lock(&t->lock);
    if (rc < 0 && t->status == TAPER_STREAMING) {
        t->status = TAPER_FAILED;
        t->error = rc;
        t->gerror = err;
        err = NULL;
        ring_abort(t->ring); /* wake a blocked push: state before ring */
    }
    t->running = false;
    t->self = NULL;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
    g_clear_error(&err);
    return NULL;
}

/* Join a finished device thread (none may be running). */
static void reap_thread(TapeTaper *t)
{
    g_mutex_lock(&t->lock);
    while (t->running)
        g_cond_wait(&t->cond, &t->lock);
    GThread *th = t->thread;
    t->thread = NULL;
    g_mutex_unlock(&t->lock);
    if (th)
        g_thread_join(th);
}

int tape_taper_start(TapeTaper *t, uint64_t dumpfile_id, uint32_t kind,
                     uint64_t generation, TapePartDoneFn done, void *user,
                     GError **err)
{
    g_mutex_lock(&t->lock);
    bool busy = t->status == TAPER_STREAMING;
    g_mutex_unlock(&t->lock);
    if (busy)
        return tape_fail(err, EBUSY, "dumpfile %" G_GUINT64_FORMAT " is "
                         "still being written", t->dumpfile_id);
    reap_thread(t);
    ring_reset(t->ring);
    t->dumpfile_id = dumpfile_id;
    t->kind = kind;
    t->generation = generation;
    t->done = done;
    t->user = user;
    t->consumed = 0;
    g_mutex_lock(&t->lock);
    if (t->status != TAPER_IDLE)
        slice_list_clear(t->slices); /* left over from a failed dumpfile */
    t->status = TAPER_STREAMING;
    t->running = true;
    t->eof = false;
    t->producer_blocked = false;
    t->error = 0;
    g_clear_error(&t->gerror);
    t->thread = g_thread_new("tape-taper", taper_thread, t);
    g_mutex_unlock(&t->lock);
    return 0;
}

void tape_taper_add_slice(TapeTaper *t, const char *path, uint64_t offset,
                          uint64_t length)
{
    g_mutex_lock(&t->lock);
    if (t->status == TAPER_IDLE || t->status == TAPER_STREAMING) {
        slice_list_append(t->slices, path, offset, length);
        g_cond_broadcast(&t->cond);
    }
    g_mutex_unlock(&t->lock);
}

/* Why the dumpfile cannot take more bytes; call with the lock held. */
static int status_error_locked(TapeTaper *t, GError **err)
{
    switch (t->status) {
    case TAPER_STREAMING:
        return 0;
    case TAPER_FAILED:
        if (err && !*err)
            *err = g_error_copy(t->gerror);
        return t->error;
    case TAPER_CANCELLED:
        return cancelled_error(err);
    case TAPER_IDLE:
    default:
        return tape_fail(err, EINVAL, "no dumpfile is being written");
    }
}

static int status_error(TapeTaper *t, GError **err)
{
    g_mutex_lock(&t->lock);
    int rc = status_error_locked(t, err);
    g_mutex_unlock(&t->lock);
    return rc;
}

static void set_producer_blocked(TapeTaper *t, bool blocked)
{
    g_mutex_lock(&t->lock);
    t->producer_blocked = blocked;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
}

int tape_taper_push(TapeTaper *t, const void *buf, size_t len, GError **err)
{
    int rc = status_error(t, err);
    if (rc < 0)
        return rc;
    if (!buf && len > 0)
        return tape_fail(err, EINVAL, "no buffer to push");
    g_mutex_lock(&t->lock);
    bool eof = t->eof;
    g_mutex_unlock(&t->lock);
    if (eof)
        return tape_fail(err, EINVAL, "push after finish");
    const uint8_t *p = buf;
    while (len > 0) {
        size_t chunk = len;
        if (len >= t->bs && len >= ring_size(t->ring)) {
            /* A push the ring cannot hold would block anyway: copy up to
             * a block boundary, then lend the caller's whole blocks to
             * the device thread (no copy). Smaller pushes are copied, so
             * the producer can prepare the next one meanwhile. */
            chunk = ring_to_boundary(t->ring);
            if (chunk == 0) {
                size_t n = len / t->bs * t->bs;
                set_producer_blocked(t, true);
                rc = ring_lend(t->ring, p, n);
                set_producer_blocked(t, false);
                if (rc < 0)
                    return status_error(t, err) ?: cancelled_error(err);
                p += n;
                len -= n;
                continue;
            }
        }
        ssize_t n = ring_write_some(t->ring, p, chunk);
        if (n < 0)
            return status_error(t, err) ?: cancelled_error(err);
        p += n;
        len -= (size_t)n;
        if (n == 0) {
            set_producer_blocked(t, true);
            rc = ring_wait_space(t->ring);
            set_producer_blocked(t, false);
            if (rc < 0)
                return status_error(t, err) ?: cancelled_error(err);
        }
    }
    return 0;
}

int tape_taper_finish(TapeTaper *t, GError **err)
{
    g_mutex_lock(&t->lock);
    int rc = status_error_locked(t, err);
    if (rc < 0 || t->eof) {
        g_mutex_unlock(&t->lock);
        return rc < 0 ? rc : tape_fail(err, EINVAL, "finish called twice");
    }
    t->eof = true;
    g_cond_broadcast(&t->cond);
    ring_set_eof(t->ring);
    while (t->running)
        g_cond_wait(&t->cond, &t->lock);
    rc = status_error_locked(t, err);
    if (rc == 0) {
        t->status = TAPER_IDLE;
        slice_list_clear(t->slices);
    }
    g_mutex_unlock(&t->lock);
    return rc;
}

void tape_taper_cancel(TapeTaper *t)
{
    g_mutex_lock(&t->lock);
    if (t->status == TAPER_STREAMING) {
        t->status = TAPER_CANCELLED;
        ring_abort(t->ring);
        g_cond_broadcast(&t->cond);
    }
    /* From the part-done callback the device thread stops by itself. */
    while (t->running && t->self != g_thread_self())
        g_cond_wait(&t->cond, &t->lock);
    g_mutex_unlock(&t->lock);
}

void tape_taper_free(TapeTaper *t)
{
    if (!t)
        return;
    tape_taper_cancel(t);
    reap_thread(t);
    retire_device(t, false);
    ring_free(t->ring);
    slice_list_free(t->slices);
    g_clear_error(&t->gerror);
    g_mutex_clear(&t->lock);
    g_cond_clear(&t->cond);
    g_free(t->replay_buf);
    g_free(t);
}

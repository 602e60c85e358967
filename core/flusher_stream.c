/* flusher_stream.c — a large file goes to tape while it is still being
 * written: one dumpfile follows the writer. The flusher thread reads the
 * bytes the writer has recorded (from the cache, where they were just
 * written) and pushes them into the taper's ring as they arrive, adding
 * the cache file's range as a slice before each push, so that a part the
 * volume cuts short is written again from the cache. As parts complete,
 * the dumpfile row and its parts go into the catalog, the extents of the
 * completed range are pointed at the dumpfile and the range is queued to
 * become clean after the next commit: the cache never has to hold more of
 * the file than the ring and the parts in flight, however large it is.
 *
 * Ordering with writers (DirtyObj.flush_read). Under Core.lock the stream
 * claims [pos, target) before reading it: target stops at the first write
 * still between its cache write and its record (DirtyObj.pending), at the
 * recorded end, at the end of the dirty run, and on a block boundary
 * (except at the very end), and flush_read moves to target. A write that
 * starts below flush_read may change bytes already read: it is listed as
 * rewritten and keeps its extents and dirty blocks (a later flush takes
 * it). A write at or past flush_read is read once it is recorded. Clean
 * marks carry the cache's write sequence taken with the claim, so a block
 * written after it stays dirty.
 *
 * The stream ends when the writer has closed the file and everything it
 * recorded is on tape; when a request (sync, close, fsync) or stop is
 * pending, a commit is due while enough closed small files wait to be
 * bundled (see periodic in flusher.c), the cache asks for space while the
 * stream waits for the
 * writer (while it streams, it commits at once so that what is on tape
 * can be evicted), the file got a new version (truncation), nothing new
 * arrived for STREAM_IDLE_US, or the dirty run has a gap (the writer went
 * back to older data); and on a tape error (the parts already complete
 * stay recorded; the rest stays dirty and a later flush retries). Then,
 * if it wrote anything, it commits, so the streamed range is clean before
 * any other flush looks at the file. The dumpfile is started with its
 * first bytes: a stream that ends before leaves nothing on tape.
 *
 * Flusher thread only. Core.lock is taken for the claim and for recording,
 * never across cache reads or taper pushes; Flusher.plock to take the
 * parts the device thread reported; Flusher.lock to wait and to look at
 * the request queue. */
#include "core/flusher_private.h"

#include <errno.h>

#define STREAM_POLL_US (5 * 1000)
#define STREAM_IDLE_US (2 * G_USEC_PER_SEC)
/* At most this much is claimed at once, so that a waiting request is seen
 * soon even when the writer is far ahead (a multiple of every block size). */
#define STREAM_CLAIM_MAX ((uint64_t)64 << 20)

typedef struct {
    uint64_t end;   /* object bytes before `end` ... */
    uint64_t seq;   /* ... were read after the cache's write sequence was this */
} Chunk;

typedef struct {
    Flusher *fl;
    uint64_t obj, ino, id, gen;
    uint64_t base;      /* object offset of dumpfile byte 0 */
    uint64_t pos;       /* object offset read and pushed up to */
    uint64_t recorded;  /* dumpfile bytes in recorded parts */
    uint64_t cleaned;   /* object offset up to which cleans are queued */
    guint nparts;       /* entries of fl->parts already recorded */
    bool row;           /* the dumpfile row exists */
    GArray *chunks;     /* Chunk, ascending ends */
    char *path;         /* the object's cache file */
} Stream;

/* Record the parts completed since the last call: the dumpfile row (its
 * length is what complete parts cover), the parts, the extents of the
 * covered object range and the clean marks. `final`: the dumpfile is
 * complete, so its partial last block may be cleaned too. */
static int record_progress(Stream *st, bool final, GError **err)
{
    Flusher *fl = st->fl;
    Core *c = fl->c;
    g_autoptr(GArray) fresh = g_array_new(FALSE, FALSE, sizeof(TapePartDone));
    g_mutex_lock(&fl->plock);
    guint seen = fl->parts->len;
    for (guint i = st->nparts; i < seen; i++) {
        TapePartDone *p = &g_array_index(fl->parts, TapePartDone, i);
        if (p->dumpfile_id == st->id)
            g_array_append_val(fresh, *p);
    }
    g_mutex_unlock(&fl->plock);
    uint64_t covered = st->recorded;
    for (guint i = 0; i < fresh->len; i++) {
        TapePartDone *p = &g_array_index(fresh, TapePartDone, i);
        if (p->offset != covered)
            return core_fail(err, EIO, "dumpfile %" G_GUINT64_FORMAT ": part %u starts at %"
                             G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT, st->id,
                             p->partnum, p->offset, covered);
        covered += p->size;
    }
    if (covered == st->recorded && !final)
        return 0;
    uint64_t bs = c->cfg.block_size;
    uint64_t lo = st->base + st->recorded, hi = st->base + covered;
    g_autoptr(GArray) pieces = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    int r = 0;
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    if (covered > st->recorded) {
        if (!st->row)
            r = db_x(c, err, "INSERT INTO dumpfiles(id, kind, generation, length, nfiles, ctime, "
                     "garbage) VALUES(?,?,?,?,1,?,0)", "uiiui", st->id, (int64_t)CORE_DUMP_FILE,
                     (int64_t)st->gen, covered, core_now_ns() / 1000000000);
        else /* a status call may have found no extent pointing at it yet */
            r = db_x(c, err, "UPDATE dumpfiles SET length=?, garbage=0 WHERE id=?", "uu", covered,
                     st->id);
    }
    for (guint i = 0; i < fresh->len && r == 0; i++) {
        TapePartDone *p = &g_array_index(fresh, TapePartDone, i);
        r = db_x(c, err, "INSERT OR REPLACE INTO parts(dumpfile, partnum, off, len, volume, "
                 "fileno, xxh128) VALUES(?,?,?,?,?,?,?)", "uiuutib", st->id, (int64_t)p->partnum,
                 p->offset, p->size, p->volume, (int64_t)p->fileno, p->payload_xxh128, 16);
    }
    DirtyObj *d = g_hash_table_lookup(c->dirty, &st->obj);
    if (r == 0 && hi > lo) {
        range_subtract(lo, hi, d ? d->rewritten : NULL, pieces);
        for (guint k = 0; k + 1 < pieces->len && r == 0; k += 2) {
            uint64_t a = g_array_index(pieces, uint64_t, k), b = g_array_index(pieces, uint64_t, k + 1);
            r = extent_rewrite_object(c, st->obj, a, b - a, st->id, a - st->base, err);
        }
    }
    r = db_op_end(c, r);
    if (r == 0) {
        /* Parts are taken only once recorded: after a failed record they
         * are tried again. */
        st->nparts = seen;
        st->row = st->row || covered > st->recorded;
        c->bytes_to_tape += covered - st->recorded;
        st->recorded = covered;
        /* Whole blocks become clean; the block the covered range ends in
         * only once the dumpfile is complete (its bytes are all there). */
        uint64_t upto = final ? hi : hi / bs * bs;
        while (st->cleaned < upto && st->chunks->len) {
            Chunk *ch = &g_array_index(st->chunks, Chunk, 0);
            uint64_t end = MIN(ch->end, upto);
            range_subtract(st->cleaned, end, d ? d->rewritten : NULL, pieces);
            for (guint k = 0; k + 1 < pieces->len; k += 2) {
                PendingClean p = { .obj = st->obj, .off = g_array_index(pieces, uint64_t, k),
                                   .end = g_array_index(pieces, uint64_t, k + 1), .seq = ch->seq,
                                   .after = c->commits };
                g_array_append_val(fl->cleans, p);
            }
            st->cleaned = end;
            if (end == ch->end)
                g_array_remove_index(st->chunks, 0);
        }
    }
    g_mutex_unlock(&c->lock);
    return r;
}

/* Is a request or stop waiting? *urgent: does the cache want space? */
static bool wanted_elsewhere(Flusher *fl, bool *urgent)
{
    g_mutex_lock(&fl->lock);
    bool busy = fl->stop || fl->reqs.length > 0;
    *urgent = fl->urgent;
    g_mutex_unlock(&fl->lock);
    return busy;
}

typedef enum { CLAIM_PUSH, CLAIM_WAIT, CLAIM_DONE, CLAIM_END } ClaimResult;

/* Under Core.lock: how far the stream may read now (*target, with the
 * cache's write sequence in *seq). */
static ClaimResult claim(Stream *st, uint64_t *target, uint64_t *seq)
{
    Core *c = st->fl->c;
    uint64_t bs = c->cfg.block_size;
    DirtyObj *d = g_hash_table_lookup(c->dirty, &st->obj);
    InodeRow r = { 0 };
    bool same = d && inode_get(c, 0, st->ino, &r, NULL) == 0 && r.version == st->obj;
    inode_row_clear(&r);
    if (!same)
        return CLAIM_END;
    bool writing = core_has_writers_locked(c, st->ino);
    uint64_t avail = d->end;
    for (guint k = 0; d->pending && k + 1 < d->pending->len; k += 2)
        avail = MIN(avail, g_array_index(d->pending, uint64_t, k));
    /* The dirty run that starts at pos. */
    g_autoptr(GArray) sl = cache_dirty_slices(c->cache, st->obj, st->pos, 0, seq, NULL);
    uint64_t run = st->pos;
    for (guint i = 0; sl && i < sl->len; i++) {
        CacheSlice *cs = &g_array_index(sl, CacheSlice, i);
        if (cs->offset > run)
            break;
        run = MAX(run, cs->offset + cs->length);
    }
    uint64_t limit = MIN(avail, run);
    bool last = !writing && !(d->pending && d->pending->len) && limit >= d->end;
    *target = last ? limit : MAX(st->pos, limit / bs * bs);
    if (*target > st->pos + STREAM_CLAIM_MAX)
        *target = st->pos + STREAM_CLAIM_MAX;
    if (*target > st->pos) {
        d->flush_read = *target;
        return CLAIM_PUSH;
    }
    if (last)
        return CLAIM_DONE;
    /* Worth waiting for: appends at the end, a write still in flight, or
     * the rest of the block at pos. Bytes past pos that are recorded but
     * not dirty (the writer went back and rewrote older data) end it. */
    bool pending = d->pending && d->pending->len;
    bool frontier = st->pos >= d->end || pending || limit > st->pos;
    return writing && frontier ? CLAIM_WAIT : CLAIM_END;
}

/* Read [st->pos, target) from the cache and push it. No lock held. */
static int push_range(Stream *st, uint64_t target, GError **err)
{
    Flusher *fl = st->fl;
    Core *c = fl->c;
    while (st->pos < target) {
        size_t n = (size_t)MIN((uint64_t)PUSH_CHUNK, target - st->pos);
        tape_taper_add_slice(fl->taper, st->path, st->pos, n);
        GError *e = NULL;
        ssize_t got = cache_read(c->cache, st->obj, st->pos, fl->buf, n, &e);
        if (got != (ssize_t)n) {
            int r = e ? core_fail_from(err, e, EIO, "reading bytes to stream")
                      : core_fail(err, EIO, "reading bytes to stream: short read");
            g_clear_error(&e);
            return r;
        }
        int r = tape_taper_push(fl->taper, fl->buf, n, &e);
        if (r < 0) {
            r = core_fail_from(err, e, -r, "writing to tape");
            g_clear_error(&e);
            return r;
        }
        st->pos += n;
    }
    return 0;
}

/* The stream is over: forget the claim; if it wrote anything, commit what
 * was recorded (the streamed range becomes clean) and let the file leave
 * the dirty set if nothing of it is dirty any more. */
static void stream_settle(Stream *st, bool started)
{
    Flusher *fl = st->fl;
    Core *c = fl->c;
    g_mutex_lock(&c->lock);
    DirtyObj *d = g_hash_table_lookup(c->dirty, &st->obj);
    if (d) {
        d->flushing = false;
        d->flush_read = UINT64_MAX;
        d->since = g_get_monotonic_time();
    }
    g_mutex_unlock(&c->lock);
    if (!started)
        return;
    GError *e = NULL;
    if (commit_and_clean(fl, &e) < 0)
        g_warning("commit after streaming: %s", e ? e->message : "failed");
    g_clear_error(&e);
    g_mutex_lock(&c->lock);
    d = g_hash_table_lookup(c->dirty, &st->obj);
    if (d && !d->flushing && !(d->pending && d->pending->len)) {
        uint64_t seq;
        g_autoptr(GArray) sl = cache_dirty_slices(c->cache, st->obj, 0, 0, &seq, NULL);
        if (sl && sl->len == 0) {
            g_hash_table_remove(c->dirty, &st->obj);
            g_hash_table_remove(c->commit_objs, &st->obj);
            /* Unlinked or truncated away while it streamed: its deletion
             * was skipped then (it was flushing), so it is queued now. */
            if (!object_referenced(c, st->obj) && cache_object_exists(c->cache, st->obj))
                db_delete_after_commit(c, st->obj);
        }
    }
    g_mutex_unlock(&c->lock);
}

int stream_file(Flusher *fl, uint64_t obj, GError **err)
{
    Core *c = fl->c;
    Stream st = { .fl = fl, .obj = obj };
    g_mutex_lock(&c->lock);
    DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
    if (!d || d->flushing || d->ino <= 0) {
        g_mutex_unlock(&c->lock);
        return 0;
    }
    uint64_t seq = 0;
    g_autoptr(GArray) sl = cache_dirty_slices(c->cache, obj, 0, 0, &seq, NULL);
    if (!sl || sl->len == 0) {
        g_mutex_unlock(&c->lock);
        return 0;
    }
    d->flushing = true;
    if (d->rewritten)
        g_array_set_size(d->rewritten, 0);
    st.ino = (uint64_t)d->ino;
    st.base = st.pos = st.cleaned = g_array_index(sl, CacheSlice, 0).offset;
    d->flush_read = st.base;
    st.gen = (uint64_t)c->gen;
    g_mutex_unlock(&c->lock);
    st.path = cache_object_path(c->cache, obj);
    st.chunks = g_array_new(FALSE, FALSE, sizeof(Chunk));
    int r = 0;
    bool started = false, done = false;
    gint64 t0 = g_get_monotonic_time(), last_progress = t0;
    while (r == 0) {
        uint64_t target = 0;
        g_mutex_lock(&c->lock);
        ClaimResult cr = claim(&st, &target, &seq);
        /* The dumpfile begins with its first bytes: a stream that ends
         * before it has any leaves nothing on tape. */
        if (cr == CLAIM_PUSH && !started) {
            st.id = c->next_dumpfile++;
            r = db_meta_set(c, "next_dumpfile", (int64_t)c->next_dumpfile, err);
        }
        g_mutex_unlock(&c->lock);
        if (r == 0 && cr == CLAIM_PUSH && !started) {
            g_mutex_lock(&fl->plock);
            g_array_set_size(fl->parts, 0);
            g_mutex_unlock(&fl->plock);
            GError *e = NULL;
            r = tape_taper_start(fl->taper, st.id, CORE_DUMP_FILE, st.gen, part_done, fl, &e);
            if (r < 0) {
                r = core_fail_from(err, e, -r, "starting a dumpfile");
                g_clear_error(&e);
            }
            started = r == 0;
        }
        if (r == 0 && cr == CLAIM_PUSH) {
            Chunk ch = { .end = target, .seq = seq };
            g_array_append_val(st.chunks, ch);
            r = push_range(&st, target, err);
            last_progress = g_get_monotonic_time();
        }
        if (r == 0)
            r = record_progress(&st, false, err);
        if (r < 0 || cr == CLAIM_END)
            break;
        if (cr == CLAIM_DONE) {
            done = true;
            break;
        }
        bool urgent = false;
        if (wanted_elsewhere(fl, &urgent) || commit_wants_bundle(fl) ||
            g_get_monotonic_time() - last_progress >= STREAM_IDLE_US)
            break;
        if (urgent) {
            /* The cache is short of space: what is on tape becomes clean
             * now. If the stream is waiting, other files are the ones to
             * flush, so it makes way. */
            GError *ce = NULL;
            if (commit_and_clean(fl, &ce) < 0)
                g_warning("commit while streaming: %s", ce ? ce->message : "failed");
            g_clear_error(&ce);
            if (cr == CLAIM_WAIT)
                break;
        } else {
            commit_if_due(fl);
        }
        if (cr == CLAIM_WAIT) {
            g_mutex_lock(&fl->lock);
            g_cond_wait_until(&fl->cond, &fl->lock, g_get_monotonic_time() + STREAM_POLL_US);
            g_mutex_unlock(&fl->lock);
        }
    }
    GError *e = NULL;
    if (started && st.pos > st.base && r == 0) {
        r = tape_taper_finish(fl->taper, &e);
        if (r < 0) {
            r = core_fail_from(err, e, -r, "finishing a dumpfile");
            g_clear_error(&e);
        }
        /* Complete parts are recorded even when the last one failed. */
        GError *re = NULL;
        int rr = record_progress(&st, r == 0, r == 0 ? err : &re);
        g_clear_error(&re);
        if (r == 0)
            r = rr;
    } else if (started) {
        tape_taper_cancel(fl->taper);
        if (st.pos > st.base) {
            GError *re = NULL;
            record_progress(&st, false, &re);
            g_clear_error(&re);
        }
    }
    g_debug("stream of file version %" G_GUINT64_FORMAT " as dumpfile %" G_GUINT64_FORMAT
            ": %" G_GUINT64_FORMAT " bytes from %" G_GUINT64_FORMAT ", %s (%d)", obj, st.id,
            st.pos - st.base, st.base, done ? "complete" : "ended early", r);
    g_mutex_lock(&c->lock);
    c->taper_seconds += (double)(g_get_monotonic_time() - t0) / 1e6;
    if (r < 0) {
        core_set_error(c, r, err && *err ? (*err)->message : "streaming failed");
    } else if (done) {
        c->last_error = 0;
        c->last_error_msg[0] = 0;
    }
    g_mutex_unlock(&c->lock);
    if (r < 0) {
        g_mutex_lock(&fl->lock);
        fl->retry_after = g_get_monotonic_time() + RETRY_BACKOFF_US;
        g_mutex_unlock(&fl->lock);
    }
    stream_settle(&st, started);
    g_array_unref(st.chunks);
    g_free(st.path);
    return r;
}

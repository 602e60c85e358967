/* flusher.c — the flusher thread: turns dirty file versions into
 * dumpfiles on tape through one taper, one dumpfile at a time. Files at or
 * above bundle_threshold get a dumpfile each as soon as their last writer
 * closes them; once stream_chunk bytes of a file still being written are
 * dirty, one dumpfile follows the writer (flusher_stream.c); smaller
 * closed files are packed into bundles once bundle_size bytes are
 * pending, the oldest waited bundle_delay seconds, or a group commit is
 * due and at least COMMIT_BUNDLE_MIN of them would otherwise be fsync'ed
 * in the cache one by one (files closed meanwhile are bundled in turn, up
 * to COMMIT_BUNDLE_ROUNDS rounds; a stream makes way for them). sync,
 * close of the store, the cache's need_space and fsync in
 * writethrough mode ask for flushes explicitly (flusher_run). It also
 * does the group commit every commit_interval_ms and writes an index every
 * sync_interval seconds when the catalog changed. Each flush round ends
 * with manifest_write_round (manifest.c), which names on tape the files
 * the round put there.
 *
 * For each dumpfile: the objects' dirty slices (cache_dirty_slices, with
 * their write sequence) go to tape_taper_add_slice, their bytes (read
 * with cache_read) to tape_taper_push; parts are recorded as the device
 * thread reports them. On success, under Core.lock: the dumpfile and its
 * parts are inserted, every extent pointing into the flushed object ranges
 * is rewritten to the dumpfile (except ranges written while the flush ran,
 * listed in DirtyObj.rewritten); the ranges are marked clean
 * (cache_mark_clean with the slices' sequence) only after the next commit
 * (PendingClean), which comes within commit_interval_ms, right away for
 * sync and need_space.
 * On failure nothing changes: the data stays dirty and a later flush
 * retries; the error shows in status and flusher_run returns -EIO.
 *
 * Locks: Flusher.lock guards the request queue and flags; Flusher.plock
 * the parts reported by the device thread. Core.lock is taken for catalog
 * work only, never while pushing bytes or waiting for the taper. */
#include "core/flusher_private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SCAN_INTERVAL_US (200 * 1000)

/* One source of dumpfile bytes: a cache object range or a plain file. */
typedef struct {
    uint64_t obj;     /* 0 = plain file `path` */
    char *path;
    uint64_t off, len;
    uint64_t full;    /* the whole dirty slice (len is clipped to the data
                         extents still reference; the rest is marked clean) */
    uint64_t df_off;  /* where it lands in the dumpfile */
} Source;

static void source_clear(gpointer p)
{
    g_free(((Source *)p)->path);
}

void part_done(const TapePartDone *p, void *user)
{
    Flusher *fl = user;
    if (!p->successful)
        return;
    g_mutex_lock(&fl->plock);
    g_array_append_val(fl->parts, *p);
    g_mutex_unlock(&fl->plock);
}

/* Stream the sources to tape as dumpfile `id`. No lock held. */
static int write_dumpfile(Flusher *fl, uint64_t id, uint32_t kind, uint64_t gen, GArray *srcs,
                          double *secs, GError **err)
{
    Core *c = fl->c;
    g_mutex_lock(&fl->plock);
    g_array_set_size(fl->parts, 0);
    g_mutex_unlock(&fl->plock);
    gint64 t0 = g_get_monotonic_time();
    GError *e = NULL;
    int r = tape_taper_start(fl->taper, id, kind, gen, part_done, fl, &e);
    if (r < 0) {
        r = core_fail_from(err, e, -r, "starting a dumpfile");
        g_clear_error(&e);
        return r;
    }
    for (guint i = 0; i < srcs->len && r == 0; i++) {
        Source *s = &g_array_index(srcs, Source, i);
        if (s->len == 0)
            continue;
        tape_taper_add_slice(fl->taper, s->path, s->off, s->len);
        int fd = -1;
        if (!s->obj && (fd = open(s->path, O_RDONLY | O_CLOEXEC)) < 0) {
            r = core_fail(err, errno, "%s: %s", s->path, g_strerror(errno));
            break;
        }
        for (uint64_t done = 0; done < s->len && r == 0;) {
            size_t n = (size_t)MIN((uint64_t)PUSH_CHUNK, s->len - done);
            ssize_t got;
            if (s->obj)
                got = cache_read(c->cache, s->obj, s->off + done, fl->buf, n, &e);
            else
                got = pread(fd, fl->buf, n, (off_t)(s->off + done));
            if (got != (ssize_t)n) {
                if (e)
                    r = core_fail_from(err, e, EIO, "reading bytes to flush");
                else
                    r = core_fail(err, EIO, "reading bytes to flush: short read");
                g_clear_error(&e);
                break;
            }
            r = tape_taper_push(fl->taper, fl->buf, n, &e);
            if (r < 0) {
                r = core_fail_from(err, e, -r, "writing to tape");
                g_clear_error(&e);
                break;
            }
            done += n;
        }
        if (fd >= 0)
            close(fd);
    }
    if (r == 0) {
        r = tape_taper_finish(fl->taper, &e);
        if (r < 0) {
            r = core_fail_from(err, e, -r, "finishing a dumpfile");
            g_clear_error(&e);
        }
    } else {
        tape_taper_cancel(fl->taper);
    }
    *secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    return r;
}

/* Insert a written dumpfile and its parts; Core.lock held. */
static int record_dumpfile_locked(Flusher *fl, uint64_t id, uint32_t kind, uint64_t gen,
                                  uint64_t len, unsigned nfiles, GError **err)
{
    Core *c = fl->c;
    int r = db_x(c, err, "INSERT INTO dumpfiles(id, kind, generation, length, nfiles, ctime, garbage) "
                 "VALUES(?,?,?,?,?,?,0)", "uiiuii", id, (int64_t)kind, (int64_t)gen, len,
                 (int64_t)nfiles, core_now_ns() / 1000000000);
    if (r < 0)
        return r;
    g_mutex_lock(&fl->plock);
    uint64_t covered = 0;
    for (guint i = 0; i < fl->parts->len && r == 0; i++) {
        TapePartDone *p = &g_array_index(fl->parts, TapePartDone, i);
        if (p->dumpfile_id != id)
            continue;
        r = db_x(c, err, "INSERT OR REPLACE INTO parts(dumpfile, partnum, off, len, volume, fileno, xxh128) "
                 "VALUES(?,?,?,?,?,?,?)", "uiuutib", id, (int64_t)p->partnum, p->offset, p->size,
                 p->volume, (int64_t)p->fileno, p->payload_xxh128, 16);
        covered += p->size;
    }
    g_mutex_unlock(&fl->plock);
    if (r == 0 && covered < len)
        r = core_fail(err, EIO, "dumpfile %" G_GUINT64_FORMAT ": parts cover %" G_GUINT64_FORMAT
                      " of %" G_GUINT64_FORMAT " bytes", id, covered, len);
    return r;
}

typedef struct {
    uint64_t obj;
    uint64_t seq;
    uint64_t end;    /* end of the object's bytes any extent references */
    GArray *slices;  /* CacheSlice */
} Member;

/* Mark clean what a commit has made safe, and drop cache objects nothing
 * references any more. Flusher thread; takes Core.lock briefly. */
void apply_cleans(Flusher *fl)
{
    Core *c = fl->c;
    if (!fl->cleans->len)
        return;
    g_mutex_lock(&c->lock);
    uint64_t commits = c->commits;
    g_mutex_unlock(&c->lock);
    g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (guint i = 0; i < fl->cleans->len;) {
        PendingClean *p = &g_array_index(fl->cleans, PendingClean, i);
        if (p->after >= commits) {
            i++;
            continue;
        }
        GError *e = NULL;
        if (cache_mark_clean(c->cache, p->obj, p->off, p->end - p->off, p->seq, &e) < 0 &&
            e->code != ENOENT)
            g_warning("marking flushed bytes clean: %s", e->message);
        g_clear_error(&e);
        g_array_append_val(done, p->obj);
        g_array_remove_index_fast(fl->cleans, i);
    }
    /* Unreferenced now, but perhaps not in the committed catalog yet: the
     * deletion waits for the next commit. */
    g_mutex_lock(&c->lock);
    for (guint i = 0; i < done->len; i++) {
        uint64_t obj = g_array_index(done, uint64_t, i);
        if (!object_referenced(c, obj) && !g_hash_table_contains(c->dirty, &obj) &&
            cache_object_exists(c->cache, obj))
            db_delete_after_commit(c, obj);
    }
    g_mutex_unlock(&c->lock);
}

/* Commit now and clean what it made safe. Flusher thread. */
int commit_and_clean(Flusher *fl, GError **err)
{
    g_mutex_lock(&fl->c->lock);
    int r = db_group_commit(fl->c, err);
    g_mutex_unlock(&fl->c->lock);
    apply_cleans(fl);
    return r;
}

static void member_clear(gpointer p)
{
    Member *m = p;
    if (m->slices)
        g_array_unref(m->slices);
}

/* Flush the given dirty objects as one dumpfile of `kind`. */
static int flush_group(Flusher *fl, GArray *objs, uint32_t kind, GError **err)
{
    Core *c = fl->c;
    g_autoptr(GArray) members = g_array_new(FALSE, TRUE, sizeof(Member));
    g_array_set_clear_func(members, member_clear);
    g_mutex_lock(&c->lock);
    for (guint i = 0; i < objs->len; i++) {
        uint64_t obj = g_array_index(objs, uint64_t, i);
        DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
        if (!d || d->flushing)
            continue;
        d->flushing = true;
        d->flush_read = UINT64_MAX;
        if (d->rewritten)
            g_array_set_size(d->rewritten, 0);
        /* Writes already in the cache but not yet in the catalog: their
         * extents will point at the object, so their blocks stay dirty. */
        for (guint k = 0; d->pending && k + 1 < d->pending->len; k += 2)
            range_add(&d->rewritten, g_array_index(d->pending, uint64_t, k),
                      g_array_index(d->pending, uint64_t, k + 1));
        Member m = { .obj = obj };
        sqlite3_stmt *st = db_q(c, "SELECT coalesce(max(ref_off+len), 0) FROM extents "
                                "WHERE kind=1 AND ref=?", "u", obj);
        if (st && sqlite3_step(st) == SQLITE_ROW)
            m.end = (uint64_t)sqlite3_column_int64(st, 0);
        if (st)
            sqlite3_reset(st);
        g_array_append_val(members, m);
    }
    uint64_t gen = (uint64_t)c->gen;
    g_mutex_unlock(&c->lock);
    if (members->len == 0)
        return 0;

    int r = 0;
    GError *e = NULL;
    g_autoptr(GArray) srcs = g_array_new(FALSE, TRUE, sizeof(Source));
    g_array_set_clear_func(srcs, source_clear);
    uint64_t total = 0;
    unsigned nfiles = 0;
    for (guint i = 0; i < members->len; i++) {
        Member *m = &g_array_index(members, Member, i);
        m->slices = cache_dirty_slices(c->cache, m->obj, 0, 0, &m->seq, &e);
        if (!m->slices) {
            r = core_fail_from(err, e, EIO, "listing dirty slices");
            g_clear_error(&e);
            break;
        }
        if (m->slices->len)
            nfiles++;
        for (guint j = 0; j < m->slices->len; j++) {
            CacheSlice *cs = &g_array_index(m->slices, CacheSlice, j);
            /* Only bytes some extent references go to tape: a small file
             * in a bundle takes its length, not a whole cache block. */
            uint64_t len = cs->offset >= m->end ? 0 : MIN(cs->length, m->end - cs->offset);
            Source s = { .obj = m->obj, .path = g_strdup(cs->path), .off = cs->offset,
                         .len = len, .full = cs->length, .df_off = total };
            g_array_append_val(srcs, s);
            total += len;
        }
    }
    uint64_t id = 0;
    double secs = 0;
    if (r == 0 && total > 0) {
        g_mutex_lock(&c->lock);
        id = c->next_dumpfile++;
        r = db_meta_set(c, "next_dumpfile", (int64_t)c->next_dumpfile, err);
        g_mutex_unlock(&c->lock);
        if (r == 0)
            r = write_dumpfile(fl, id, kind, gen, srcs, &secs, err);
    }

    g_autoptr(GArray) pieces = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    /* (member index, off, end) triples to mark clean after the commit */
    g_autoptr(GArray) clean = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_lock(&c->lock);
    /* Recording the dumpfile and rewriting the extents is one operation:
     * a failure half way leaves no trace in the catalog. */
    db_op_begin(c);
    if (r == 0 && total > 0)
        r = record_dumpfile_locked(fl, id, kind, gen, total, nfiles, err);
    if (r == 0) {
        guint si = 0;
        for (guint i = 0; i < members->len && r == 0; i++) {
            Member *m = &g_array_index(members, Member, i);
            DirtyObj *d = g_hash_table_lookup(c->dirty, &m->obj);
            for (guint j = 0; j < m->slices->len && r == 0; j++, si++) {
                Source *s = &g_array_index(srcs, Source, si);
                range_subtract(s->off, s->off + s->full, d ? d->rewritten : NULL, pieces);
                for (guint k = 0; k + 1 < pieces->len && r == 0; k += 2) {
                    uint64_t a = g_array_index(pieces, uint64_t, k);
                    uint64_t b = g_array_index(pieces, uint64_t, k + 1);
                    uint64_t wb = MIN(b, s->off + s->len);
                    if (a < wb)
                        r = extent_rewrite_object(c, m->obj, a, wb - a, id,
                                                  s->df_off + (a - s->off), err);
                    uint64_t t[3] = { i, a, b };
                    g_array_append_vals(clean, t, 3);
                }
            }
        }
        if (r == 0) {
            c->bytes_to_tape += total;
            c->taper_seconds += secs;
        }
    }
    r = db_op_end(c, r);
    /* Settle the dirty entries (before the commit, so that it does not
     * make cache objects durable that no row points at any more). */
    for (guint i = 0; i < members->len; i++) {
        Member *m = &g_array_index(members, Member, i);
        DirtyObj *d = g_hash_table_lookup(c->dirty, &m->obj);
        if (!d)
            continue;
        d->flushing = false;
        if (r == 0 && (!d->rewritten || d->rewritten->len == 0)) {
            g_hash_table_remove(c->dirty, &m->obj);
            g_hash_table_remove(c->commit_objs, &m->obj);
        } else if (r == 0) {
            d->since = g_get_monotonic_time();
        }
    }
    if (r < 0) {
        core_set_error(c, r, err && *err ? (*err)->message : "flush failed");
        g_mutex_unlock(&c->lock);
        g_mutex_lock(&fl->lock);
        fl->retry_after = g_get_monotonic_time() + RETRY_BACKOFF_US;
        g_mutex_unlock(&fl->lock);
        return r;
    }
    c->last_error = 0;
    c->last_error_msg[0] = 0;
    /* The bytes become clean after the next commit (which the flusher
     * makes within commit_interval_ms, after bundling what waits). */
    for (guint i = 0; i + 2 < clean->len; i += 3) {
        Member *m = &g_array_index(members, Member, g_array_index(clean, uint64_t, i));
        PendingClean p = { .obj = m->obj, .off = g_array_index(clean, uint64_t, i + 1),
                           .end = g_array_index(clean, uint64_t, i + 2), .seq = m->seq,
                           .after = c->commits };
        g_array_append_val(fl->cleans, p);
    }
    g_mutex_unlock(&c->lock);
    return 0;
}

typedef struct {
    uint64_t obj;
    uint64_t size;
    gint64 since;
} Cand;

/* The first failure of a flush round is the one reported (*first, *err);
 * the errors after it are dropped (each was logged in status). */
static void keep_first(int r, GError *e, int *first, GError **err)
{
    if (r < 0 && !*first) {
        *first = r;
        g_propagate_error(err, e);
    } else if (e) {
        g_error_free(e);
    }
}

static gint cand_cmp(gconstpointer a, gconstpointer b)
{
    const Cand *x = a, *y = b;
    return (x->obj > y->obj) - (x->obj < y->obj);
}

/* Flush dirty objects: with `all`, every one (open or not, bundling the
 * small ones now); otherwise closed large files, and small closed files
 * once a bundle is due. `only` limits it to those objects. */
static int flush_dirty(Flusher *fl, bool all, GArray *only, bool bundle_now, GError **err)
{
    Core *c = fl->c;
    g_autoptr(GArray) cands = g_array_new(FALSE, FALSE, sizeof(Cand));
    g_autoptr(GArray) streams = g_array_new(FALSE, FALSE, sizeof(Cand));
    g_mutex_lock(&c->lock);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->dirty);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        DirtyObj *d = v;
        if (d->flushing)
            continue;
        if (only) {
            bool want = false;
            for (guint i = 0; i < only->len && !want; i++)
                want = g_array_index(only, uint64_t, i) == d->obj;
            if (!want)
                continue;
        }
        sqlite3_stmt *s;
        if (d->ino < 0) {
            s = db_q(c, "SELECT ino FROM versions WHERE id=?", "u", d->obj);
            d->ino = 0; /* an object of a released version: no owner */
            if (s && sqlite3_step(s) == SQLITE_ROW)
                d->ino = sqlite3_column_int64(s, 0);
            if (s)
                sqlite3_reset(s);
        }
        bool open = !all && !only && d->ino > 0 && core_has_writers_locked(c, (uint64_t)d->ino);
        if (open) {
            /* An older version of a file still open (truncated, or
             * copied on write after a snapshot) gets no more writes: it
             * is flushed like a closed file, not streamed. */
            s = db_q(c, "SELECT version FROM inodes WHERE id=? AND death=?", "ui", (uint64_t)d->ino,
                     (int64_t)CORE_INF);
            open = s && sqlite3_step(s) == SQLITE_ROW &&
                   (uint64_t)sqlite3_column_int64(s, 0) == d->obj;
            if (s)
                sqlite3_reset(s);
        }
        if (open && !c->opt.stream_chunk)
            continue;
        if (d->end == 0) {
            s = db_q(c, "SELECT coalesce(max(ref_off+len), 0) FROM extents WHERE kind=1 AND ref=?",
                     "u", d->obj);
            if (s && sqlite3_step(s) == SQLITE_ROW)
                d->end = (uint64_t)sqlite3_column_int64(s, 0);
            if (s)
                sqlite3_reset(s);
        }
        uint64_t size = d->end;
        Cand cd = { .obj = d->obj, .size = size, .since = d->since };
        if (open) {
            if (size >= c->opt.stream_chunk)
                g_array_append_val(streams, cd);
            continue;
        }
        g_array_append_val(cands, cd);
    }
    uint64_t thr = c->opt.bundle_threshold, bsize = c->opt.bundle_size ? c->opt.bundle_size : (64 << 20);
    gint64 delay = (gint64)c->opt.bundle_delay * G_USEC_PER_SEC;
    g_mutex_unlock(&c->lock);
    g_array_sort(cands, cand_cmp);

    int first = 0;
    g_autoptr(GArray) one = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    /* Large files still being written stream to tape: once stream_chunk
     * bytes of one are dirty, one dumpfile follows the writer until it
     * closes the file (flusher_stream.c). Not when small files are to be
     * bundled before a commit: they come first. */
    for (guint i = 0; i < streams->len && !bundle_now; i++) {
        Cand *cd = &g_array_index(streams, Cand, i);
        uint64_t seq = 0, dirty = 0;
        GArray *sl = cache_dirty_slices(c->cache, cd->obj, 0, 0, &seq, NULL);
        for (guint j = 0; sl && j < sl->len; j++)
            dirty += g_array_index(sl, CacheSlice, j).length;
        if (sl)
            g_array_unref(sl);
        if (dirty < c->opt.stream_chunk)
            continue;
        GError *e = NULL;
        int r = stream_file(fl, cd->obj, &e);
        keep_first(r, e, &first, err);
    }
    g_autoptr(GArray) small = g_array_new(FALSE, FALSE, sizeof(Cand));
    uint64_t small_bytes = 0;
    gint64 oldest = G_MAXINT64;
    for (guint i = 0; i < cands->len; i++) {
        Cand *cd = &g_array_index(cands, Cand, i);
        if (cd->size >= thr) {
            g_array_set_size(one, 0);
            g_array_append_val(one, cd->obj);
            GError *e = NULL;
            int r = flush_group(fl, one, CORE_DUMP_FILE, &e);
            keep_first(r, e, &first, err);
        } else {
            g_array_append_val(small, *cd);
            small_bytes += cd->size;
            oldest = MIN(oldest, cd->since);
        }
    }
    bool due = all || only || bundle_now || small_bytes >= bsize ||
               (small->len && g_get_monotonic_time() - oldest >= delay);
    if (!due)
        g_array_set_size(small, 0);
    g_autoptr(GArray) batch = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t bytes = 0;
    for (guint i = 0; i < small->len; i++) {
        Cand *cd = &g_array_index(small, Cand, i);
        g_array_append_val(batch, cd->obj);
        bytes += cd->size;
        if (bytes < bsize && i + 1 < small->len)
            continue;
        GError *e = NULL;
        int r = flush_group(fl, batch, CORE_DUMP_BUNDLE, &e);
        keep_first(r, e, &first, err);
        g_array_set_size(batch, 0);
        bytes = 0;
    }
    /* Name on tape the files this round put there (manifest.c). */
    manifest_write_round(c, fl->taper);
    return first;
}

static int write_index(Flusher *fl, GError **err)
{
    Core *c = fl->c;
    uint64_t seq = 0, id = 0;
    g_autofree char *path = NULL;
    int r = index_prepare(c, &seq, &id, &path, err);
    if (r < 0)
        return r;
    GStatBuf sb;
    if (g_stat(path, &sb) != 0) {
        r = core_fail(err, errno, "%s: %s", path, g_strerror(errno));
        g_unlink(path);
        return r;
    }
    g_autoptr(GArray) srcs = g_array_new(FALSE, TRUE, sizeof(Source));
    g_array_set_clear_func(srcs, source_clear);
    Source s = { .obj = 0, .path = g_strdup(path), .off = 0, .len = (uint64_t)sb.st_size };
    g_array_append_val(srcs, s);
    double secs = 0;
    r = write_dumpfile(fl, id, CORE_DUMP_INDEX, seq, srcs, &secs, err);
    g_unlink(path);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    if (r == 0)
        r = record_dumpfile_locked(fl, id, CORE_DUMP_INDEX, seq, (uint64_t)sb.st_size, 0, err);
    r = db_op_end(c, r);
    if (r == 0) {
        c->bytes_to_tape += (uint64_t)sb.st_size;
        c->taper_seconds += secs;
        r = db_commit(c, err);
        /* Stale again if anything but the record of this index was
         * committed after its copy was taken (the lock was not held). */
        if (r == 0)
            c->index_stale = c->commits > c->index_commits + 1;
    } else {
        core_set_error(c, r, err && *err ? (*err)->message : "index write failed");
    }
    g_mutex_unlock(&c->lock);
    fl->last_index = g_get_monotonic_time();
    return r;
}

static void run_request(Flusher *fl, FlushReq *req)
{
    GError *e = NULL;
    int r = flush_dirty(fl, true, req->objs, false, &e);
    if (req->index) {
        /* The index is written even when some data could not be: it then
         * records what is on tape and names what is only in the cache. */
        GError *ie = NULL;
        int ri = write_index(fl, &ie);
        if (r == 0) {
            r = ri;
            e = ie;
        } else {
            g_clear_error(&ie);
        }
    }
    /* Everything flushed is committed and clean before sync returns. */
    GError *ce = NULL;
    int rc = commit_and_clean(fl, &ce);
    if (r == 0 && rc < 0) {
        r = rc;
        e = ce;
    } else {
        g_clear_error(&ce);
    }
    req->result = r;
    req->err = e;
}

/* Closed small files waiting for a bundle that the next group commit
 * would have to make durable in the cache one by one (several fsyncs
 * each); Core.lock held. */
static guint commit_pending_small(Core *c)
{
    guint n = 0;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, c->commit_objs);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        DirtyObj *d = g_hash_table_lookup(c->dirty, k);
        n += d && !d->flushing;
    }
    return n;
}

#define COMMIT_BUNDLE_MIN 32
#define COMMIT_BUNDLE_ROUNDS 4

bool commit_wants_bundle(Flusher *fl)
{
    Core *c = fl->c;
    g_mutex_lock(&c->lock);
    bool want = c->txn_dirty && !c->opt.no_flusher_triggers &&
                g_get_monotonic_time() - c->last_commit >=
                    (gint64)c->opt.commit_interval_ms * 1000 &&
                commit_pending_small(c) >= COMMIT_BUNDLE_MIN;
    g_mutex_unlock(&c->lock);
    return want;
}

void commit_if_due(Flusher *fl)
{
    Core *c = fl->c;
    g_mutex_lock(&c->lock);
    bool need_commit = c->txn_dirty &&
        g_get_monotonic_time() - c->last_commit >= (gint64)c->opt.commit_interval_ms * 1000;
    if (need_commit) {
        GError *e = NULL;
        if (db_group_commit(c, &e) < 0) {
            g_warning("group commit: %s", e->message);
            g_error_free(e);
        }
    }
    g_mutex_unlock(&c->lock);
    apply_cleans(fl);
}

static void periodic(Flusher *fl)
{
    Core *c = fl->c;
    /* Putting closed small files on tape as bundles is cheaper than making
     * each durable in the cache (several fsyncs each). Files closed while
     * a bundle was written are bundled in turn, a few rounds at most. */
    for (int round = 0; round < COMMIT_BUNDLE_ROUNDS &&
                        g_get_monotonic_time() >= fl->retry_after && commit_wants_bundle(fl);
         round++) {
        GError *e = NULL;
        if (flush_dirty(fl, false, NULL, true, &e) < 0)
            g_warning("bundling before a commit: %s", e ? e->message : "failed");
        g_clear_error(&e);
    }
    commit_if_due(fl);
    g_mutex_lock(&c->lock);
    bool stale = c->index_stale || c->txn_dirty || g_hash_table_size(c->dirty);
    g_mutex_unlock(&c->lock);
    if (c->opt.sync_interval && !c->opt.no_flusher_triggers && stale &&
        g_get_monotonic_time() - fl->last_index >= (gint64)c->opt.sync_interval * G_USEC_PER_SEC) {
        GError *e = NULL;
        if (flush_dirty(fl, true, NULL, false, &e) == 0 && write_index(fl, &e) == 0)
            return;
        if (e) {
            g_warning("periodic sync: %s", e->message);
            g_error_free(e);
        }
        fl->last_index = g_get_monotonic_time();
    }
}

static gpointer flusher_main(gpointer data)
{
    Flusher *fl = data;
    Core *c = fl->c;
    g_mutex_lock(&fl->lock);
    for (;;) {
        FlushReq *req = g_queue_pop_head(&fl->reqs);
        if (req) {
            g_mutex_unlock(&fl->lock);
            run_request(fl, req);
            g_mutex_lock(&fl->lock);
            req->done = true;
            g_cond_broadcast(&fl->cond);
            continue;
        }
        if (fl->stop)
            break;
        /* Scans of the dirty objects are rate-limited: closing many
         * small files must not scan all of them each time. */
        gint64 now = g_get_monotonic_time();
        bool backoff = now < fl->retry_after;
        if (c->opt.no_flusher_triggers)
            fl->kick = false;
        bool urgent = fl->urgent;
        bool scan = !backoff && (urgent || (!c->opt.no_flusher_triggers &&
                                            now - fl->last_scan >= SCAN_INTERVAL_US));
        if (scan)
            fl->urgent = fl->kick = false;
        g_mutex_unlock(&fl->lock);
        if (scan) {
            fl->last_scan = now;
            GError *e = NULL;
            if (flush_dirty(fl, urgent, NULL, false, &e) < 0)
                g_warning("flush: %s", e ? e->message : "failed");
            g_clear_error(&e);
            /* Writers are waiting for space: make it clean now. */
            if (urgent && commit_and_clean(fl, &e) < 0)
                g_warning("commit: %s", e ? e->message : "failed");
            g_clear_error(&e);
        }
        periodic(fl);
        g_mutex_lock(&fl->lock);
        if (fl->stop || fl->reqs.length)
            continue;
        now = g_get_monotonic_time();
        gint64 until = now + (gint64)c->opt.commit_interval_ms * 1000;
        if (fl->kick || fl->urgent)
            until = MIN(until, MAX(fl->last_scan + SCAN_INTERVAL_US, fl->retry_after));
        if (until <= now)
            continue;
        g_cond_wait_until(&fl->cond, &fl->lock, until);
    }
    g_mutex_unlock(&fl->lock);
    return NULL;
}

Flusher *flusher_new(Core *c)
{
    Flusher *fl = g_new0(Flusher, 1);
    fl->c = c;
    g_mutex_init(&fl->lock);
    g_cond_init(&fl->cond);
    g_mutex_init(&fl->plock);
    g_queue_init(&fl->reqs);
    fl->parts = g_array_new(FALSE, FALSE, sizeof(TapePartDone));
    fl->cleans = g_array_new(FALSE, FALSE, sizeof(PendingClean));
    fl->buf = g_malloc(PUSH_CHUNK);
    fl->last_index = g_get_monotonic_time();
    TapeTaperConfig tc = { .part_size = c->cfg.part_size, .ring_size = c->opt.ring_size };
    fl->taper = tape_taper_new(c->lib, &tc);
    fl->thread = g_thread_new("tapefs-flusher", flusher_main, fl);
    return fl;
}

void flusher_free(Flusher *fl)
{
    if (!fl)
        return;
    g_mutex_lock(&fl->lock);
    fl->stop = true;
    g_cond_broadcast(&fl->cond);
    g_mutex_unlock(&fl->lock);
    g_thread_join(fl->thread);
    GError *e = NULL;
    if (commit_and_clean(fl, &e) < 0)
        g_warning("final commit: %s", e ? e->message : "failed");
    g_clear_error(&e);
    g_array_unref(fl->cleans);
    tape_taper_free(fl->taper);
    g_array_unref(fl->parts);
    g_free(fl->buf);
    g_mutex_clear(&fl->plock);
    g_cond_clear(&fl->cond);
    g_mutex_clear(&fl->lock);
    g_free(fl);
}

void flusher_kick(Flusher *fl)
{
    if (!fl)
        return;
    g_mutex_lock(&fl->lock);
    if (!fl->kick) {
        fl->kick = true;
        g_cond_broadcast(&fl->cond);
    }
    g_mutex_unlock(&fl->lock);
}

void flusher_urgent(Flusher *fl)
{
    if (!fl)
        return;
    g_mutex_lock(&fl->lock);
    fl->urgent = true;
    g_cond_broadcast(&fl->cond);
    g_mutex_unlock(&fl->lock);
}

int flusher_run(Flusher *fl, GArray *objs, bool index, GError **err)
{
    FlushReq req = { .objs = objs, .index = index };
    if (g_thread_self() == fl->thread) {
        run_request(fl, &req);
    } else {
        g_mutex_lock(&fl->lock);
        g_queue_push_tail(&fl->reqs, &req);
        g_cond_broadcast(&fl->cond);
        while (!req.done)
            g_cond_wait(&fl->cond, &fl->lock);
        g_mutex_unlock(&fl->lock);
    }
    if (req.result < 0) {
        core_fail(err, EIO, "%s", req.err ? req.err->message : "flush failed");
        g_clear_error(&req.err);
        return -EIO;
    }
    g_clear_error(&req.err);
    return 0;
}

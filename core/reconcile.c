/* reconcile.c — at open, make the cache agree with the committed catalog.
 *
 * A write puts its bytes into the cache before its extent is committed.
 * Across a crash the cache keeps every block its last state save listed
 * dirty (an fsync, an eviction), and that save may be older than the
 * write: a block fsync'ed, flushed to tape and then written again without
 * an fsync comes back "dirty" holding bytes of a write the catalog never
 * recorded, while the catalog maps that range to the dumpfile (or to a
 * hole, or to another object). Serving those bytes would show a write
 * that did not survive, and they would vanish again once the block is
 * flushed (no extent follows them to tape) and evicted: the file would
 * change by itself.
 *
 * So at open, for every object with dirty blocks, the bytes no committed
 * extent points at (kind object, ref = this object) are brought back to
 * what the catalog says: whole blocks are marked clean and evicted (the
 * next read fills them from their extents), and the unreferenced bytes of
 * a partly referenced block are rewritten with the version's bytes (in
 * practice the zeros past a truncation or the end of the file).
 *
 * Runs in core_store_open after the recall is set up and before the
 * flusher starts, on the opening thread; Core.lock is taken to read
 * extents (the fill callback takes it too), never across cache calls. */
#include "core/core_private.h"

#include <errno.h>

/* Committed byte ranges of object `obj` that extents point at, as sorted,
 * merged (start, end) pairs. */
static GArray *referenced_ranges(Core *c, uint64_t obj)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_lock(&c->lock);
    sqlite3_stmt *s = db_q(c, "SELECT ref_off, ref_off+len FROM extents WHERE kind=? AND ref=? "
                           "ORDER BY ref_off", "iu", (int64_t)EXT_OBJECT, obj);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        uint64_t a = (uint64_t)sqlite3_column_int64(s, 0);
        uint64_t b = (uint64_t)sqlite3_column_int64(s, 1);
        guint n = out->len;
        if (n && a <= g_array_index(out, uint64_t, n - 1)) {
            uint64_t *last = &g_array_index(out, uint64_t, n - 1);
            *last = MAX(*last, b);
            continue;
        }
        uint64_t pair[2] = { a, b };
        g_array_append_vals(out, pair, 2);
    }
    if (s)
        sqlite3_reset(s);
    g_mutex_unlock(&c->lock);
    return out;
}

/* Rewrite [a, b) of `obj` with its version's bytes from the extents. */
static int rewrite_from_extents(Core *c, uint64_t obj, uint64_t a, uint64_t b, GError **err)
{
    g_autofree guint8 *buf = g_malloc(b - a);
    int r = filedata_fill(c, obj, a, buf, b - a);
    if (r == -ESTALE)
        return 0; /* no version reads this object's own bytes any more */
    if (r < 0)
        return core_fail(err, -r, "cache object %" G_GUINT64_FORMAT ": cannot restore bytes "
                         "%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT " from the catalog",
                         obj, a, b);
    GError *e = NULL;
    ssize_t n = cache_write(c->cache, obj, a, buf, b - a, &e);
    if (n != (ssize_t)(b - a)) {
        r = core_fail_from(err, e, EIO, "restoring cache bytes");
        g_clear_error(&e);
        return r;
    }
    return 0;
}

/* One dirty object: *dropped counts the bytes of blocks discarded. */
static int reconcile_object(Core *c, uint64_t obj, uint64_t *dropped, GError **err)
{
    uint64_t seq = 0, bs = c->cfg.block_size;
    GError *e = NULL;
    g_autoptr(GArray) slices = cache_dirty_slices(c->cache, obj, 0, 0, &seq, &e);
    if (!slices) {
        int r = core_fail_from(err, e, EIO, "listing dirty cache blocks");
        g_clear_error(&e);
        return r;
    }
    g_autoptr(GArray) refs = referenced_ranges(c, obj);
    g_autoptr(GArray) gaps = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_autoptr(GArray) drop = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_autoptr(GArray) fix = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (guint i = 0; i < slices->len; i++) {
        CacheSlice *cs = &g_array_index(slices, CacheSlice, i);
        range_subtract(cs->offset, cs->offset + cs->length, refs, gaps);
        for (guint k = 0; k + 1 < gaps->len; k += 2) {
            uint64_t g1 = g_array_index(gaps, uint64_t, k), g2 = g_array_index(gaps, uint64_t, k + 1);
            /* Whole blocks inside the gap go; the rest of the gap shares
             * its block with referenced bytes and is rewritten. */
            uint64_t fb = (g1 + bs - 1) / bs * bs, lb = g2 / bs * bs;
            if (fb >= lb) {
                range_add(&fix, g1, g2);
                continue;
            }
            range_add(&drop, fb, lb);
            if (g1 < fb)
                range_add(&fix, g1, fb);
            if (lb < g2)
                range_add(&fix, lb, g2);
        }
    }
    for (guint k = 0; k + 1 < fix->len; k += 2) {
        int r = rewrite_from_extents(c, obj, g_array_index(fix, uint64_t, k),
                                     g_array_index(fix, uint64_t, k + 1), err);
        if (r < 0)
            return r;
    }
    for (guint k = 0; k + 1 < drop->len; k += 2) {
        uint64_t a = g_array_index(drop, uint64_t, k), b = g_array_index(drop, uint64_t, k + 1);
        if (cache_mark_clean(c->cache, obj, a, b - a, seq, &e) < 0) {
            int r = core_fail_from(err, e, EIO, "discarding unrecorded cache blocks");
            g_clear_error(&e);
            return r;
        }
        *dropped += b - a;
    }
    if (drop->len && cache_drop_clean(c->cache, obj, &e) < 0) {
        int r = core_fail_from(err, e, EIO, "evicting unrecorded cache blocks");
        g_clear_error(&e);
        return r;
    }
    return 0;
}

int reconcile_cache(Core *c, GError **err)
{
    g_autoptr(GArray) objs = cache_dirty_objects(c->cache);
    uint64_t dropped = 0;
    for (guint i = 0; objs && i < objs->len; i++) {
        int r = reconcile_object(c, g_array_index(objs, uint64_t, i), &dropped, err);
        if (r < 0)
            return r;
    }
    if (dropped)
        g_message("cache: discarded %" G_GUINT64_FORMAT " bytes of writes the catalog never "
                  "recorded (an unclean shutdown); files read what was committed", dropped);
    return 0;
}

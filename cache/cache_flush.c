/* cache_flush.c — what the owner needs to flush and to inspect: fsync per
 * mode, dirty slices, mark clean, dropping clean blocks, block states and
 * per-object usage.
 *
 * fsync by mode (as nbdkit's cache filter):
 *   writeback     save the object's state (fdatasync the data file, then
 *                 the state file if the dirty set changed); see
 *                 cache_object.c for why this order is crash safe
 *   writethrough  the same, then call the owner's flush if the object has
 *                 dirty blocks (the owner puts them on tape and marks them
 *                 clean before returning)
 *   unsafe        nothing
 *
 * Locks: o->lock for block states (c->lock inside it via block_set_state);
 * the flush callback is called with no lock held.
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <inttypes.h>

static void slice_clear(gpointer p)
{
    CacheSlice *s = p;
    g_free(s->path);
}

/* [first block, last block] covering the byte range; false if empty. */
static bool block_span(Cache *c, uint64_t offset, uint64_t len,
                       uint64_t *first, uint64_t *last, uint64_t *end)
{
    *end = len == 0 || len > UINT64_MAX - offset ? UINT64_MAX : offset + len;
    *first = offset >> c->block_shift;
    *last = (*end - 1) >> c->block_shift;
    return offset < *end;
}

static bool chunk_in_span(uint64_t cn, uint64_t first, uint64_t last)
{
    uint64_t lo = cn << CACHE_CHUNK_SHIFT, hi = lo + CACHE_CHUNK - 1;
    return hi >= first && lo <= last;
}

int cache_fsync(Cache *c, uint64_t id, GError **err)
{
    int lrc = 0;
    CacheObject *o = cache_object_lookup(c, id, &lrc, err);
    if (!o)
        return lrc;
    CacheMode mode = (CacheMode)g_atomic_int_get(&c->mode);
    int r = 0;
    if (mode != CACHE_UNSAFE)
        r = obj_save_state(o, err);
    if (r == 0 && mode == CACHE_WRITETHROUGH && c->flush) {
        g_mutex_lock(&o->lock);
        bool dirty = o->ndirty > 0;
        g_mutex_unlock(&o->lock);
        if (dirty) {
            g_mutex_lock(&c->lock);
            c->st.flushes++;
            g_mutex_unlock(&c->lock);
            r = c->flush(c->owner, id);
            if (r < 0)
                cache_fail(err, -r, "flushing cache object %" PRIu64
                           " failed: %s", id, g_strerror(-r));
        }
    }
    cache_object_unref(o);
    return r;
}

GArray *cache_dirty_slices(Cache *c, uint64_t id, uint64_t offset,
                           uint64_t len, uint64_t *seq, GError **err)
{
    int lrc = 0;
    CacheObject *o = cache_object_lookup(c, id, &lrc, err);
    if (!o)
        return NULL;
    GArray *out = g_array_new(FALSE, FALSE, sizeof(CacheSlice));
    g_array_set_clear_func(out, slice_clear);
    uint64_t first, last, end;
    bool any = block_span(c, offset, len, &first, &last, &end);
    unsigned shift = c->block_shift;

    g_mutex_lock(&o->lock);
    if (seq)
        *seq = o->seq;
    g_autoptr(GPtrArray) dl = obj_dirty_chunks(o); /* only these matter */
    uint64_t run_first = 0, run_n = 0;
    for (guint k = 0; any && k <= dl->len; k++) {
        bool flush_run = k == dl->len;
        CacheChunk *ch = flush_run ? NULL : dl->pdata[k];
        uint64_t cn = flush_run ? 0 : ch->no;
        if (!flush_run && (!ch->ndirty || !chunk_in_span(cn, first, last)))
            continue;
        for (uint64_t i = 0; !flush_run && i < CACHE_CHUNK; i++) {
            uint64_t idx = (cn << CACHE_CHUNK_SHIFT) + i;
            if (idx < first || idx > last)
                continue;
            CacheBlock *b = &ch->blocks[i];
            if (b->state != BLK_DIRTY)
                continue;
            if (run_n && idx == run_first + run_n) {
                run_n++;
                continue;
            }
            if (run_n) {
                uint64_t s = MAX(offset, run_first << shift);
                uint64_t e = MIN(end, (run_first + run_n) << shift);
                CacheSlice sl = { g_strdup(o->path), s, e - s };
                g_array_append_val(out, sl);
            }
            run_first = idx;
            run_n = 1;
        }
        if (flush_run && run_n) {
            uint64_t s = MAX(offset, run_first << shift);
            uint64_t e = MIN(end, (run_first + run_n) << shift);
            CacheSlice sl = { g_strdup(o->path), s, e - s };
            g_array_append_val(out, sl);
        }
    }
    g_mutex_unlock(&o->lock);
    cache_object_unref(o);
    return out;
}

int cache_mark_clean(Cache *c, uint64_t id, uint64_t offset, uint64_t len,
                     uint64_t seq, GError **err)
{
    int lrc = 0;
    CacheObject *o = cache_object_lookup(c, id, &lrc, err);
    if (!o)
        return lrc;
    uint64_t first, last, end;
    bool any = block_span(c, offset, len, &first, &last, &end);
    int r = 0;
    g_mutex_lock(&o->lock);
    if (seq > o->seq) {
        r = cache_fail(err, EINVAL, "cache_mark_clean: sequence %" PRIu64
                       " of object %" PRIu64 " was never handed out "
                       "(latest %" PRIu64 ")", seq, id, o->seq);
    } else if (any) {
        /* Only chunks with dirty blocks; taken first because cleaning
         * takes a chunk out of the tree. DIRTY -> CLEAN frees no chunk. */
        g_autoptr(GPtrArray) dl = obj_dirty_chunks(o);
        for (guint k = 0; k < dl->len; k++) {
            CacheChunk *ch = dl->pdata[k];
            uint64_t cn = ch->no;
            if (!ch->ndirty || !chunk_in_span(cn, first, last))
                continue;
            for (uint64_t i = 0; i < CACHE_CHUNK; i++) {
                uint64_t idx = (cn << CACHE_CHUNK_SHIFT) + i;
                if (idx < first || idx > last)
                    continue;
                CacheBlock *b = &ch->blocks[i];
                /* A block a writer holds gets a newer seq when the write
                 * ends, so it stays dirty either way; leaving it alone
                 * keeps the writer's space reservation exact. */
                if (b->state == BLK_DIRTY && b->seq <= seq && !b->writer)
                    block_set_state(o, b, BLK_CLEAN);
            }
        }
    }
    g_mutex_unlock(&o->lock);
    obj_put(o);
    return r;
}

static int drop_clean_one(CacheObject *o, GError **err)
{
    int r = 0;
    g_mutex_lock(&o->lock);
    g_autoptr(GArray) cl = obj_chunk_list(o);
    for (guint k = 0; k < cl->len && r >= 0; k++) {
        uint64_t cn = g_array_index(cl, uint64_t, k);
        for (uint64_t i = 0; i < CACHE_CHUNK && r >= 0; i++) {
            /* Looked up each time: an eviction may free the chunk. */
            CacheBlock *b = obj_block(o, (cn << CACHE_CHUNK_SHIFT) + i,
                                      false);
            if (!b)
                break;
            if (b->state == BLK_CLEAN)
                r = space_evict_locked(o, b, err);
        }
    }
    g_mutex_unlock(&o->lock);
    return r < 0 ? r : 0;
}

int cache_drop_clean(Cache *c, uint64_t id, GError **err)
{
    if (id != 0) {
        int lrc = 0;
        CacheObject *o = cache_object_lookup(c, id, &lrc, err);
        if (!o)
            return lrc;
        int r = drop_clean_one(o, err);
        obj_put(o);
        return r;
    }
    g_mutex_lock(&c->lock);
    GList *objs = g_hash_table_get_values(c->objects);
    for (GList *l = objs; l; l = l->next)
        cache_object_ref(l->data);
    g_mutex_unlock(&c->lock);
    int r = 0;
    for (GList *l = objs; l; l = l->next) {
        if (r == 0)
            r = drop_clean_one(l->data, err);
        obj_put(l->data);
        cache_fds_trim(c); /* evicting opens files: keep to the budget */
    }
    g_list_free(objs);
    return r;
}

int cache_block_state(Cache *c, uint64_t id, uint64_t offset, GError **err)
{
    int lrc = 0;
    CacheObject *o = cache_object_lookup(c, id, &lrc, err);
    if (!o)
        return lrc;
    g_mutex_lock(&o->lock);
    CacheBlock *b = offset < CACHE_MAX_OFFSET
                        ? obj_block(o, offset >> c->block_shift, false) : NULL;
    int st = b ? b->state : BLK_ABSENT;
    g_mutex_unlock(&o->lock);
    cache_object_unref(o);
    return st == BLK_DIRTY ? CACHE_BLOCK_DIRTY
           : st == BLK_CLEAN ? CACHE_BLOCK_CLEAN : CACHE_BLOCK_ABSENT;
}

int cache_object_usage(Cache *c, uint64_t id, uint64_t *dirty,
                       uint64_t *clean, GError **err)
{
    /* A question, not a use: an object not loaded since the open has
     * nothing cached (its dirty blocks would have loaded it), so it is
     * answered without loading it. */
    g_mutex_lock(&c->lock);
    CacheObject *o = g_hash_table_lookup(c->objects, &id);
    if (o)
        cache_object_ref(o);
    g_mutex_unlock(&c->lock);
    if (!o) {
        if (id == 0 || !cache_object_exists(c, id))
            return cache_fail(err, ENOENT, "cache object %" PRIu64
                              " does not exist", id);
        if (dirty)
            *dirty = 0;
        if (clean)
            *clean = 0;
        return 0;
    }
    if (o->damaged) {
        cache_object_unref(o);
        return cache_fail(err, EIO, "cache object %" PRIu64 " is "
                          "quarantined: its state file was damaged", id);
    }
    g_mutex_lock(&o->lock);
    if (dirty)
        *dirty = o->ndirty * c->block_size;
    if (clean)
        *clean = o->nclean * c->block_size;
    g_mutex_unlock(&o->lock);
    cache_object_unref(o);
    return 0;
}

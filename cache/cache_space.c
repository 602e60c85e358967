/* cache_space.c — space accounting, the LRU list of clean blocks, reclaim
 * (eviction by hole punching) and the bounded wait for dirty space.
 *
 * Accounting is in whole blocks: dirty_bytes and clean_bytes count
 * block_size per dirty or clean block; reserved_bytes counts blocks that
 * writers in flight may turn dirty. Reclaim starts when dirty + clean
 * passes hi_pct of size_limit and evicts clean blocks, least recently used
 * first, until dirty + clean is at most lo_pct. Dirty blocks are not in
 * the LRU and are never evicted. A writer that would push dirty + reserved
 * past size_limit calls the owner's need_space, then waits on
 * c->space_cond (signalled whenever dirty or reserved bytes go down) for
 * at most dirty_wait_ms, then fails with -ENOSPC having changed nothing.
 *
 * Eviction of a block whose dirty state is still in the durable state
 * file saves the state file first (see cache_object.c, ordering 2).
 *
 * Locks: c->lock guards the LRU links, the byte counters, the stats and
 * c->reclaiming; block states are under o->lock. Order: o->save_lock ->
 * o->lock -> c->lock. Reclaim picks a victim under c->lock, drops it, then
 * takes o->lock and re-checks; no lock is held across fallocate or a
 * callback.
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>

void lru_append_locked(Cache *c, CacheBlock *b)
{
    b->lru_next = NULL;
    b->lru_prev = c->lru_tail;
    if (c->lru_tail)
        c->lru_tail->lru_next = b;
    else
        c->lru_head = b;
    c->lru_tail = b;
}

void lru_unlink_locked(Cache *c, CacheBlock *b)
{
    if (b->lru_prev)
        b->lru_prev->lru_next = b->lru_next;
    else
        c->lru_head = b->lru_next;
    if (b->lru_next)
        b->lru_next->lru_prev = b->lru_prev;
    else
        c->lru_tail = b->lru_prev;
    b->lru_prev = b->lru_next = NULL;
}

void lru_touch_locked(Cache *c, CacheBlock *b)
{
    if (c->lru_tail == b)
        return;
    lru_unlink_locked(c, b);
    lru_append_locked(c, b);
}

void block_set_state(CacheObject *o, CacheBlock *b, uint8_t state)
{
    Cache *c = o->cache;
    uint64_t bs = c->block_size;
    if (b->state == state)
        return;
    g_mutex_lock(&c->lock);
    if (b->state == BLK_CLEAN) {
        lru_unlink_locked(c, b);
        c->clean_bytes -= bs;
        o->nclean--;
    } else if (b->state == BLK_DIRTY) {
        c->dirty_bytes -= bs;
        o->ndirty--;
        o->state_stale = true;
        g_cond_broadcast(&c->space_cond);
    }
    if (state == BLK_CLEAN) {
        lru_append_locked(c, b);
        c->clean_bytes += bs;
        o->nclean++;
    } else if (state == BLK_DIRTY) {
        c->dirty_bytes += bs;
        o->ndirty++;
        o->state_stale = true;
    }
    g_mutex_unlock(&c->lock);
    CacheChunk *ch = block_chunk(b);
    if (b->state == BLK_DIRTY)
        ch->ndirty--;
    if (state == BLK_DIRTY)
        ch->ndirty++;
    b->state = state;
    b->gen++;
    obj_chunk_dirty_update(o, ch);
}

int space_reserve(Cache *c, uint64_t need, GError **err)
{
    if (c->size_limit == 0 || need == 0)
        return 0;
    g_mutex_lock(&c->lock);
    if (need > c->size_limit) {
        c->st.enospc++;
        g_mutex_unlock(&c->lock);
        return cache_fail(err, ENOSPC, "write of %" PRIu64 " new bytes is "
                          "larger than the cache size limit (%" PRIu64 ")",
                          need, c->size_limit);
    }
    if (c->dirty_bytes + c->reserved_bytes + need > c->size_limit) {
        c->st.waits++;
        gint64 start = g_get_monotonic_time();
        gint64 deadline = start + (gint64)c->dirty_wait_ms * 1000;
        gint64 next_call = start;
        while (c->dirty_bytes + c->reserved_bytes + need > c->size_limit) {
            gint64 now = g_get_monotonic_time();
            if (now >= deadline) {
                c->st.enospc++;
                uint64_t dirty = c->dirty_bytes;
                g_mutex_unlock(&c->lock);
                return cache_fail(err, ENOSPC, "cache full: %" PRIu64
                                  " dirty bytes of %" PRIu64 " allowed did "
                                  "not drain within %u ms", dirty,
                                  c->size_limit, c->dirty_wait_ms);
            }
            if (c->need_space && now >= next_call) {
                /* Ask again every second while waiting. */
                next_call = now + G_TIME_SPAN_SECOND;
                g_mutex_unlock(&c->lock);
                c->need_space(c->owner);
                g_mutex_lock(&c->lock);
                continue;
            }
            gint64 until = c->need_space ? MIN(deadline, next_call)
                                         : deadline;
            g_cond_wait_until(&c->space_cond, &c->lock, until);
        }
    }
    c->reserved_bytes += need;
    g_mutex_unlock(&c->lock);
    return 0;
}

void space_unreserve(Cache *c, uint64_t need)
{
    if (c->size_limit == 0 || need == 0)
        return;
    g_mutex_lock(&c->lock);
    c->reserved_bytes -= need;
    g_cond_broadcast(&c->space_cond);
    g_mutex_unlock(&c->lock);
}

void space_punch(CacheObject *o, int fd, uint64_t off, uint64_t len)
{
    static gint warned;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) < 0 && g_atomic_int_compare_and_exchange(&warned,
                                                                       0, 1))
        /* The block is forgotten all the same; only the space stays. */
        g_warning("cannot punch holes in %s: %s", o->path, g_strerror(errno));
}

int space_evict_locked(CacheObject *o, CacheBlock *b, GError **err)
{
    Cache *c = o->cache;
    if (b->state != BLK_CLEAN || b->writer || b->readers || o->deleted)
        return 0;
    obj_hold_excl(o, b); /* free: checked above */
    int r = 0;
    if (b->disk_dirty) {
        g_mutex_unlock(&o->lock);
        r = obj_save_state(o, err);
        g_mutex_lock(&o->lock);
    }
    /* With the exclusive hold the block stays CLEAN (only DIRTY -> CLEAN
     * happens without a hold) and the save cleared disk_dirty. */
    if (r == 0 && !b->disk_dirty) {
        int fd = obj_fd_locked(o, err);
        if (fd < 0) {
            r = fd;
        } else {
            g_mutex_unlock(&o->lock);
            space_punch(o, fd, b->index * c->block_size, c->block_size);
            g_mutex_lock(&o->lock);
            block_set_state(o, b, BLK_ABSENT);
            g_mutex_lock(&c->lock);
            c->st.evictions++;
            g_mutex_unlock(&c->lock);
            r = 1;
        }
    }
    obj_release(o, b);
    obj_wake(o);
    obj_chunk_trim(o, b->index);
    return r;
}

void space_reclaim(Cache *c)
{
    g_mutex_lock(&c->lock);
    if (c->size_limit == 0 || c->reclaiming ||
        c->dirty_bytes + c->clean_bytes <= c->hi_bytes) {
        g_mutex_unlock(&c->lock);
        return;
    }
    c->reclaiming = true;
    uint64_t tries = c->clean_bytes / c->block_size + 16;
    while (c->dirty_bytes + c->clean_bytes > c->lo_bytes && c->lru_head &&
           tries-- > 0) {
        CacheBlock *b = c->lru_head;
        CacheObject *o = cache_object_ref(b->obj);
        uint64_t idx = b->index;
        /* If it cannot go now (held), it was just used: it goes last. */
        lru_touch_locked(c, b);
        g_mutex_unlock(&c->lock);
        g_autoptr(GError) e = NULL;
        g_mutex_lock(&o->lock);
        /* Looked up again: with c->lock dropped, the block may have been
         * evicted by another thread and its chunk freed. */
        b = obj_block(o, idx, false);
        if (b && space_evict_locked(o, b, &e) < 0)
            g_warning("reclaim: %s", e->message);
        g_mutex_unlock(&o->lock);
        obj_put(o);
        cache_fds_trim(c); /* evicting opens files: keep to the budget */
        g_mutex_lock(&c->lock);
    }
    c->reclaiming = false;
    g_mutex_unlock(&c->lock);
}

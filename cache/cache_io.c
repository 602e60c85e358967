/* cache_io.c — reading, writing and truncating object bytes.
 *
 * Reads: runs of present blocks are read with one pread under shared
 * holds; an absent block calls the owner's fill (no lock, no hold), then
 * takes an exclusive hold and installs the filled block as CLEAN only if
 * the block is still absent; if a writer or another filler got there
 * first, the bytes in the file are newer and are read instead. A block's
 * gen counts its state changes: if the block is absent again but its gen
 * moved (written, flushed and evicted while the fill ran), the fill may be
 * older than that write and is done again; writes check the same way
 * before merging a filled partial block. A truncation of the object
 * while a fill ran counts the same way (o->trunc_gen). With
 * cache-on-read off the filled block is served from the bounce buffer and
 * not kept.
 *
 * Writes: unaligned head and tail blocks are read-modify-written. An
 * absent partial block is filled first (no lock, no hold). Then the
 * writer reserves dirty space (may wait, see cache_space.c), takes
 * exclusive holds on every block of the range in ascending order (if the
 * blocks turning dirty are more than reserved for, it lets go and
 * reserves again, so dirty bytes never pass the limit), writes
 * the bytes, and only then bumps the object's write sequence and records
 * it on the blocks, which become DIRTY. Because the sequence is taken after
 * the bytes are in the file, a dirty-slice list taken while a write is in
 * flight carries a smaller sequence, and cache_mark_clean with it leaves
 * the re-written blocks dirty.
 *
 * Locks: o->lock for block states and holds, c->lock (inside it) for the
 * LRU, accounting and stats. No lock is held across pread/pwrite/fallocate
 * or an owner callback; holds are (see cache_internal.h).
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static int check_range(uint64_t off, uint64_t len, GError **err)
{
    if (off >= CACHE_MAX_OFFSET || len > CACHE_MAX_OFFSET - off ||
        len > (uint64_t)G_MAXSSIZE)
        return cache_fail(err, EFBIG, "cache range at %" PRIu64 " (+%" PRIu64
                          ") is past the largest object offset", off, len);
    return 0;
}

/* How cache_read and cache_write (named by `op`) start: a buffer unless
 * len is 0, a range within CACHE_MAX_OFFSET, then the object. Returns it
 * with a reference the caller drops, or NULL with *rc the negative errno
 * (and err set). */
static CacheObject *io_object(Cache *c, const char *op, uint64_t id,
                              const void *buf, uint64_t offset, size_t len,
                              int *rc, GError **err)
{
    if (!buf && len) {
        *rc = cache_fail(err, EINVAL, "%s: no buffer", op);
        return NULL;
    }
    *rc = check_range(offset, len, err);
    if (*rc < 0)
        return NULL;
    return cache_object_lookup(c, id, rc, err);
}

static bool cache_on_read_now(Cache *c)
{
    if (c->cache_on_read_path)
        return g_file_test(c->cache_on_read_path, G_FILE_TEST_EXISTS);
    return c->cache_on_read;
}

static int call_fill(Cache *c, CacheObject *o, uint64_t idx, char *buf,
                     GError **err)
{
    uint64_t off = idx << c->block_shift;
    g_mutex_lock(&c->lock);
    c->st.misses++;
    c->st.fills++;
    g_mutex_unlock(&c->lock);
    int r = 0;
    if (c->fill)
        r = c->fill(c->owner, o->id, off, buf, c->block_size);
    else
        memset(buf, 0, c->block_size);
    if (r < 0)
        return cache_fail(err, -r, "filling block at %" PRIu64 " of cache "
                          "object %" PRIu64 " failed: %s", off, o->id,
                          g_strerror(-r));
    return 0;
}

static int object_gone(CacheObject *o, GError **err)
{
    return cache_fail(err, ENOENT, "cache object %" PRIu64 " was deleted",
                      o->id);
}

/* Serves [pos, stop) of absent block idx through a fill. */
static int read_miss(Cache *c, CacheObject *o, uint64_t idx, char *fillbuf,
                     char *dst, uint64_t pos, uint64_t stop, GError **err)
{
    uint64_t boff = idx << c->block_shift;
    CacheBlock *b;
    uint8_t state;
    int r;
    bool keep = cache_on_read_now(c); /* may stat a path: no lock held */
    for (;;) {
        g_mutex_lock(&o->lock);
        b = obj_block(o, idx, true);
        uint32_t gen = b->gen;
        uint64_t tgen = o->trunc_gen;
        o->pins++; /* keeps b's chunk until the hold is taken */
        g_mutex_unlock(&o->lock);
        r = call_fill(c, o, idx, fillbuf, err);
        g_mutex_lock(&o->lock);
        if (r < 0) {
            o->pins--;
            obj_chunk_trim(o, idx);
            g_mutex_unlock(&o->lock);
            return r;
        }
        bool held = obj_hold_excl(o, b);
        o->pins--;
        if (!held) {
            g_mutex_unlock(&o->lock);
            return object_gone(o, err);
        }
        state = b->state;
        /* Absent again but written, flushed and evicted meanwhile, or
         * the object was truncated: the fill may predate that. Fill
         * again. */
        if (state != BLK_ABSENT || (b->gen == gen && o->trunc_gen == tgen))
            break;
        obj_release(o, b);
        obj_wake(o);
        g_mutex_unlock(&o->lock);
    }
    int fd = obj_fd_locked(o, err);
    g_mutex_unlock(&o->lock);
    bool installed = false;
    if (fd < 0) {
        r = fd;
    } else if (state != BLK_ABSENT) {
        r = cache_pread_full(fd, dst, stop - pos, pos);
        if (r < 0)
            cache_fail(err, -r, "cannot read cache file %s: %s", o->path,
                       g_strerror(-r));
    } else {
        memcpy(dst, fillbuf + (pos - boff), stop - pos);
        installed = keep && cache_pwrite_full(fd, fillbuf, c->block_size,
                                              boff) == 0;
    }
    g_mutex_lock(&o->lock);
    if (installed)
        block_set_state(o, b, BLK_CLEAN);
    obj_release(o, b);
    obj_wake(o);
    obj_chunk_trim(o, idx); /* not kept (cache-on-read off) */
    g_mutex_unlock(&o->lock);
    if (installed)
        space_reclaim(c);
    return r;
}

ssize_t cache_read(Cache *c, uint64_t id, uint64_t offset, void *buf,
                   size_t len, GError **err)
{
    int r = 0;
    CacheObject *o = io_object(c, "cache_read", id, buf, offset, len, &r,
                               err);
    if (!o)
        return r;
    unsigned shift = c->block_shift;
    uint64_t pos = offset, end = offset + len;
    uint64_t last_idx = len ? (end - 1) >> shift : 0;
    char *out = buf;
    uint64_t miss_bytes = 0;
    g_autofree char *fillbuf = NULL;
    while (r == 0 && pos < end) {
        uint64_t idx = pos >> shift;
        g_mutex_lock(&o->lock);
        CacheBlock *b = obj_block(o, idx, false);
        if (!b || b->state == BLK_ABSENT) {
            g_mutex_unlock(&o->lock);
            if (!fillbuf)
                fillbuf = g_malloc(c->block_size);
            uint64_t stop = MIN(end, (idx + 1) << shift);
            r = read_miss(c, o, idx, fillbuf, out + (pos - offset), pos,
                          stop, err);
            miss_bytes += stop - pos;
            pos = stop;
            continue;
        }
        if (!obj_hold_shared(o, b)) {
            g_mutex_unlock(&o->lock);
            r = object_gone(o, err);
            break;
        }
        if (b->state == BLK_ABSENT) { /* evicted while we waited */
            obj_release(o, b);
            obj_wake(o);
            g_mutex_unlock(&o->lock);
            continue;
        }
        uint64_t n = 1;
        while (idx + n <= last_idx) {
            CacheBlock *nb = obj_block(o, idx + n, false);
            if (!nb || nb->state == BLK_ABSENT || nb->writer || nb->wwait)
                break;
            obj_hold_shared(o, nb); /* does not wait: no writer */
            n++;
        }
        int fd = obj_fd_locked(o, err);
        g_mutex_unlock(&o->lock);
        uint64_t stop = MIN(end, (idx + n) << shift);
        if (fd < 0) {
            r = fd;
        } else {
            r = cache_pread_full(fd, out + (pos - offset), stop - pos, pos);
            if (r < 0)
                cache_fail(err, -r, "cannot read cache file %s: %s",
                           o->path, g_strerror(-r));
        }
        g_mutex_lock(&o->lock);
        g_mutex_lock(&c->lock);
        for (uint64_t i = 0; i < n; i++) {
            CacheBlock *hb = obj_block(o, idx + i, false);
            if (hb->state == BLK_CLEAN)
                lru_touch_locked(c, hb);
        }
        c->st.hits += n;
        if (r == 0)
            c->st.bytes_read += stop - pos;
        g_mutex_unlock(&c->lock);
        for (uint64_t i = 0; i < n; i++)
            obj_release(o, obj_block(o, idx + i, false));
        obj_wake(o);
        g_mutex_unlock(&o->lock);
        pos = stop;
    }
    if (r == 0 && miss_bytes) {
        g_mutex_lock(&c->lock);
        c->st.bytes_read += miss_bytes;
        g_mutex_unlock(&c->lock);
    }
    obj_put(o);
    return r < 0 ? r : (ssize_t)len;
}

/* ------------------------------------------------------------------ */
/* Writes                                                             */

typedef struct {
    uint64_t first, last, end;   /* block range; byte end of the write */
    bool part[2];                /* head / tail block is partial */
    uint64_t pidx[2];            /* their block numbers */
    char *pbuf[2];               /* their block images */
    bool filled[2];              /* pbuf holds a fill of an absent block */
    uint32_t gen[2];             /* the block's gen when the fill began */
    uint64_t tgen[2];            /* the object's trunc_gen then */
} WritePlan;

static void release_range(CacheObject *o, uint64_t first, uint64_t upto)
{
    for (uint64_t i = first; i < upto; i++)
        obj_release(o, obj_block(o, i, false));
    obj_wake(o);
}

/* Takes exclusive holds on the plan's blocks. 0, -ENOENT (deleted) or
 * -EAGAIN (a partial block went absent and needs a fill first). o->lock
 * held. */
static int write_hold(CacheObject *o, WritePlan *w, bool use_file[2])
{
    for (uint64_t i = w->first; i <= w->last; i++) {
        if (!obj_hold_excl(o, obj_block(o, i, true))) {
            release_range(o, w->first, i);
            return -ENOENT;
        }
    }
    for (int k = 0; k < 2; k++) {
        if (!w->part[k])
            continue;
        CacheBlock *b = obj_block(o, w->pidx[k], false);
        uint8_t st = b->state;
        if (st == BLK_ABSENT && (!w->filled[k] || b->gen != w->gen[k] ||
                                 o->trunc_gen != w->tgen[k])) {
            /* Not filled, or the fill may predate a write that has since
             * been flushed and evicted, or a truncation: fill (again)
             * first. */
            w->filled[k] = false;
            release_range(o, w->first, w->last + 1);
            return -EAGAIN;
        }
        use_file[k] = st != BLK_ABSENT;
    }
    return 0;
}

static int write_bytes(Cache *c, CacheObject *o, int fd, WritePlan *w,
                       const bool use_file[2], uint64_t off, const char *src)
{
    unsigned shift = c->block_shift;
    uint64_t bs = c->block_size;
    int r = 0;
    for (int k = 0; k < 2 && r == 0; k++) {
        if (!w->part[k])
            continue;
        uint64_t boff = w->pidx[k] << shift;
        if (!w->pbuf[k])
            w->pbuf[k] = g_malloc(bs);
        if (use_file[k])
            r = cache_pread_full(fd, w->pbuf[k], bs, boff);
        if (r < 0)
            break;
        uint64_t s = MAX(off, boff), e = MIN(w->end, boff + bs);
        memcpy(w->pbuf[k] + (s - boff), src + (s - off), e - s);
        r = cache_pwrite_full(fd, w->pbuf[k], bs, boff);
    }
    uint64_t ms = w->part[0] ? w->first + 1 : w->first;
    uint64_t me = w->part[1] || (w->part[0] && w->first == w->last)
                      ? w->last : w->last + 1;
    if (r == 0 && ms < me)
        r = cache_pwrite_full(fd, src + ((ms << shift) - off),
                              (me - ms) << shift, ms << shift);
    return r;
}

ssize_t cache_write(Cache *c, uint64_t id, uint64_t offset, const void *buf,
                    size_t len, GError **err)
{
    int r = 0;
    CacheObject *o = io_object(c, "cache_write", id, buf, offset, len, &r,
                               err);
    if (!o)
        return r;
    if (len == 0) {
        cache_object_unref(o);
        return 0;
    }
    unsigned shift = c->block_shift;
    uint64_t bs = c->block_size;
    WritePlan w = { 0 };
    w.first = offset >> shift;
    w.end = offset + len;
    w.last = (w.end - 1) >> shift;
    w.part[0] = (offset & (bs - 1)) || w.end < ((w.first + 1) << shift);
    w.part[1] = w.last != w.first && (w.end & (bs - 1));
    w.pidx[0] = w.first;
    w.pidx[1] = w.last;
    bool use_file[2] = { false, false };
    uint64_t need = 0, need_min = 0;
    int fd = -1;

    for (;;) {
        g_mutex_lock(&o->lock);
        if (o->deleted) {
            g_mutex_unlock(&o->lock);
            r = object_gone(o, err);
            goto out;
        }
        bool need_fill[2];
        o->pins++; /* no chunk goes until the holds are taken */
        for (int k = 0; k < 2; k++) {
            CacheBlock *b = w.part[k] ? obj_block(o, w.pidx[k], true) : NULL;
            need_fill[k] = b && !w.filled[k] && b->state == BLK_ABSENT;
            if (need_fill[k]) {
                w.gen[k] = b->gen;
                w.tgen[k] = o->trunc_gen;
            }
        }
        need = 0;
        if (c->size_limit) {
            for (uint64_t i = w.first; i <= w.last; i++) {
                CacheBlock *b = obj_block(o, i, false);
                if (!b || b->state != BLK_DIRTY)
                    need += bs;
            }
            need = MAX(need, need_min);
        }
        g_mutex_unlock(&o->lock);
        for (int k = 0; k < 2 && r == 0; k++) {
            if (!need_fill[k])
                continue;
            if (!w.pbuf[k])
                w.pbuf[k] = g_malloc(bs);
            r = call_fill(c, o, w.pidx[k], w.pbuf[k], err);
            w.filled[k] = r == 0;
        }
        if (r == 0)
            r = space_reserve(c, need, err);
        if (r < 0) {
            g_mutex_lock(&o->lock);
            o->pins--;
            obj_chunk_trim(o, w.first);
            obj_chunk_trim(o, w.last);
            g_mutex_unlock(&o->lock);
            goto out;
        }
        g_mutex_lock(&o->lock);
        o->pins--;
        r = write_hold(o, &w, use_file);
        if (r == 0 && c->size_limit) {
            /* Under the holds the states are settled: if more blocks
             * turn dirty than were reserved for, reserve again. */
            uint64_t actual = 0;
            for (uint64_t i = w.first; i <= w.last; i++)
                if (obj_block(o, i, false)->state != BLK_DIRTY)
                    actual += bs;
            if (actual > need) {
                release_range(o, w.first, w.last + 1);
                need_min = actual;
                r = -EAGAIN;
            }
        }
        if (r == 0)
            fd = obj_fd_locked(o, err);
        g_mutex_unlock(&o->lock);
        if (r != -EAGAIN)
            break;
        space_unreserve(c, need);
        r = 0;
    }
    if (r == -ENOENT) {
        space_unreserve(c, need);
        r = object_gone(o, err);
        goto out;
    }
    if (fd < 0) {
        r = fd;
    } else {
        r = write_bytes(c, o, fd, &w, use_file, offset, buf);
        if (r < 0)
            cache_fail(err, -r, "cannot write cache file %s: %s", o->path,
                       g_strerror(-r));
    }

    g_mutex_lock(&o->lock);
    uint64_t seq = ++o->seq;
    for (uint64_t i = w.first; i <= w.last; i++) {
        CacheBlock *b = obj_block(o, i, false);
        if (r == 0) {
            block_set_state(o, b, BLK_DIRTY);
            b->seq = seq;
        } else if (b->state == BLK_CLEAN) {
            /* Its bytes may be half new now: forget them. */
            block_set_state(o, b, BLK_ABSENT);
        }
    }
    release_range(o, w.first, w.last + 1);
    if (r < 0)
        for (uint64_t i = w.first; i <= w.last; i += CACHE_CHUNK)
            obj_chunk_trim(o, i);
    if (r < 0)
        obj_chunk_trim(o, w.last);
    g_mutex_unlock(&o->lock);
    space_unreserve(c, need);
    if (r == 0) {
        g_mutex_lock(&c->lock);
        c->st.bytes_written += len;
        g_mutex_unlock(&c->lock);
        space_reclaim(c);
    }
out:
    g_free(w.pbuf[0]);
    g_free(w.pbuf[1]);
    cache_object_unref(o);
    return r < 0 ? r : (ssize_t)len;
}

/* ------------------------------------------------------------------ */
/* Truncate                                                           */

int cache_truncate(Cache *c, uint64_t id, uint64_t size, GError **err)
{
    if (size > CACHE_MAX_OFFSET)
        return cache_fail(err, EFBIG, "cannot truncate a cache object to %"
                          PRIu64 " bytes: too large", size);
    int lrc = 0;
    CacheObject *o = cache_object_lookup(c, id, &lrc, err);
    if (!o)
        return lrc;
    unsigned shift = c->block_shift;
    uint64_t bs = c->block_size;
    uint64_t gone = (size + bs - 1) >> shift;     /* first block dropped */
    bool has_part = (size & (bs - 1)) != 0;
    uint64_t part_idx = size >> shift;
    g_autoptr(GPtrArray) held = g_ptr_array_new();
    CacheBlock *pb = NULL;
    int r = 0;

    g_mutex_lock(&o->lock);
    if (o->deleted)
        r = object_gone(o, err);
    /* Counted before any hold is waited for (which drops o->lock): a fill
     * of a block past the new size, or of the partial block, that is
     * installed while this truncate waits would otherwise be skipped by
     * the scan below (absent when looked at) and stay with old bytes. */
    o->trunc_gen++;
    g_autoptr(GArray) cl = obj_chunk_list(o);
    for (guint k = 0; k < cl->len && r == 0; k++) {
        uint64_t cn = g_array_index(cl, uint64_t, k);
        if (((cn + 1) << CACHE_CHUNK_SHIFT) <= (has_part ? part_idx : gone))
            continue;
        for (uint64_t i = 0; i < CACHE_CHUNK; i++) {
            uint64_t idx = (cn << CACHE_CHUNK_SHIFT) + i;
            /* Looked up each time: while a hold was waited for, a chunk
             * may have been freed. */
            CacheBlock *b = obj_block(o, idx, false);
            bool is_part = has_part && idx == part_idx;
            if (!b)
                break;
            if ((idx < gone && !is_part) || b->state == BLK_ABSENT)
                continue;
            if (!obj_hold_excl(o, b)) {
                r = object_gone(o, err);
                break;
            }
            if (is_part)
                pb = b;
            else
                g_ptr_array_add(held, b);
        }
    }
    bool need_save = false;
    uint64_t seq = ++o->seq;
    /* And again once the blocks are gone, for fills that began while it
     * waited. */
    o->trunc_gen++;
    for (guint i = 0; r == 0 && i < held->len; i++) {
        CacheBlock *b = held->pdata[i];
        need_save |= b->disk_dirty;
        block_set_state(o, b, BLK_ABSENT);
    }
    if (pb && pb->state == BLK_DIRTY)
        pb->seq = seq;
    int fd = r == 0 ? obj_fd_locked(o, err) : -1;
    if (r == 0 && fd < 0)
        r = fd;
    g_mutex_unlock(&o->lock);

    if (r == 0 && need_save)
        r = obj_save_state(o, err);
    for (guint i = 0; r == 0 && i < held->len;) {
        CacheBlock *b = held->pdata[i];
        guint j = i + 1;
        while (j < held->len &&
               ((CacheBlock *)held->pdata[j])->index == b->index + (j - i))
            j++;
        space_punch(o, fd, b->index << shift, (uint64_t)(j - i) << shift);
        i = j;
    }
    int zr = 0;
    if (r == 0 && pb && pb->state != BLK_ABSENT) {
        uint64_t bend = (part_idx + 1) << shift;
        g_autofree char *zeros = g_malloc0(bend - size);
        zr = cache_pwrite_full(fd, zeros, bend - size, size);
        if (zr < 0)
            r = cache_fail(err, -zr, "cannot write cache file %s: %s",
                           o->path, g_strerror(-zr));
    }

    g_mutex_lock(&o->lock);
    if (zr < 0 && pb->state == BLK_CLEAN)
        block_set_state(o, pb, BLK_ABSENT);
    g_autoptr(GArray) trim = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (guint i = 0; i < held->len; i++) {
        CacheBlock *b = held->pdata[i];
        obj_release(o, b);
        g_array_append_val(trim, b->index);
    }
    if (pb) {
        obj_release(o, pb);
        g_array_append_val(trim, pb->index);
    }
    obj_wake(o);
    for (guint i = 0; i < trim->len; i++) /* blocks may go with chunks */
        obj_chunk_trim(o, g_array_index(trim, uint64_t, i));
    g_mutex_unlock(&o->lock);
    obj_put(o);
    return r;
}

/* cache.c — opening and closing a cache, its configuration, mode and
 * stats. The rest of the cache is split by job: cache_label.c (directory
 * label and lock), cache_statefile.c (state file format), cache_object.c
 * (objects, block tables, holds, crash-safe state saving), cache_space.c
 * (accounting, LRU, reclaim, waiting for space), cache_io.c (read, write,
 * truncate), cache_flush.c (fsync, dirty slices, mark clean), cache_fds.c
 * (budget of open object files).
 *
 * Locks: see cache_internal.h. Order: c->create_lock -> o->save_lock ->
 * o->lock -> c->lock. cache_open and cache_close run before and after any
 * other call on the cache and take no lock but c->lock for the stats.
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static bool valid_store_id(const char *s)
{
    if (!s || !*s || strlen(s) > 255)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int check_config(const CacheConfig *cfg, GError **err)
{
    if (!cfg || !cfg->dir || !*cfg->dir)
        return cache_fail(err, EINVAL, "cache: no cache directory given");
    if (!valid_store_id(cfg->store_id))
        return cache_fail(err, EINVAL, "cache: a store id of 1 to 255 "
                          "printable characters is required");
    uint32_t bs = cfg->block_size;
    if (bs && (bs < 4096 || bs > (1u << 30) || (bs & (bs - 1))))
        return cache_fail(err, EINVAL, "cache: block size %" PRIu32 " is not "
                          "a power of two between 4096 and 1 GiB", bs);
    unsigned hi = cfg->hi_pct ? cfg->hi_pct : 95;
    unsigned lo = cfg->lo_pct ? cfg->lo_pct : 80;
    if (hi > 100 || lo >= hi)
        return cache_fail(err, EINVAL, "cache: reclaim thresholds must be "
                          "0 < lo (%u) < hi (%u) <= 100", lo, hi);
    if (cfg->mode != CACHE_WRITEBACK && cfg->mode != CACHE_WRITETHROUGH &&
        cfg->mode != CACHE_UNSAFE)
        return cache_fail(err, EINVAL, "cache: unknown mode %d", cfg->mode);
    return 0;
}

Cache *cache_open(const CacheConfig *cfg, GError **err)
{
    if (check_config(cfg, err) < 0)
        return NULL;
    if (g_mkdir_with_parents(cfg->dir, 0700) < 0) {
        cache_fail(err, errno, "cannot create cache directory %s: %s",
                   cfg->dir, g_strerror(errno));
        return NULL;
    }
    Cache *c = g_new0(Cache, 1);
    c->dir = g_strdup(cfg->dir);
    c->store_id = g_strdup(cfg->store_id);
    c->size_limit = cfg->size_limit;
    unsigned hi = cfg->hi_pct ? cfg->hi_pct : 95;
    unsigned lo = cfg->lo_pct ? cfg->lo_pct : 80;
    c->hi_bytes = c->size_limit / 100 * hi + c->size_limit % 100 * hi / 100;
    c->lo_bytes = c->size_limit / 100 * lo + c->size_limit % 100 * lo / 100;
    c->dirty_wait_ms = cfg->dirty_wait_ms ? cfg->dirty_wait_ms : 30000;
    c->cache_on_read = cfg->cache_on_read;
    c->cache_on_read_path = g_strdup(cfg->cache_on_read_path);
    c->fill = cfg->fill;
    c->flush = cfg->flush;
    c->need_space = cfg->need_space;
    c->owner = cfg->owner;
    c->mode = cfg->mode;
    c->lock_fd = -1;
    c->fd_max = cache_fds_budget(cfg->max_open_files);
    g_queue_init(&c->fd_lru);
    g_mutex_init(&c->create_lock);
    g_mutex_init(&c->lock);
    g_cond_init(&c->space_cond);
    c->objects = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                       (GDestroyNotify)cache_object_unref);
    c->dir_fd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dir_fd < 0) {
        cache_fail(err, errno, "cannot open cache directory %s: %s",
                   cfg->dir, g_strerror(errno));
        cache_close(c);
        return NULL;
    }
    uint32_t bs = cfg->block_size;
    bool missing = false;
    if (cache_label_check(c, &bs, &missing, err) < 0 ||
        cache_dir_lock(c, err) < 0 ||
        (missing && cache_label_create(c, &bs, err) < 0)) {
        cache_close(c);
        return NULL;
    }
    c->block_size = bs;
    c->block_shift = (unsigned)g_bit_nth_lsf(bs, -1);
    c->st.size_limit = c->size_limit;
    if (cache_objects_load(c, err) < 0) {
        cache_fds_close_all(c);
        g_hash_table_remove_all(c->objects); /* nothing was changed */
        cache_close(c);
        return NULL;
    }
    return c;
}

void cache_close(Cache *c)
{
    if (!c)
        return;
    cache_objects_close(c);
    g_hash_table_destroy(c->objects);
    if (c->dir_fd >= 0)
        close(c->dir_fd);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    g_mutex_clear(&c->create_lock);
    g_mutex_clear(&c->lock);
    g_cond_clear(&c->space_cond);
    g_free(c->dir);
    g_free(c->store_id);
    g_free(c->cache_on_read_path);
    g_free(c);
}

uint32_t cache_block_size(Cache *c)
{
    return c->block_size;
}

void cache_set_mode(Cache *c, CacheMode mode)
{
    if (mode == CACHE_WRITEBACK || mode == CACHE_WRITETHROUGH ||
        mode == CACHE_UNSAFE)
        g_atomic_int_set(&c->mode, (gint)mode);
    else
        g_warning("cache_set_mode: unknown mode %d ignored", (int)mode);
}

void cache_stats(Cache *c, CacheStats *out)
{
    g_mutex_lock(&c->lock);
    *out = c->st;
    out->dirty_bytes = c->dirty_bytes;
    out->clean_bytes = c->clean_bytes;
    out->size_limit = c->size_limit;
    out->objects = g_hash_table_size(c->objects);
    g_mutex_unlock(&c->lock);
    out->table_bytes = __atomic_load_n(&c->table_bytes, __ATOMIC_RELAXED);
}

/* store.c — a store on disk: creation (mkfs), opening with the store lock,
 * closing. STORE/ holds `config`, `catalog.db` (+ WAL), `cache/`, `lock`,
 * `tmp/` and by default `library/`. Open and close run before/after any
 * other thread uses the Core; Core.lock guards the Core afterwards. */
#include "core/core_private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

void core_mkfs_options_init(CoreMkfsOptions *o)
{
    memset(o, 0, sizeof *o);
    o->volumes = 4;
    o->volume_size = 8ULL << 30;
    o->part_size = 1ULL << 30;
    o->block_size = 64 << 10;
}

void core_open_options_init(CoreOpenOptions *o)
{
    memset(o, 0, sizeof *o);
    o->cache_mode = CORE_CACHE_WRITEBACK;
    o->cache_hi = 95;
    o->cache_lo = 80;
    o->cache_on_read = true;
    o->ring_size = 16 << 20;
    o->sync_interval = 300;
    o->bundle_threshold = 1 << 20;
    o->bundle_size = 64 << 20;
    o->bundle_delay = 5;
    o->stream_chunk = 16 << 20;
    o->commit_interval_ms = 1000;
    o->dirty_wait_ms = 30000;
}

static int dir_is_empty_or_missing(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return g_file_test(dir, G_FILE_TEST_EXISTS) ? -ENOTDIR : 1;
    bool empty = g_dir_read_name(d) == NULL;
    g_dir_close(d);
    return empty ? 0 : -EEXIST;
}

static int init_catalog(const char *path, uint32_t uid, uint32_t gid, const CoreMkfsOptions *o,
                        GError **err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        int r = core_fail(err, EIO, "catalog %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return r;
    }
    int r = db_create_schema(db, err);
    if (r == 0) {
        int64_t now = core_now_ns();
        g_autofree char *sql = g_strdup_printf(
            "PRAGMA journal_mode=WAL;"
            "INSERT INTO meta VALUES('format', 1);"
            "INSERT INTO meta VALUES('generation', 1);"
            "INSERT INTO meta VALUES('next_id', 2);"
            "INSERT INTO meta VALUES('next_version', 1);"
            "INSERT INTO meta VALUES('next_dumpfile', 1);"
            "INSERT INTO meta VALUES('index_seq', 0);"
            "INSERT INTO meta VALUES('block_size', %u);"
            "INSERT INTO meta VALUES('part_size', %" G_GUINT64_FORMAT ");"
            "INSERT INTO meta VALUES('volume_size', %" G_GUINT64_FORMAT ");"
            "INSERT INTO inodes(id, birth, death, mode, uid, gid, size, atime, mtime, ctime,"
            " nlink, rdev, target, version) VALUES(1, 1, %" G_GINT64_FORMAT ", %u, %u, %u, 0,"
            " %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", 2, 0, NULL, 0);",
            o->block_size, o->part_size, o->volume_size, (int64_t)CORE_INF,
            (unsigned)(S_IFDIR | 0755), uid, gid, now, now, now);
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            r = core_fail(err, EIO, "catalog %s: %s", path, msg ? msg : "?");
            sqlite3_free(msg);
        }
    }
    sqlite3_close(db);
    return r;
}

int core_store_create(const char *dir, const CoreMkfsOptions *o, GError **err)
{
    CoreMkfsOptions def;
    if (!o) {
        core_mkfs_options_init(&def);
        o = &def;
    }
    if (!dir || !*dir)
        return core_fail(err, EINVAL, "no store directory given");
    uint32_t bs = o->block_size;
    if (bs < 4096 || (bs & (bs - 1)) || bs > (64u << 20))
        return core_fail(err, EINVAL, "block size %u: must be a power of two from 4 KiB to 64 MiB", bs);
    if (o->part_size == 0 || o->part_size % bs)
        return core_fail(err, EINVAL, "part size %" G_GUINT64_FORMAT
                         ": must be a non-zero multiple of the block size", o->part_size);
    if (o->volumes == 0 || o->volumes > 100000)
        return core_fail(err, EINVAL, "volume count %u: must be 1..100000", o->volumes);
    if (o->volume_size < 16ULL * bs)
        return core_fail(err, EINVAL, "volume size %" G_GUINT64_FORMAT ": too small", o->volume_size);
    int e = dir_is_empty_or_missing(dir);
    if (e < 0)
        return core_fail(err, -e, "%s: %s", dir,
                         e == -EEXIST ? "not empty (a store is created in a new directory)"
                                      : g_strerror(-e));
    if (g_mkdir_with_parents(dir, 0755) != 0)
        return core_fail(err, errno, "%s: %s", dir, g_strerror(errno));

    StoreConfig cfg = { .version = 1, .block_size = bs, .part_size = o->part_size,
                        .volume_size = o->volume_size, .volumes = o->volumes };
    g_autofree char *uuid = g_uuid_string_random();
    g_strlcpy(cfg.store_id, uuid, sizeof cfg.store_id);
    g_autofree char *libpath = NULL;
    if (o->library) {
        libpath = g_canonicalize_filename(o->library, NULL);
        cfg.library = g_strdup(libpath);
    } else {
        cfg.library = g_strdup("library");
        libpath = g_build_filename(dir, "library", NULL);
    }
    GError *te = NULL;
    int r = tape_library_format(libpath, cfg.store_id, o->volumes, o->volume_size, bs, &te);
    if (r < 0) {
        r = core_fail_from(err, te, -r, "creating the library");
        g_clear_error(&te);
        config_clear(&cfg);
        return r;
    }
    g_autofree char *cat = g_build_filename(dir, "catalog.db", NULL);
    r = init_catalog(cat, (uint32_t)getuid(), (uint32_t)getgid(), o, err);
    g_autofree char *tmp = g_build_filename(dir, "tmp", NULL);
    if (r == 0 && g_mkdir_with_parents(tmp, 0700) != 0)
        r = core_fail(err, errno, "%s: %s", tmp, g_strerror(errno));
    g_autofree char *cfgpath = g_build_filename(dir, "config", NULL);
    if (r == 0)
        r = config_write(cfgpath, &cfg, err);
    config_clear(&cfg);
    return r;
}

static void dirty_free(gpointer p)
{
    DirtyObj *d = p;
    if (d->rewritten)
        g_array_unref(d->rewritten);
    if (d->pending)
        g_array_unref(d->pending);
    g_free(d);
}

static void handle_free(gpointer p)
{
    CoreHandle *h = p;
    if (h->names)
        g_ptr_array_unref(h->names);
    if (h->children)
        g_array_unref(h->children);
    g_free(h);
}

static void core_free(Core *c)
{
    g_clear_pointer(&c->rc, recall_free);
    if (c->fsync_pool)
        g_thread_pool_free(c->fsync_pool, FALSE, TRUE);
    if (c->cache)
        cache_close(c->cache);
    if (c->lib)
        tape_library_close(c->lib);
    db_close(c);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    g_clear_pointer(&c->lookups, g_hash_table_destroy);
    g_clear_pointer(&c->opens, g_hash_table_destroy);
    g_clear_pointer(&c->writers, g_hash_table_destroy);
    g_clear_pointer(&c->append_end, g_hash_table_destroy);
    g_clear_pointer(&c->handles, g_hash_table_destroy);
    g_clear_pointer(&c->dirty, g_hash_table_destroy);
    g_clear_pointer(&c->commit_objs, g_hash_table_destroy);
    g_clear_pointer(&c->after_commit, g_array_unref);
    config_clear(&c->cfg);
    g_free(c->dir);
    g_cond_clear(&c->commit_cond);
    g_mutex_clear(&c->lock);
    gate_clear(&c->gate);
    g_free(c);
}

DirtyObj *dirty_mark_locked(Core *c, uint64_t obj)
{
    DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
    if (!d) {
        d = g_new0(DirtyObj, 1);
        d->obj = obj;
        d->ino = -1;
        d->flush_read = UINT64_MAX;
        d->since = g_get_monotonic_time();
        g_hash_table_insert(c->dirty, &d->obj, d);
    }
    return d;
}

/* After an unclean stop: inodes that lost their last link while open. */
static int reap_orphans(Core *c, GError **err)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    sqlite3_stmt *s = db_q(c, "SELECT id FROM inodes WHERE death=? AND nlink=0",
                           "i", (int64_t)CORE_INF);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);
        g_array_append_val(ids, id);
    }
    if (s)
        sqlite3_reset(s);
    for (guint i = 0; i < ids->len; i++) {
        int r = inode_reap_if_unused(c, g_array_index(ids, uint64_t, i), err);
        if (r < 0)
            return r;
    }
    return 0;
}

Core *core_store_open(const char *dir, const CoreOpenOptions *o, GError **err)
{
    if (!dir || !*dir) {
        core_fail(err, EINVAL, "no store directory given");
        return NULL;
    }
    Core *c = g_new0(Core, 1);
    g_mutex_init(&c->lock);
    g_cond_init(&c->commit_cond);
    gate_init(&c->gate);
    c->lock_fd = -1;
    c->dir = g_strdup(dir);
    if (o)
        c->opt = *o;
    else
        core_open_options_init(&c->opt);
    if (c->opt.cache_hi == 0 || c->opt.cache_hi > 100)
        c->opt.cache_hi = 95;
    if (c->opt.cache_lo == 0 || c->opt.cache_lo >= c->opt.cache_hi)
        c->opt.cache_lo = c->opt.cache_hi * 8 / 10;
    if (c->opt.commit_interval_ms == 0)
        c->opt.commit_interval_ms = 1000;
    if (c->opt.ring_size == 0)
        c->opt.ring_size = 16 << 20;
    c->lookups = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    c->opens = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    c->writers = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    c->append_end = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    c->handles = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, handle_free);
    c->dirty = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, dirty_free);
    c->commit_objs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    c->after_commit = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    c->next_fh = 1;

    g_autofree char *lockpath = NULL, *tmp = NULL, *libpath = NULL, *cat = NULL,
                    *cachedir = NULL;
    g_autofree char *cfgpath = g_build_filename(dir, "config", NULL);
    if (config_read(cfgpath, &c->cfg, err) < 0)
        goto fail;
    lockpath = g_build_filename(dir, "lock", NULL);
    c->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0) {
        core_fail(err, errno, "%s: %s", lockpath, g_strerror(errno));
        goto fail;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            core_fail(err, EBUSY, "%s: the store is in use by another process", dir);
        else
            core_fail(err, errno, "%s: cannot lock: %s", lockpath, g_strerror(errno));
        goto fail;
    }
    tmp = g_build_filename(dir, "tmp", NULL);
    g_mkdir_with_parents(tmp, 0700);
    libpath = config_library_path(dir, &c->cfg);
    GError *te = NULL;
    c->lib = tape_library_open(libpath, c->cfg.store_id, &te);
    if (!c->lib) {
        core_fail_from(err, te, EIO, "opening the library");
        g_clear_error(&te);
        goto fail;
    }
    cat = g_build_filename(dir, "catalog.db", NULL);
    if (!g_file_test(cat, G_FILE_TEST_EXISTS)) {
        core_fail(err, ENOENT, "%s: catalog missing", cat);
        goto fail;
    }
    if (db_open(c, cat, false, err) < 0)
        goto fail;
    c->gen = db_meta_get(c, "generation", 1);
    c->next_id = (uint64_t)db_meta_get(c, "next_id", 2);
    c->next_version = (uint64_t)db_meta_get(c, "next_version", 1);
    c->next_dumpfile = (uint64_t)db_meta_get(c, "next_dumpfile", 1);
    c->index_seq = (uint64_t)db_meta_get(c, "index_seq", 0);
    {
        sqlite3_stmt *s = db_q(c, "SELECT coalesce(max(gen), 0) FROM snapshots", NULL);
        if (s && sqlite3_step(s) == SQLITE_ROW)
            c->max_snap = sqlite3_column_int64(s, 0);
        if (s)
            sqlite3_reset(s);
    }

    cachedir = g_build_filename(dir, "cache", NULL);
    CacheConfig cc = {
        .dir = cachedir,
        .store_id = c->cfg.store_id,
        .block_size = c->cfg.block_size,
        .size_limit = c->opt.cache_size,
        .hi_pct = c->opt.cache_hi,
        .lo_pct = c->opt.cache_lo,
        .cache_on_read = c->opt.cache_on_read,
        .mode = c->opt.cache_mode == CORE_CACHE_UNSAFE ? CACHE_UNSAFE : CACHE_WRITEBACK,
        .dirty_wait_ms = c->opt.dirty_wait_ms ? c->opt.dirty_wait_ms : 30000,
        .fill = filedata_fill,
        .flush = filedata_cache_flush,
        .need_space = filedata_need_space,
        .owner = c,
    };
    GError *ce = NULL;
    c->cache = cache_open(&cc, &ce);
    if (!c->cache) {
        core_fail_from(err, ce, EIO, "opening the cache");
        g_clear_error(&ce);
        goto fail;
    }
    c->rc = recall_new(c);
    /* Dirty bytes of writes that never committed are discarded before
     * anything reads or flushes them. */
    if (reconcile_cache(c, err) < 0)
        goto fail;
    GArray *dobjs = cache_dirty_objects(c->cache);
    for (guint i = 0; dobjs && i < dobjs->len; i++)
        dirty_mark_locked(c, g_array_index(dobjs, uint64_t, i));
    if (dobjs)
        g_array_unref(dobjs);
    if (reap_orphans(c, err) < 0 || db_commit(c, err) < 0)
        goto fail;
    c->fl = flusher_new(c);
    if (g_hash_table_size(c->dirty))
        flusher_kick(c->fl);
    return c;
fail:
    core_free(c);
    return NULL;
}

int core_store_close(Core *c, GError **err)
{
    if (!c)
        return 0;
    GError *e = NULL;
    int r = flusher_run(c->fl, NULL, true, &e);
    if (r < 0)
        g_warning("closing the store: %s", e ? e->message : g_strerror(-r));
    flusher_free(c->fl);
    c->fl = NULL;
    g_mutex_lock(&c->lock);
    int r2 = db_commit(c, r < 0 ? NULL : &e);
    g_mutex_unlock(&c->lock);
    if (r == 0)
        r = r2;
    recall_free(c->rc);
    c->rc = NULL;
    core_free(c);
    if (e) {
        if (err && !*err)
            *err = e;
        else
            g_error_free(e);
    }
    return r;
}

const char *core_store_id(Core *c)
{
    return c->cfg.store_id;
}

void core_set_error(Core *c, int e, const char *msg)
{
    c->last_error = e;
    g_strlcpy(c->last_error_msg, msg ? msg : "", sizeof c->last_error_msg);
}

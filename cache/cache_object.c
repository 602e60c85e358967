/* cache_object.c — cache objects: the object table, block holds, each
 * object's state file, loading at open (and on first use), quarantine and
 * create/delete. Block tables are in cache_chunk.c.
 *
 * Files of object <id> (16 hex digits) in the cache directory:
 *   <id>.data   sparse file; block i holds object bytes [i*bs, (i+1)*bs)
 *   <id>.state  the dirty blocks as of the last state save (see
 *               cache_statefile.c for the layout)
 *
 * Crash safety. Only dirty blocks are remembered across a restart; at
 * load, every block the state file does not list is forgotten (its bytes
 * are punched out), so a clean block simply becomes absent and is filled
 * again by the owner. Two orderings make this safe:
 *  1. A block is listed dirty on disk only after its bytes are durable:
 *     obj_save_state takes the dirty set first (blocks whose pwrite has
 *     completed), then fdatasyncs the data file, then writes the state file
 *     (write tmp, fdatasync, rename, fsync directory). So after kill -9 a
 *     block listed dirty holds the bytes of its last fsync'ed write (or a
 *     later one).
 *  2. A block listed dirty on disk (disk_dirty) is never punched out until
 *     a newer state file without it is durable: eviction and truncate call
 *     obj_save_state first. Otherwise a crash could bring back a "dirty"
 *     block full of zeros and the owner would flush zeros as data.
 * Delete removes the state file (and fsyncs the directory) before the
 * data file, so a crash in between leaves only forgettable clean bytes.
 *
 * Loading. At open only objects whose state file lists dirty blocks are
 * loaded; a state file listing none is removed. Any other object with a
 * data file exists all the same and is loaded on first use (its file
 * emptied: only forgotten clean bytes can be in it). A state file that is
 * damaged, of another version or without its data file quarantines its
 * object: files renamed to *.damaged, every access but delete fails with
 * EIO (obj_quarantine). An object whose blocks are all absent closes its
 * file (obj_put); its chunks are already gone (cache_chunk.c).
 *
 * Locks: c->create_lock serializes create/delete and loading on first
 * use; o->save_lock serializes
 * state saves of one object; o->lock guards the block table and holds;
 * c->lock the object table. Order: c->create_lock -> o->save_lock ->
 * o->lock -> c->lock.
 */
#include "cache/cache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static CacheObject *obj_new(Cache *c, uint64_t id)
{
    CacheObject *o = g_new0(CacheObject, 1);
    o->cache = c;
    o->id = id;
    o->refs = 1;
    o->fd = -1;
    g_autofree char *base = g_strdup_printf("%016" PRIx64, id);
    g_autofree char *data = g_strconcat(base, ".data", NULL);
    g_autofree char *state = g_strconcat(base, ".state", NULL);
    o->path = g_build_filename(c->dir, data, NULL);
    o->state_path = g_build_filename(c->dir, state, NULL);
    g_mutex_init(&o->save_lock);
    g_mutex_init(&o->lock);
    g_cond_init(&o->cond);
    obj_chunks_init(o);
    return o;
}

CacheObject *cache_object_ref(CacheObject *o)
{
    g_atomic_int_inc(&o->refs);
    return o;
}

void cache_object_unref(CacheObject *o)
{
    if (!o || !g_atomic_int_dec_and_test(&o->refs))
        return;
    if (o->fd >= 0)
        close(o->fd);
    obj_chunks_clear(o);
    g_free(o->path);
    g_free(o->state_path);
    g_mutex_clear(&o->save_lock);
    g_mutex_clear(&o->lock);
    g_cond_clear(&o->cond);
    g_free(o);
}

static void obj_insert(Cache *c, CacheObject *o)
{
    uint64_t *key = g_new(uint64_t, 1);
    *key = o->id;
    g_hash_table_insert(c->objects, key, o);
}

/* The object, loading it if it is not in memory but its data file exists
 * (no ref taken; NULL if there is no such object). An object not loaded
 * has no dirty block (those are all loaded at open), so the bytes in its
 * file are forgotten clean ones: the file is emptied. c->create_lock
 * held. */
static CacheObject *obj_find_or_load(Cache *c, uint64_t id)
{
    g_mutex_lock(&c->lock);
    CacheObject *o = g_hash_table_lookup(c->objects, &id);
    g_mutex_unlock(&c->lock);
    if (o)
        return o;
    g_autofree char *path = cache_object_path(c, id);
    if (access(path, F_OK) != 0)
        return NULL;
    o = obj_new(c, id);
    if (truncate(o->path, 0) < 0)
        g_warning("cannot empty cache file %s: %s", o->path,
                  g_strerror(errno));
    g_mutex_lock(&c->lock);
    obj_insert(c, o);
    g_mutex_unlock(&c->lock);
    return o;
}

CacheObject *cache_object_lookup(Cache *c, uint64_t id, int *rc,
                                 GError **err)
{
    g_mutex_lock(&c->lock);
    CacheObject *o = g_hash_table_lookup(c->objects, &id);
    if (o)
        cache_object_ref(o);
    bool trim = c->fd_open > c->fd_max;
    g_mutex_unlock(&c->lock);
    if (!o && id != 0) {
        g_mutex_lock(&c->create_lock);
        o = obj_find_or_load(c, id);
        if (o)
            cache_object_ref(o); /* in the table: c->lock not needed */
        g_mutex_unlock(&c->create_lock);
    }
    if (trim)
        cache_fds_trim(c);
    if (!o) {
        *rc = cache_fail(err, ENOENT, "cache object %" PRIu64 " does not "
                         "exist", id);
    } else if (o->damaged) {
        *rc = cache_fail(err, EIO, "cache object %" PRIu64 " is "
                         "quarantined: its state file was damaged (see %s"
                         ".damaged)", id, o->state_path);
        cache_object_unref(o);
        o = NULL;
    }
    return o;
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void obj_wait(CacheObject *o)
{
    o->waiters++;
    g_cond_wait(&o->cond, &o->lock);
    o->waiters--;
}

bool obj_hold_shared(CacheObject *o, CacheBlock *b)
{
    o->pins++; /* b's chunk stays while we wait */
    while ((b->writer || b->wwait) && !o->deleted)
        obj_wait(o);
    o->pins--;
    if (o->deleted)
        return false;
    b->readers++;
    o->nholds++;
    return true;
}

bool obj_hold_excl(CacheObject *o, CacheBlock *b)
{
    /* Waiting writers hold off new readers, so a block read without
     * pause cannot starve them. Every waiter holds only lower blocks than
     * the one it waits for, so this adds no cycle. */
    b->wwait++;
    while ((b->writer || b->readers) && !o->deleted)
        obj_wait(o);
    b->wwait--;
    if (o->deleted)
        return false;
    b->writer = true;
    o->nholds++;
    return true;
}

void obj_release(CacheObject *o, CacheBlock *b)
{
    if (b->writer)
        b->writer = false;
    else
        b->readers--;
    o->nholds--;
    if (o->deleted && o->nholds == 0)
        g_cond_broadcast(&o->cond);
}

void obj_wake(CacheObject *o)
{
    if (o->waiters)
        g_cond_broadcast(&o->cond);
}

/* Runs of dirty blocks (pairs of uint64_t: first, count). o->lock held.
 * Visits only chunks with dirty blocks. */
static GArray *obj_dirty_runs_locked(CacheObject *o)
{
    GArray *runs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_autoptr(GPtrArray) dl = obj_dirty_chunks(o);
    uint64_t first = 0, count = 0;
    for (guint k = 0; k < dl->len; k++) {
        CacheChunk *ch = dl->pdata[k];
        for (uint64_t i = 0; ch->ndirty && i < CACHE_CHUNK; i++) {
            CacheBlock *b = &ch->blocks[i];
            if (b->state != BLK_DIRTY)
                continue;
            if (count && b->index == first + count) {
                count++;
                continue;
            }
            if (count) {
                g_array_append_val(runs, first);
                g_array_append_val(runs, count);
            }
            first = b->index;
            count = 1;
        }
    }
    if (count) {
        g_array_append_val(runs, first);
        g_array_append_val(runs, count);
    }
    return runs;
}

/* Sets disk_dirty to exactly the blocks of `runs`. o->lock held. Visits
 * only chunks that had or get such blocks. */
static void obj_set_disk_dirty_locked(CacheObject *o, const GArray *runs)
{
    g_autoptr(GPtrArray) dl = obj_dirty_chunks(o);
    for (guint k = 0; k < dl->len; k++) {
        CacheChunk *ch = dl->pdata[k];
        for (uint64_t i = 0; ch->ndisk && i < CACHE_CHUNK; i++) {
            if (ch->blocks[i].disk_dirty) {
                ch->blocks[i].disk_dirty = false;
                ch->ndisk--;
            }
        }
    }
    for (guint k = 0; k + 1 < runs->len; k += 2) {
        uint64_t first = g_array_index(runs, uint64_t, k);
        uint64_t count = g_array_index(runs, uint64_t, k + 1);
        for (uint64_t i = 0; i < count; i++) {
            CacheBlock *b = obj_block(o, first + i, true);
            if (!b->disk_dirty) {
                b->disk_dirty = true;
                CacheChunk *ch = block_chunk(b);
                ch->ndisk++;
                obj_chunk_dirty_update(o, ch);
            }
        }
    }
    /* Chunks left with nothing dirty leave the tree, and go if empty. */
    for (guint k = 0; k < dl->len; k++) {
        CacheChunk *ch = dl->pdata[k];
        obj_chunk_dirty_update(o, ch);
        if (!ch->in_tree)
            obj_chunk_trim(o, ch->no << CACHE_CHUNK_SHIFT);
    }
}

int obj_save_state(CacheObject *o, GError **err)
{
    Cache *c = o->cache;
    g_mutex_lock(&o->save_lock);
    g_mutex_lock(&o->lock);
    if (o->deleted) {
        g_mutex_unlock(&o->lock);
        g_mutex_unlock(&o->save_lock);
        return 0;
    }
    /* The dirty set is taken before the fdatasync: every block in it has
     * its bytes in the file already, so they are durable before the state
     * file lists them. If the set is unchanged since the last save, the
     * durable state file already says the same and only the data needs
     * syncing. */
    bool stale = o->state_stale;
    g_autoptr(GArray) runs = stale ? obj_dirty_runs_locked(o) : NULL;
    uint64_t seq = o->seq;
    o->state_stale = false;
    int fd = obj_fd_locked(o, err);
    if (fd >= 0)
        o->fd_busy++;
    g_mutex_unlock(&o->lock);

    int r = fd < 0 ? fd : cache_fsync_fd(c, fd, true);
    if (r < 0 && fd >= 0)
        cache_fail(err, -r, "cannot fsync cache file %s: %s", o->path,
                   g_strerror(-r));
    if (r == 0 && stale)
        r = cache_statefile_write(c, o->state_path, o->id, seq, runs, err);

    g_mutex_lock(&o->lock);
    if (fd >= 0)
        o->fd_busy--;
    if (r == 0 && stale)
        obj_set_disk_dirty_locked(o, runs);
    else if (r < 0)
        o->state_stale = true;
    g_mutex_unlock(&o->lock);
    g_mutex_unlock(&o->save_lock);
    return r;
}

/* ------------------------------------------------------------------ */
/* Loading at open                                                    */

/* Punches out every byte of the data file that is not in a dirty block. */
static void obj_forget_clean(CacheObject *o, int fd)
{
    Cache *c = o->cache;
    uint64_t bs = c->block_size;
    off_t pos = 0;
    for (;;) {
        off_t ds = lseek(fd, pos, SEEK_DATA);
        if (ds < 0)
            return;
        off_t de = lseek(fd, ds, SEEK_HOLE);
        if (de < 0)
            return;
        uint64_t idx = (uint64_t)ds / bs, end = ((uint64_t)de + bs - 1) / bs;
        uint64_t run = 0;
        for (; idx <= end; idx++) {
            CacheBlock *b = idx < end ? obj_block(o, idx, false) : NULL;
            bool keep = idx == end || (b && b->state == BLK_DIRTY);
            if (!keep) {
                run++;
                continue;
            }
            if (run)
                space_punch(o, fd, (idx - run) * bs, run * bs);
            run = 0;
        }
        pos = de;
    }
}

/* Sets the files of a damaged object aside as <name>.damaged (kept for a
 * look by hand; cache_object_delete removes them) and registers it as
 * quarantined: it has no blocks and every access but delete fails with
 * EIO, so its lost dirty bytes are never served or flushed as zeros. */
static void obj_quarantine(Cache *c, uint64_t id, const char *why)
{
    if (g_hash_table_contains(c->objects, &id))
        return;
    CacheObject *o = obj_new(c, id);
    o->damaged = true;
    const char *paths[2] = { o->state_path, o->path };
    for (int k = 0; why && k < 2; k++) {
        g_autofree char *aside = g_strconcat(paths[k], ".damaged", NULL);
        if (rename(paths[k], aside) < 0 && errno != ENOENT)
            g_warning("cannot set aside %s: %s", paths[k],
                      g_strerror(errno));
    }
    if (why) {
        g_warning("%s; cache object %" PRIu64 " is quarantined (files set "
                  "aside as %s.damaged and %s.damaged); its reads fail with "
                  "EIO", why, id, o->state_path, o->path);
        cache_fsync_fd(c, c->dir_fd, false);
    }
    obj_insert(c, o);
}

static int obj_load(Cache *c, uint64_t id, GError **err)
{
    CacheObject *o = obj_new(c, id);
    int r = 0;
    struct stat st;
    if (stat(o->path, &st) < 0) {
        r = cache_fail(err, errno, "cannot stat cache file %s: %s", o->path,
                       g_strerror(errno));
        goto out;
    }
    if (access(o->state_path, F_OK) == 0) {
        GArray *runs = NULL;
        uint64_t seq = 0;
        GError *se = NULL;
        r = cache_statefile_read(c, o->state_path, id, &seq, &runs, &se);
        if (r == -EBADMSG || r == -ENOTSUP) {
            obj_quarantine(c, id, se->message);
            g_error_free(se);
            r = 0;
            goto out;
        }
        if (r < 0) {
            g_propagate_error(err, se);
            goto out;
        }
        o->seq = seq;
        for (guint k = 0; k + 1 < runs->len; k += 2) {
            uint64_t first = g_array_index(runs, uint64_t, k);
            uint64_t count = g_array_index(runs, uint64_t, k + 1);
            if ((first + count) * (uint64_t)c->block_size >
                (uint64_t)st.st_size) {
                g_array_unref(runs);
                g_autofree char *why = g_strdup_printf(
                    "cache state file %s is damaged (dirty blocks past the "
                    "end of %s)", o->state_path, o->path);
                obj_chunks_clear(o); /* drop what was set up so far */
                obj_chunks_init(o);
                o->ndirty = 0;
                obj_quarantine(c, id, why);
                goto out;
            }
            for (uint64_t i = 0; i < count; i++) {
                CacheBlock *b = obj_block(o, first + i, true);
                b->state = BLK_DIRTY;
                b->disk_dirty = true;
                b->seq = seq;
                CacheChunk *ch = block_chunk(b);
                ch->ndirty++;
                ch->ndisk++;
                obj_chunk_dirty_update(o, ch);
            }
            o->ndirty += count;
        }
        g_array_unref(runs);
    }
    if (o->ndirty == 0) {
        /* Nothing dirty: not loaded (see obj_find_or_load), and the state
         * file, which says nothing, goes. */
        unlink(o->state_path);
        goto out;
    }
    c->dirty_bytes += o->ndirty * c->block_size;
    obj_insert(c, o);
    return 0;
out:
    cache_object_unref(o);
    return r;
}

int cache_objects_load(Cache *c, GError **err)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return cache_fail(err, errno, "cannot read cache directory %s: %s",
                          c->dir, g_strerror(errno));
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (len == 16 + 10 && g_str_has_suffix(name, ".state.tmp")) {
            g_autofree char *p = g_build_filename(c->dir, name, NULL);
            unlink(p);
            continue;
        }
        bool is_data = len == 16 + 5 && g_str_has_suffix(name, ".data");
        bool is_state = len == 16 + 6 && g_str_has_suffix(name, ".state");
        bool is_aside = (len == 16 + 13 && g_str_has_suffix(name,
                                                            ".data.damaged"))
                        || (len == 16 + 14 && g_str_has_suffix(name,
                                                    ".state.damaged"));
        if (!is_data && !is_state && !is_aside)
            continue;
        g_autofree char *hex = g_strndup(name, 16);
        guint64 id = 0;
        if (!g_ascii_string_to_unsigned(hex, 16, 1, UINT64_MAX, &id, NULL))
            continue;
        if (g_hash_table_contains(c->objects, &id))
            continue; /* loaded or quarantined already */
        if (is_aside) { /* quarantined at an earlier open */
            obj_quarantine(c, id, NULL);
            continue;
        }
        if (is_data)
            continue; /* no state file, or loaded with it: see below */
        g_autofree char *data = g_strdup_printf("%s/%s.data", c->dir, hex);
        if (access(data, F_OK) != 0) {
            g_autofree char *why = g_strdup_printf(
                "cache state file %s/%s has no data file", c->dir, name);
            obj_quarantine(c, id, why);
            continue;
        }
        /* Only objects with dirty blocks are loaded; the others (a data
         * file without a state file listing dirty blocks) hold only
         * forgotten clean bytes and are loaded on first use. */
        r = obj_load(c, id, err);
    }
    closedir(d);
    if (r < 0)
        return r;
    /* Every state file is good: only now forget the clean bytes. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, c->objects);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        CacheObject *o = value;
        if (o->damaged)
            continue;
        if (o->ndirty == 0) {
            if (truncate(o->path, 0) < 0)
                g_warning("cannot empty cache file %s: %s", o->path,
                          g_strerror(errno));
            continue;
        }
        int fd = obj_fd_locked(o, err);
        if (fd < 0)
            return fd;
        obj_forget_clean(o, fd);
        cache_fds_trim(c); /* more dirty objects than the budget: fine */
    }
    return 0;
}

void cache_objects_close(Cache *c)
{
    GList *objs = g_hash_table_get_values(c->objects);
    for (GList *l = objs; l; l = l->next) {
        CacheObject *o = l->data;
        g_autoptr(GError) e = NULL;
        /* A clean close leaves every dirty byte and state durable. An
         * object with no dirty block that its state file does not list
         * either (no chunk in dirty_chunks) has nothing to save. */
        g_mutex_lock(&o->lock);
        bool save = g_tree_nnodes(o->dirty_chunks) > 0;
        g_mutex_unlock(&o->lock);
        if (save && obj_save_state(o, &e) < 0)
            g_warning("%s", e->message);
        cache_fds_trim(c); /* saving opens files: keep to the budget */
    }
    g_list_free(objs);
    cache_fds_close_all(c);
    g_hash_table_remove_all(c->objects);
}

/* ------------------------------------------------------------------ */
/* Public: create, exists, delete, dirty objects, path                */

int cache_object_create(Cache *c, uint64_t id, GError **err)
{
    if (id == 0)
        return cache_fail(err, EINVAL, "cache object id 0 is reserved");
    g_mutex_lock(&c->create_lock);
    g_mutex_lock(&c->lock);
    bool exists = g_hash_table_contains(c->objects, &id);
    g_mutex_unlock(&c->lock);
    int r = 0;
    if (!exists) {
        CacheObject *o = obj_new(c, id);
        unlink(o->state_path);
        int fd = cache_fds_open(c, NULL, o->path, O_RDWR | O_CREAT | O_TRUNC);
        if (fd < 0) {
            r = cache_fail(err, errno, "cannot create cache file %s: %s",
                           o->path, g_strerror(errno));
            cache_object_unref(o);
        } else {
            close(fd); /* opened again on first use (cache_fds.c) */
            uint64_t *key = g_new(uint64_t, 1);
            *key = id;
            g_mutex_lock(&c->lock);
            g_hash_table_insert(c->objects, key, o);
            g_mutex_unlock(&c->lock);
        }
    }
    g_mutex_unlock(&c->create_lock);
    return r;
}

bool cache_object_exists(Cache *c, uint64_t id)
{
    g_mutex_lock(&c->lock);
    bool r = g_hash_table_contains(c->objects, &id);
    g_mutex_unlock(&c->lock);
    if (!r && id != 0) { /* not loaded: its data file says */
        g_autofree char *path = cache_object_path(c, id);
        r = access(path, F_OK) == 0;
    }
    return r;
}

void obj_put(CacheObject *o)
{
    bool drop = false;
    g_mutex_lock(&o->lock);
    if (o->fd >= 0 && o->ndirty == 0 && o->nclean == 0 && o->nholds == 0 &&
        o->pins == 0 && o->fd_busy == 0 && !o->deleted)
        drop = obj_fd_close_locked(o);
    g_mutex_unlock(&o->lock);
    if (drop)
        cache_object_unref(o); /* the fd list's ref */
    cache_object_unref(o);
}

int cache_object_delete(Cache *c, uint64_t id, GError **err)
{
    g_mutex_lock(&c->create_lock);
    if (id != 0)
        obj_find_or_load(c, id); /* an object not loaded goes too */
    g_mutex_lock(&c->lock);
    CacheObject *o = g_hash_table_lookup(c->objects, &id);
    if (o) {
        cache_object_ref(o);
        g_hash_table_remove(c->objects, &id); /* drops the table's ref */
    }
    g_mutex_unlock(&c->lock);
    if (!o) {
        g_mutex_unlock(&c->create_lock);
        return cache_fail(err, ENOENT, "cache object %" PRIu64
                          " does not exist", id);
    }
    g_mutex_lock(&o->lock);
    o->deleted = true; /* no new holds (see obj_hold_*) */
    g_cond_broadcast(&o->cond);
    while (o->nholds)
        obj_wait(o);
    g_mutex_unlock(&o->lock);
    g_mutex_lock(&o->save_lock); /* a running state save ends first */
    g_mutex_lock(&o->lock);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, o->chunks);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        CacheChunk *ch = value;
        for (uint64_t i = 0; i < CACHE_CHUNK; i++)
            if (ch->blocks[i].state != BLK_ABSENT)
                block_set_state(o, &ch->blocks[i], BLK_ABSENT);
    }
    bool drop = obj_fd_close_locked(o);
    g_mutex_unlock(&o->lock);
    if (drop)
        cache_object_unref(o); /* the fd list's ref; ours remains */
    int r = 0;
    if (unlink(o->state_path) < 0 && errno != ENOENT)
        r = cache_fail(err, errno, "cannot remove %s: %s", o->state_path,
                       g_strerror(errno));
    if (r == 0 && (r = cache_fsync_fd(c, c->dir_fd, false)) < 0)
        cache_fail(err, -r, "cannot fsync cache directory %s: %s", c->dir,
                   g_strerror(-r));
    if (r == 0 && unlink(o->path) < 0 && errno != ENOENT)
        r = cache_fail(err, errno, "cannot remove %s: %s", o->path,
                       g_strerror(errno));
    for (int k = 0; r == 0 && o->damaged && k < 2; k++) {
        g_autofree char *aside = g_strconcat(k ? o->path : o->state_path,
                                             ".damaged", NULL);
        if (unlink(aside) < 0 && errno != ENOENT)
            r = cache_fail(err, errno, "cannot remove %s: %s", aside,
                           g_strerror(errno));
    }
    g_mutex_unlock(&o->save_lock);
    cache_object_unref(o);
    g_mutex_unlock(&c->create_lock);
    return r;
}

GArray *cache_dirty_objects(Cache *c)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_lock(&c->lock);
    GList *objs = g_hash_table_get_values(c->objects);
    for (GList *l = objs; l; l = l->next)
        cache_object_ref(l->data);
    g_mutex_unlock(&c->lock);
    for (GList *l = objs; l; l = l->next) {
        CacheObject *o = l->data;
        g_mutex_lock(&o->lock);
        if (o->ndirty && !o->deleted)
            g_array_append_val(ids, o->id);
        g_mutex_unlock(&o->lock);
        cache_object_unref(o);
    }
    g_list_free(objs);
    g_array_sort(ids, cmp_u64);
    return ids;
}

GArray *cache_damaged_objects(Cache *c)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_mutex_lock(&c->lock);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, c->objects);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        CacheObject *o = value;
        if (o->damaged) /* immutable */
            g_array_append_val(ids, o->id);
    }
    g_mutex_unlock(&c->lock);
    g_array_sort(ids, cmp_u64);
    return ids;
}

char *cache_object_path(Cache *c, uint64_t id)
{
    g_autofree char *name = g_strdup_printf("%016" PRIx64 ".data", id);
    return g_build_filename(c->dir, name, NULL);
}

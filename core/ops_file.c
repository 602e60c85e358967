/* ops_file.c — open files of the filesystem API: open, create, read,
 * write, flush, release, fsync. Catalog work under Core.lock; the bytes
 * move through cache_read/cache_write with no core lock held (the cache's
 * fill callback takes it). Writers pass Core.gate (gate.c) from making
 * the version writable until its extents are recorded. O_APPEND writes
 * reserve their offset under Core.lock (Core.append_end), so concurrent
 * appenders never overlap. A write whose file was truncated (given a new
 * version) between its cache write and its record is written again. */
#include "core/core_private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define CORE_MAX_FILE (1ULL << 50)

static void count_add(GHashTable *t, uint64_t key, int delta)
{
    uint64_t *v = g_hash_table_lookup(t, &key);
    if (!v) {
        if (delta <= 0)
            return;
        uint64_t one = 0;
        v = g_memdup2(&one, sizeof one);
        g_hash_table_insert(t, g_memdup2(&key, sizeof key), v);
    }
    if (delta < 0 && *v < (uint64_t)-delta)
        *v = 0;
    else
        *v += (uint64_t)(int64_t)delta;
    if (*v == 0)
        g_hash_table_remove(t, &key);
}

static uint64_t count_get(GHashTable *t, uint64_t key)
{
    uint64_t *v = g_hash_table_lookup(t, &key);
    return v ? *v : 0;
}

/* Open inode `ino` (lock held, and the gate shared when O_TRUNC). */
static int open_locked(Core *c, uint64_t ino, int flags, uint64_t *fh, GError **err)
{
    int acc = flags & O_ACCMODE;
    bool writer = acc == O_WRONLY || acc == O_RDWR;
    int64_t view = ino_view(ino);
    if (ino == CORE_SNAPDIR_INO)
        return core_fail(err, EISDIR, "is a directory");
    if (view != 0 && (writer || (flags & O_TRUNC)))
        return core_fail(err, EROFS, "snapshots are read-only");
    if (!view_exists(c, view))
        return core_fail(err, ESTALE, "snapshot was deleted");
    InodeRow r;
    int rc = inode_get(c, view, ino_id(ino), &r, err);
    if (rc < 0)
        return rc;
    if (S_ISDIR(r.mode))
        rc = core_fail(err, EISDIR, "is a directory");
    else if (!S_ISREG(r.mode))
        rc = core_fail(err, EINVAL, "not a regular file");
    else if (view == 0 && (flags & O_TRUNC) && writer && r.size > 0) {
        if ((rc = filedata_truncate_locked(c, &r, 0, err)) == 0) {
            r.mtime = r.ctime = core_now_ns();
            rc = inode_put(c, &r, err);
        }
    }
    inode_row_clear(&r);
    if (rc < 0)
        return rc;
    CoreHandle *h = g_new0(CoreHandle, 1);
    h->ino = ino;
    h->flags = flags;
    h->writer = writer;
    uint64_t id = c->next_fh++;
    g_hash_table_insert(c->handles, g_memdup2(&id, sizeof id), h);
    if (view == 0) {
        count_add(c->opens, ino_id(ino), 1);
        if (writer)
            count_add(c->writers, ino_id(ino), 1);
    }
    *fh = id;
    return 0;
}

int core_open(Core *c, uint64_t ino, int flags, uint64_t *fh, GError **err)
{
    if (!fh)
        return core_fail(err, EINVAL, "open without a handle pointer");
    bool trunc = (flags & O_TRUNC) != 0;
    if (trunc)
        gate_enter_write(&c->gate);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = db_op_end(c, open_locked(c, ino, flags, fh, err));
    g_mutex_unlock(&c->lock);
    if (trunc)
        gate_leave_write(&c->gate);
    return rc;
}

int core_create(Core *c, uint64_t parent, const char *name, mode_t mode, int flags,
                const CoreCred *cred, struct stat *st, uint64_t *fh, GError **err)
{
    if (parent == CORE_SNAPDIR_INO || ino_view(parent) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    if (!fh)
        return core_fail(err, EINVAL, "create without a handle pointer");
    gate_enter_write(&c->gate);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    uint64_t id = 0;
    GError *e = NULL;
    struct stat tmp;
    int rc = core_make_node_locked(c, parent, name, S_IFREG | (mode & 07777), cred, &tmp, &id, &e);
    if (rc == -EEXIST && !(flags & O_EXCL)) {
        g_clear_error(&e);
        rc = dirent_get(c, 0, ino_id(parent), name, &id, err);
        if (rc == 0) {
            InodeRow r;
            if ((rc = inode_get(c, 0, id, &r, err)) == 0) {
                inode_to_stat(c, 0, &r, &tmp);
                inode_row_clear(&r);
                lookup_ref(c, id, 1);
            }
        }
    } else if (e) {
        g_propagate_error(err, e);
    }
    if (rc == 0) {
        rc = open_locked(c, id, flags & ~O_CREAT, fh, err);
        if (rc == 0) {
            InodeRow r;
            if (inode_get(c, 0, id, &r, NULL) == 0) {
                inode_to_stat(c, 0, &r, &tmp);
                inode_row_clear(&r);
            }
            if (st)
                *st = tmp;
        }
    }
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    gate_leave_write(&c->gate);
    return rc;
}

static CoreHandle *file_handle(Core *c, uint64_t ino, uint64_t fh, GError **err)
{
    CoreHandle *h = g_hash_table_lookup(c->handles, &fh);
    if (!h || h->dir || h->ino != ino) {
        core_fail(err, EBADF, "not an open file");
        return NULL;
    }
    return h;
}

/* One attempt at a read of the file's current version; *obj is that
 * version. */
static ssize_t read_once(Core *c, uint64_t ino, uint64_t fh, void *buf, size_t size, off_t off,
                         uint64_t *objp, GError **err)
{
    g_mutex_lock(&c->lock);
    int rc = 0;
    InodeRow r = { 0 };
    if (!file_handle(c, ino, fh, err))
        rc = -EBADF;
    else if (!view_exists(c, ino_view(ino)))
        rc = core_fail(err, ESTALE, "snapshot was deleted");
    else
        rc = inode_get(c, ino_view(ino), ino_id(ino), &r, err);
    uint64_t obj = r.version, fsize = r.size;
    *objp = obj;
    inode_row_clear(&r);
    if (rc == 0 && obj && !cache_object_exists(c->cache, obj)) {
        GError *e = NULL;
        if (cache_object_create(c->cache, obj, &e) < 0) {
            rc = core_fail_from(err, e, EIO, "creating a cache object");
            g_error_free(e);
        }
    }
    g_mutex_unlock(&c->lock);
    if (rc < 0)
        return rc;
    if ((uint64_t)off >= fsize || size == 0)
        return 0;
    size_t len = (size_t)MIN((uint64_t)size, fsize - (uint64_t)off);
    GError *e = NULL;
    ssize_t n = cache_read(c->cache, obj, (uint64_t)off, buf, len, &e);
    if (n < 0) {
        int code = (int)n;
        core_fail_from(err, e, -code, "read");
        g_clear_error(&e);
        return code;
    }
    return n;
}

ssize_t core_read(Core *c, uint64_t ino, uint64_t fh, void *buf, size_t size, off_t off,
                  GError **err)
{
    if (off < 0)
        return core_fail(err, EINVAL, "negative offset");
    if (size && !buf)
        return core_fail(err, EINVAL, "no buffer");
    if (size > (1u << 30))
        size = 1u << 30;
    for (;;) {
        uint64_t obj = 0;
        GError *e = NULL;
        ssize_t n = read_once(c, ino, fh, buf, size, off, &obj, &e);
        if (n >= 0 || (n != -ESTALE && n != -ENOENT) || !obj) {
            if (e)
                g_propagate_error(err, e);
            return n;
        }
        /* The version went away during the read (a truncation gave the
         * file a new one, and the old object may be gone): read again
         * from the new version; anything else is an error. */
        g_mutex_lock(&c->lock);
        InodeRow r = { 0 };
        bool moved = ino_view(ino) == 0 && inode_get(c, 0, ino_id(ino), &r, NULL) == 0 &&
                     r.version != obj;
        inode_row_clear(&r);
        g_mutex_unlock(&c->lock);
        if (!moved) {
            g_warning("read: file version %" G_GUINT64_FORMAT " has no catalog row and its "
                      "blocks are missing", obj);
            if (err && !*err)
                *err = e;
            else
                g_clear_error(&e);
            return -EIO;
        }
        g_clear_error(&e);
    }
}

/* Appends in flight: each O_APPEND write reserves [woff, woff+size) past
 * the larger of the file's size and the end reserved so far, so that
 * concurrent appenders never get the same offset. Core.lock held. */
static uint64_t append_reserve(Core *c, uint64_t id, uint64_t size, uint64_t len)
{
    uint64_t *end = g_hash_table_lookup(c->append_end, &id);
    uint64_t woff = MAX(size, end ? *end : 0);
    uint64_t e = woff + len;
    g_hash_table_insert(c->append_end, g_memdup2(&id, sizeof id), g_memdup2(&e, sizeof e));
    return woff;
}

/* The append [woff, woff+len) is recorded or abandoned: forget the
 * reservation once nothing past the file's size is reserved. */
static void append_release(Core *c, uint64_t id, uint64_t woff, uint64_t len, uint64_t fsize)
{
    uint64_t *end = g_hash_table_lookup(c->append_end, &id);
    if (!end)
        return;
    if (*end == woff + len && fsize < woff + len)
        *end = MAX(woff, fsize); /* the last reservation failed: give it back */
    if (*end <= fsize)
        g_hash_table_remove(c->append_end, &id);
}

/* One attempt; *retry when a truncation gave the file a new version
 * between the cache write and its record (write again, into that one). */
static ssize_t write_once(Core *c, uint64_t ino, uint64_t fh, const void *buf, size_t size,
                          off_t off, bool *retry, GError **err)
{
    gate_enter_write(&c->gate);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = 0;
    InodeRow r = { 0 };
    CoreHandle *h = file_handle(c, ino, fh, err);
    if (!h)
        rc = -EBADF;
    else if (!h->writer)
        rc = core_fail(err, EBADF, "file not open for writing");
    else if ((rc = inode_get(c, 0, ino_id(ino), &r, err)) == 0)
        rc = filedata_prepare_write_locked(c, &r, err);
    uint64_t obj = r.version;
    uint64_t woff = (uint64_t)off;
    bool append = rc == 0 && (h->flags & O_APPEND);
    if (append)
        woff = append_reserve(c, r.id, r.size, size);
    inode_row_clear(&r);
    uint64_t bs = c->cfg.block_size;
    uint64_t pa = woff / bs * bs, pb = (woff + size + bs - 1) / bs * bs;
    if (rc == 0) {
        DirtyObj *d = dirty_mark_locked(c, obj);
        range_add(&d->pending, pa, pb);
        if (d->flushing && pa < d->flush_read)
            range_add(&d->rewritten, pa, pb);
    }
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    if (rc < 0) {
        gate_leave_write(&c->gate);
        return rc;
    }
    GError *e = NULL;
    ssize_t n = cache_write(c->cache, obj, woff, buf, size, &e);
    if (n < 0) {
        int code = (int)n;
        g_mutex_lock(&c->lock);
        DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
        if (d)
            range_remove(d->pending, pa, pb);
        InodeRow cur = { 0 };
        bool have = inode_get(c, 0, ino_id(ino), &cur, NULL) == 0;
        if (append && have)
            append_release(c, ino_id(ino), woff, size, cur.size);
        /* A read-modify-write of a version released meanwhile: write
         * again into the file's new version. */
        if ((code == -ESTALE || code == -ENOENT) && have && cur.version != obj)
            *retry = true;
        else
            core_fail_from(err, e, -code, "write");
        g_clear_error(&e);
        inode_row_clear(&cur);
        g_mutex_unlock(&c->lock);
        gate_leave_write(&c->gate);
        return code;
    }
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    {
        DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
        if (d)
            range_remove(d->pending, pa, pb);
    }
    if ((rc = inode_get(c, 0, ino_id(ino), &r, err)) == 0) {
        uint64_t end = woff + (uint64_t)n;
        uint64_t nsize = MAX(r.size, end);
        uint64_t a = woff / bs * bs, b = MIN((end + bs - 1) / bs * bs, nsize);
        if (r.version != obj) {
            /* Truncated to a new version meanwhile: the bytes went to the
             * old object; write them again (the write then comes after
             * the truncation). */
            *retry = true;
            rc = -EAGAIN;
        } else if ((rc = extent_set(c, obj, a, b - a, EXT_OBJECT, obj, a, err)) == 0) {
            r.size = nsize;
            r.mtime = r.ctime = core_now_ns();
            rc = inode_put(c, &r, err);
            dirty_mark_locked(c, obj);
            db_note_object(c, obj);
            DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
            if (d) {
                d->ino = (int64_t)ino_id(ino);
                d->end = MAX(d->end, b);
            }
            if (d && d->flushing && a < d->flush_read)
                range_add(&d->rewritten, a, (end + bs - 1) / bs * bs);
        }
        if (append)
            append_release(c, ino_id(ino), woff, size, rc == 0 ? nsize : r.size);
        inode_row_clear(&r);
    }
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    gate_leave_write(&c->gate);
    if (rc < 0)
        return rc;
    return n;
}

ssize_t core_write(Core *c, uint64_t ino, uint64_t fh, const void *buf, size_t size, off_t off,
                   GError **err)
{
    if (ino == CORE_SNAPDIR_INO || ino_view(ino) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    if (off < 0)
        return core_fail(err, EINVAL, "negative offset");
    if ((uint64_t)off + size > CORE_MAX_FILE)
        return core_fail(err, EFBIG, "file too large");
    if (size == 0)
        return 0;
    if (!buf)
        return core_fail(err, EINVAL, "no buffer");
    ssize_t n;
    for (;;) {
        bool retry = false;
        n = write_once(c, ino, fh, buf, size, off, &retry, err);
        if (!retry)
            break;
    }
    if (n < 0)
        return n;
    if (c->opt.dirty_threshold) {
        CacheStats cs;
        cache_stats(c->cache, &cs);
        if (cs.dirty_bytes > c->opt.dirty_threshold)
            flusher_urgent(c->fl);
    }
    return n;
}

int core_flush(Core *c, uint64_t ino, uint64_t fh, GError **err)
{
    g_mutex_lock(&c->lock);
    int rc = file_handle(c, ino, fh, err) ? 0 : -EBADF;
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_release(Core *c, uint64_t ino, uint64_t fh, GError **err)
{
    g_mutex_lock(&c->lock);
    CoreHandle *h = file_handle(c, ino, fh, err);
    if (!h) {
        g_mutex_unlock(&c->lock);
        return -EBADF;
    }
    bool writer = h->writer;
    bool live = ino_view(ino) == 0;
    g_hash_table_remove(c->handles, &fh);
    bool last_writer = false;
    int rc = 0;
    if (live) {
        count_add(c->opens, ino_id(ino), -1);
        if (writer) {
            count_add(c->writers, ino_id(ino), -1);
            last_writer = count_get(c->writers, ino_id(ino)) == 0;
        }
        db_op_begin(c);
        rc = db_op_end(c, inode_reap_if_unused(c, ino_id(ino), err));
    }
    g_mutex_unlock(&c->lock);
    if (last_writer && !c->opt.no_flusher_triggers)
        flusher_kick(c->fl);
    return rc;
}

bool core_has_writers_locked(Core *c, uint64_t id)
{
    return count_get(c->writers, id) > 0;
}

int core_fsync(Core *c, uint64_t ino, uint64_t fh, bool datasync, GError **err)
{
    (void)datasync;
    g_mutex_lock(&c->lock);
    int rc = 0;
    InodeRow r = { 0 };
    if (!file_handle(c, ino, fh, err))
        rc = -EBADF;
    else if (ino_view(ino) == 0)
        rc = inode_get(c, 0, ino_id(ino), &r, err);
    uint64_t obj = r.version;
    inode_row_clear(&r);
    g_mutex_unlock(&c->lock);
    if (rc < 0 || ino_view(ino) != 0)
        return rc;
    if (c->opt.cache_mode == CORE_CACHE_WRITETHROUGH && obj) {
        g_autoptr(GArray) objs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        g_array_append_val(objs, obj);
        GError *e = NULL;
        rc = flusher_run(c->fl, objs, false, &e);
        if (rc < 0) {
            core_fail(err, EIO, "fsync: writing to tape failed: %s", e ? e->message : "?");
            g_clear_error(&e);
            return -EIO;
        }
    }
    g_mutex_lock(&c->lock);
    rc = db_commit(c, err);
    g_mutex_unlock(&c->lock);
    return rc;
}

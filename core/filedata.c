/* filedata.c — file data in the cache: one cache object per file version
 * (object id = version id). Copy-on-write of a version a snapshot can see,
 * truncation (a new version: nothing is removed from a cache object the
 * committed catalog may still read), and the cache's fill callback that resolves a version's
 * extents (dumpfile -> recall from tape, other object -> cache_read of
 * it, no extent -> zeros). fill takes Core.lock only to read extents and
 * calls the cache and tape with no lock held. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

int filedata_prepare_write_locked(Core *c, InodeRow *r, GError **err)
{
    if (!S_ISREG(r->mode))
        return core_fail(err, EINVAL, "not a regular file");
    int rc;
    if (r->version == 0) {
        if ((rc = version_new(c, r->id, &r->version, err)) < 0)
            return rc;
        if ((rc = inode_put(c, r, err)) < 0)
            return rc;
    } else if (version_birth(c, r->version) <= c->max_snap) {
        /* A snapshot sees this version: the live file gets a new version
         * whose extents start as a copy (sharing every unchanged range,
         * including ranges still only in the old object's cache). */
        uint64_t nv;
        if ((rc = version_new(c, r->id, &nv, err)) < 0)
            return rc;
        if ((rc = extent_copy(c, r->version, nv, err)) < 0)
            return rc;
        r->version = nv;
        if ((rc = inode_put(c, r, err)) < 0)
            return rc;
    }
    GError *e = NULL;
    if (cache_object_create(c->cache, r->version, &e) < 0) {
        rc = core_fail_from(err, e, EIO, "creating a cache object");
        g_error_free(e);
        return rc;
    }
    return 0;
}

/* Shrinking never removes bytes from a cache object: the committed
 * catalog may still point at them, and a crash before the next commit
 * reopens it. The file gets a new version instead, whose extents are the
 * old ones cut at `size` (still pointing into the old object where the
 * data is not on tape yet); the old version is released, and its object
 * deleted after the commit that drops the last reference to it. */
int filedata_truncate_locked(Core *c, InodeRow *r, uint64_t size, GError **err)
{
    if (size == r->size)
        return 0;
    int rc;
    if (size > r->size || r->version == 0) {
        if ((rc = filedata_prepare_write_locked(c, r, err)) < 0)
            return rc;
        r->size = size;
        return 0;
    }
    /* Appends in flight write again after this (new version). */
    g_hash_table_remove(c->append_end, &r->id);
    uint64_t old = r->version, nv;
    if ((rc = version_new(c, r->id, &nv, err)) < 0)
        return rc;
    if (size > 0 && (rc = extent_copy(c, old, nv, err)) < 0)
        return rc;
    if (size > 0 && (rc = extent_truncate(c, nv, size, err)) < 0)
        return rc;
    GError *e = NULL;
    if (cache_object_create(c->cache, nv, &e) < 0) {
        rc = core_fail_from(err, e, EIO, "creating a cache object");
        g_error_free(e);
        return rc;
    }
    r->version = nv;
    r->size = size;
    if ((rc = inode_put(c, r, err)) < 0)
        return rc;
    return version_release_if_unused(c, old, err);
}

typedef struct {
    uint64_t at;    /* offset inside the fill buffer */
    uint64_t len;
    int kind;
    uint64_t ref, ref_off;
} FillPiece;

int filedata_fill(void *owner, uint64_t obj, uint64_t offset, void *buf, size_t len)
{
    Core *c = owner;
    memset(buf, 0, len);
    g_autoptr(GArray) plan = g_array_new(FALSE, FALSE, sizeof(FillPiece));
    g_mutex_lock(&c->lock);
    g_autoptr(GArray) ext = extent_list(c, obj, offset, len);
    if (ext->len == 0) {
        /* A hole, unless the object belongs to no version at all. */
        sqlite3_stmt *s = db_q(c, "SELECT 1 FROM versions WHERE id=?", "u", obj);
        bool known = s && sqlite3_step(s) == SQLITE_ROW;
        if (s)
            sqlite3_reset(s);
        if (!known) {
            /* Released meanwhile (a truncation gave the file a new
             * version): the reader tries again with that one. */
            g_mutex_unlock(&c->lock);
            return -ESTALE;
        }
    }
    g_mutex_unlock(&c->lock);
    for (guint i = 0; i < ext->len; i++) {
        Extent e = g_array_index(ext, Extent, i);
        uint64_t a = MAX(e.off, offset), b = MIN(e.off + e.len, offset + len);
        if (a >= b)
            continue;
        FillPiece p = { .at = a - offset, .len = b - a, .kind = e.kind, .ref = e.ref,
                        .ref_off = e.ref_off + (a - e.off) };
        g_array_append_val(plan, p);
    }
    for (guint i = 0; i < plan->len; i++) {
        FillPiece *p = &g_array_index(plan, FillPiece, i);
        char *dst = (char *)buf + p->at;
        GError *e = NULL;
        if (p->kind == EXT_DUMP) {
            int rc = recall_read(c->rc, p->ref, p->ref_off, dst, p->len, &e);
            if (rc < 0) {
                g_warning("reading file version %" G_GUINT64_FORMAT " at %" G_GUINT64_FORMAT
                          ": %s", obj, offset + p->at, e ? e->message : g_strerror(-rc));
                g_clear_error(&e);
                return rc == -ENOENT ? -EIO : rc;
            }
        } else if (p->kind == EXT_OBJECT) {
            if (p->ref == obj) {
                /* A write put the block in place and recorded its extent
                 * while this fill ran: the cache reads what was written
                 * (it re-checks the block before installing a fill). */
                if (cache_block_state(c->cache, obj, offset + p->at, NULL) == CACHE_BLOCK_DIRTY)
                    continue;
                g_warning("fill: file version %" G_GUINT64_FORMAT " at %" G_GUINT64_FORMAT
                          ": its own dirty bytes are missing from the cache", obj,
                          offset + p->at);
                return -EIO;
            }
            ssize_t n = cache_read(c->cache, p->ref, p->ref_off, dst, p->len, &e);
            if (n < 0 || (uint64_t)n != p->len) {
                g_warning("fill: shared bytes of object %" G_GUINT64_FORMAT ": %s", p->ref,
                          e ? e->message : "short read");
                g_clear_error(&e);
                return n < 0 ? (int)n : -EIO;
            }
        } else {
            g_warning("fill: file version %" G_GUINT64_FORMAT " at %" G_GUINT64_FORMAT
                      ": data lost (it was never written to tape)", obj, offset + p->at);
            return -EIO;
        }
    }
    return 0;
}

int filedata_cache_flush(void *owner, uint64_t obj)
{
    Core *c = owner;
    g_autoptr(GArray) objs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_array_append_val(objs, obj);
    GError *e = NULL;
    int rc = flusher_run(c->fl, objs, false, &e);
    if (rc < 0) {
        g_warning("flush of object %" G_GUINT64_FORMAT ": %s", obj, e ? e->message : "?");
        g_clear_error(&e);
    }
    return rc;
}

void filedata_need_space(void *owner)
{
    Core *c = owner;
    if (c->fl)
        flusher_urgent(c->fl);
}

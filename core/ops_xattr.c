/* ops_xattr.c — extended attributes of the filesystem API, and the
 * virtual read-only attributes user.tapefs.state (lost, dirty, cached,
 * on-tape) and user.tapefs.parts that show where a file's data lives.
 * Take Core.lock (the state also asks the cache, which takes only its own
 * locks and calls no callback for it). */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

#define VX_PREFIX "user.tapefs."

static int check_xname(const char *name, GError **err)
{
    if (!name || !*name)
        return core_fail(err, EINVAL, "empty attribute name");
    if (strlen(name) > 255)
        return core_fail(err, ERANGE, "attribute name too long");
    return 0;
}

static int resolve(Core *c, uint64_t ino, InodeRow *r, GError **err)
{
    if (ino == CORE_SNAPDIR_INO)
        return core_fail(err, ENODATA, "no attributes on %s", CORE_SNAPDIR_NAME);
    if (!view_exists(c, ino_view(ino)))
        return core_fail(err, ESTALE, "snapshot was deleted");
    return inode_get(c, ino_view(ino), ino_id(ino), r, err);
}

int core_setxattr(Core *c, uint64_t ino, const char *name, const void *value, size_t size,
                  int flags, GError **err)
{
    int rc = check_xname(name, err);
    if (rc < 0)
        return rc;
    if (ino == CORE_SNAPDIR_INO || ino_view(ino) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    if (g_str_has_prefix(name, VX_PREFIX))
        return core_fail(err, EPERM, "%s is maintained by tapefs", name);
    if (size && !value)
        return core_fail(err, EINVAL, "attribute value missing");
    if (size > 65536)
        return core_fail(err, E2BIG, "attribute value too large");
    if (flags & ~(CORE_XATTR_CREATE | CORE_XATTR_REPLACE))
        return core_fail(err, EINVAL, "unknown setxattr flags");
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    InodeRow r;
    if ((rc = resolve(c, ino, &r, err)) < 0)
        goto out;
    GBytes *old = NULL;
    bool exists = xattr_get(c, 0, r.id, name, &old, NULL) == 0;
    if (old)
        g_bytes_unref(old);
    if (exists && (flags & CORE_XATTR_CREATE))
        rc = core_fail(err, EEXIST, "%s: attribute exists", name);
    else if (!exists && (flags & CORE_XATTR_REPLACE))
        rc = core_fail(err, ENODATA, "%s: no such attribute", name);
    else if ((rc = xattr_set(c, r.id, name, value, size, err)) == 0) {
        r.ctime = core_now_ns();
        rc = inode_put(c, &r, err);
    }
    inode_row_clear(&r);
out:
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    return rc;
}

/* Where a regular file's data is, for user.tapefs.state (Core.lock held):
 *   "lost"     some extent's data was lost (a recovery found it only in
 *              the old cache): reads of it fail
 *   "dirty"    some data is only in the cache, not on tape yet
 *   "cached"   all of it is on tape, and some or all of it is also in the
 *              cache (blocks of the version's object are present)
 *   "on-tape"  all of it is on tape and none of it is in the cache
 * An empty file (no extents) is "on-tape" too. */
static const char *file_state(Core *c, const InodeRow *r)
{
    sqlite3_stmt *s = db_q(c, "SELECT MAX(kind=?), MAX(kind=?) FROM extents WHERE version=?",
                           "iiu", (int64_t)EXT_LOST, (int64_t)EXT_OBJECT, r->version);
    bool lost = false, dirty = false;
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        lost = sqlite3_column_int(s, 0) == 1;
        dirty = sqlite3_column_int(s, 1) == 1;
    }
    if (s)
        sqlite3_reset(s);
    if (lost)
        return "lost";
    if (dirty)
        return "dirty";
    /* The version's object holds every byte read or written through it;
     * one never made or gone has nothing cached. */
    uint64_t in_dirty = 0, in_clean = 0;
    if (cache_object_usage(c->cache, r->version, &in_dirty, &in_clean, NULL) == 0 &&
        in_dirty + in_clean > 0)
        return "cached";
    return "on-tape";
}

/* The virtual attributes; Core.lock held. */
static GBytes *virtual_attr(Core *c, const InodeRow *r, const char *name)
{
    if (!S_ISREG(r->mode))
        return NULL;
    if (!strcmp(name, VX_PREFIX "state")) {
        const char *v = file_state(c, r);
        return g_bytes_new(v, strlen(v));
    }
    if (!strcmp(name, VX_PREFIX "parts")) {
        GString *out = g_string_new(NULL);
        sqlite3_stmt *s = db_q(c, "SELECT DISTINCT p.volume, p.fileno, p.off, p.len, p.dumpfile "
                               "FROM extents e JOIN parts p ON p.dumpfile=e.ref "
                               "WHERE e.version=? AND e.kind=0 AND p.off<e.ref_off+e.len "
                               "AND p.off+p.len>e.ref_off ORDER BY p.dumpfile, p.off",
                               "u", r->version);
        while (s && sqlite3_step(s) == SQLITE_ROW)
            g_string_append_printf(out, "%s %lld %lld %lld dumpfile=%lld\n",
                                   (const char *)sqlite3_column_text(s, 0),
                                   (long long)sqlite3_column_int64(s, 1),
                                   (long long)sqlite3_column_int64(s, 2),
                                   (long long)sqlite3_column_int64(s, 3),
                                   (long long)sqlite3_column_int64(s, 4));
        if (s)
            sqlite3_reset(s);
        return g_string_free_to_bytes(out);
    }
    return NULL;
}

ssize_t core_getxattr(Core *c, uint64_t ino, const char *name, void *value, size_t size,
                      GError **err)
{
    int rc = check_xname(name, err);
    if (rc < 0)
        return rc;
    if (size && !value)
        return core_fail(err, EINVAL, "no buffer for the attribute value");
    g_mutex_lock(&c->lock);
    InodeRow r;
    ssize_t out;
    if ((rc = resolve(c, ino, &r, err)) < 0) {
        out = rc;
        goto unlock;
    }
    GBytes *v = NULL;
    if (g_str_has_prefix(name, VX_PREFIX))
        v = virtual_attr(c, &r, name);
    else
        xattr_get(c, ino_view(ino), r.id, name, &v, NULL);
    inode_row_clear(&r);
    if (!v) {
        out = core_fail(err, ENODATA, "%s: no such attribute", name);
        goto unlock;
    }
    gsize n = 0;
    const void *p = g_bytes_get_data(v, &n);
    if (size == 0)
        out = (ssize_t)n;
    else if (size < n)
        out = core_fail(err, ERANGE, "%s: buffer too small", name);
    else {
        if (n)
            memcpy(value, p, n);
        out = (ssize_t)n;
    }
    g_bytes_unref(v);
unlock:
    g_mutex_unlock(&c->lock);
    return out;
}

ssize_t core_listxattr(Core *c, uint64_t ino, char *list, size_t size, GError **err)
{
    if (size && !list)
        return core_fail(err, EINVAL, "no buffer for the attribute list");
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_mutex_lock(&c->lock);
    InodeRow r;
    ssize_t out;
    int rc = resolve(c, ino, &r, err);
    if (rc < 0) {
        out = ino == CORE_SNAPDIR_INO ? 0 : rc;
        goto unlock;
    }
    rc = xattr_list(c, ino_view(ino), r.id, names, err);
    inode_row_clear(&r);
    if (rc < 0) {
        out = rc;
        goto unlock;
    }
    size_t need = 0;
    for (guint i = 0; i < names->len; i++)
        need += strlen(names->pdata[i]) + 1;
    if (size == 0) {
        out = (ssize_t)need;
    } else if (size < need) {
        out = core_fail(err, ERANGE, "attribute list buffer too small");
    } else {
        size_t at = 0;
        for (guint i = 0; i < names->len; i++) {
            size_t l = strlen(names->pdata[i]) + 1;
            memcpy(list + at, names->pdata[i], l);
            at += l;
        }
        out = (ssize_t)need;
    }
unlock:
    g_mutex_unlock(&c->lock);
    return out;
}

int core_removexattr(Core *c, uint64_t ino, const char *name, GError **err)
{
    int rc = check_xname(name, err);
    if (rc < 0)
        return rc;
    if (ino == CORE_SNAPDIR_INO || ino_view(ino) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    if (g_str_has_prefix(name, VX_PREFIX))
        return core_fail(err, EPERM, "%s is maintained by tapefs", name);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    InodeRow r;
    if ((rc = resolve(c, ino, &r, err)) == 0) {
        if ((rc = xattr_remove(c, r.id, name, err)) == 0) {
            r.ctime = core_now_ns();
            rc = inode_put(c, &r, err);
        }
        inode_row_clear(&r);
    }
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    return rc;
}

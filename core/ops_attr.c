/* ops_attr.c — attribute operations of the filesystem API: getattr,
 * setattr (mode, owner, size, times), readlink, statfs. Take Core.lock;
 * a size change also passes Core.gate (gate.c; it may copy the file's
 * version for a snapshot). */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

int core_getattr(Core *c, uint64_t ino, struct stat *st, GError **err)
{
    if (!st)
        return core_fail(err, EINVAL, "getattr without a result buffer");
    int rc = 0;
    g_mutex_lock(&c->lock);
    if (ino == CORE_SNAPDIR_INO) {
        snapdir_stat(c, st);
    } else if (!view_exists(c, ino_view(ino))) {
        rc = core_fail(err, ESTALE, "snapshot was deleted");
    } else {
        InodeRow r;
        rc = inode_get(c, ino_view(ino), ino_id(ino), &r, err);
        if (rc == 0) {
            inode_to_stat(c, ino_view(ino), &r, st);
            inode_row_clear(&r);
        }
    }
    g_mutex_unlock(&c->lock);
    return rc;
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int core_setattr(Core *c, uint64_t ino, const struct stat *attr, int to_set,
                 struct stat *out, GError **err)
{
    if (ino == CORE_SNAPDIR_INO || ino_view(ino) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    if (!attr && to_set)
        return core_fail(err, EINVAL, "setattr without attributes");
    bool sizing = (to_set & CORE_SET_SIZE) != 0;
    if (sizing && attr->st_size < 0)
        return core_fail(err, EINVAL, "negative size");
    if (sizing && (uint64_t)attr->st_size > (1ULL << 50))
        return core_fail(err, EFBIG, "file too large");
    if (sizing)
        gate_enter_write(&c->gate);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    InodeRow r;
    int rc = inode_get(c, 0, ino_id(ino), &r, err);
    if (rc < 0)
        goto out;
    int64_t now = core_now_ns();
    if (sizing) {
        if (S_ISDIR(r.mode)) {
            rc = core_fail(err, EISDIR, "cannot truncate a directory");
            goto done;
        }
        if (!S_ISREG(r.mode)) {
            rc = core_fail(err, EINVAL, "can only truncate regular files");
            goto done;
        }
        if ((rc = filedata_truncate_locked(c, &r, (uint64_t)attr->st_size, err)) < 0)
            goto done;
        r.mtime = now;
    }
    if (to_set & CORE_SET_MODE)
        r.mode = (r.mode & S_IFMT) | (attr->st_mode & 07777);
    if (to_set & CORE_SET_UID)
        r.uid = attr->st_uid;
    if (to_set & CORE_SET_GID)
        r.gid = attr->st_gid;
    if (to_set & CORE_SET_ATIME_NOW)
        r.atime = now;
    else if (to_set & CORE_SET_ATIME)
        r.atime = ts_ns(&attr->st_atim);
    if (to_set & CORE_SET_MTIME_NOW)
        r.mtime = now;
    else if (to_set & CORE_SET_MTIME)
        r.mtime = ts_ns(&attr->st_mtim);
    r.ctime = (to_set & CORE_SET_CTIME) ? ts_ns(&attr->st_ctim) : now;
    if ((rc = inode_put(c, &r, err)) < 0)
        goto done;
    if (out)
        inode_to_stat(c, 0, &r, out);
done:
    inode_row_clear(&r);
out:
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    if (sizing)
        gate_leave_write(&c->gate);
    return rc;
}

int core_readlink(Core *c, uint64_t ino, char **target, GError **err)
{
    if (!target)
        return core_fail(err, EINVAL, "readlink without a result pointer");
    if (ino == CORE_SNAPDIR_INO)
        return core_fail(err, EINVAL, "not a symbolic link");
    g_mutex_lock(&c->lock);
    InodeRow r;
    int rc = view_exists(c, ino_view(ino)) ? inode_get(c, ino_view(ino), ino_id(ino), &r, err)
                                           : core_fail(err, ESTALE, "snapshot was deleted");
    if (rc == 0) {
        if (!S_ISLNK(r.mode) || !r.target)
            rc = core_fail(err, EINVAL, "not a symbolic link");
        else
            *target = g_steal_pointer(&r.target);
        inode_row_clear(&r);
    }
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_statfs(Core *c, struct statvfs *st, GError **err)
{
    if (!st)
        return core_fail(err, EINVAL, "statfs without a result buffer");
    memset(st, 0, sizeof *st);
    GArray *vols = tape_library_volumes(c->lib);
    uint64_t total = 0, freeb = 0;
    for (guint i = 0; vols && i < vols->len; i++) {
        TapeVolumeInfo *v = &g_array_index(vols, TapeVolumeInfo, i);
        total += v->capacity;
        if (!v->full && v->capacity > v->used)
            freeb += v->capacity - v->used;
    }
    if (vols)
        g_array_unref(vols);
    uint64_t bs = c->cfg.block_size;
    st->f_bsize = bs;
    st->f_frsize = bs;
    st->f_blocks = total / bs;
    st->f_bfree = freeb / bs;
    st->f_bavail = freeb / bs;
    g_mutex_lock(&c->lock);
    uint64_t used = c->next_id;
    g_mutex_unlock(&c->lock);
    st->f_files = (1ULL << 32);
    st->f_ffree = st->f_files > used ? st->f_files - used : 0;
    st->f_favail = st->f_ffree;
    st->f_namemax = 255;
    (void)err;
    return 0;
}

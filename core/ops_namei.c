/* ops_namei.c — namespace operations of the filesystem API: lookup,
 * mknod, mkdir, symlink, link, unlink, rmdir, rename (with
 * RENAME_NOREPLACE and RENAME_EXCHANGE), and `.snapshots` (mkdir/rmdir
 * there create/delete snapshots). Each takes Core.lock for its whole
 * catalog work; snapshot views are read-only (-EROFS). */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

static int check_name(const char *name, GError **err)
{
    if (!name || !*name || strchr(name, '/'))
        return core_fail(err, EINVAL, "\"%s\": not a valid file name", name ? name : "");
    if (strlen(name) > 255)
        return core_fail(err, ENAMETOOLONG, "file name too long");
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return core_fail(err, EINVAL, "\"%s\": not a valid file name", name);
    return 0;
}

/* The live directory `parent`, for changing. */
static int live_dir(Core *c, uint64_t parent, InodeRow *pr, GError **err)
{
    memset(pr, 0, sizeof *pr);
    if (parent == CORE_SNAPDIR_INO || ino_view(parent) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    int rc = inode_get(c, 0, ino_id(parent), pr, err);
    if (rc < 0)
        return rc;
    if (!S_ISDIR(pr->mode)) {
        inode_row_clear(pr);
        return core_fail(err, ENOTDIR, "inode %" G_GUINT64_FORMAT " is not a directory", parent);
    }
    return 0;
}

static bool reserved_name(uint64_t parent, const char *name)
{
    return parent == CORE_ROOT_INO && !strcmp(name, CORE_SNAPDIR_NAME);
}

int core_lookup(Core *c, uint64_t parent, const char *name, struct stat *st, GError **err)
{
    if (!st)
        return core_fail(err, EINVAL, "lookup without a result buffer");
    if (!name || !*name || strlen(name) > 255 || strchr(name, '/'))
        return core_fail(err, name && strlen(name) > 255 ? ENAMETOOLONG : EINVAL,
                         "not a valid file name");
    int rc = 0;
    g_mutex_lock(&c->lock);
    if (parent == CORE_ROOT_INO && !strcmp(name, CORE_SNAPDIR_NAME)) {
        snapdir_stat(c, st);
        lookup_ref(c, CORE_SNAPDIR_INO, 1);
        goto out;
    }
    if (parent == CORE_SNAPDIR_INO) {
        if (!strcmp(name, ".")) {
            snapdir_stat(c, st);
            lookup_ref(c, CORE_SNAPDIR_INO, 1);
            goto out;
        }
        int64_t g = snapshot_find(c, name);
        if (g < 0) {
            rc = core_fail(err, ENOENT, "no snapshot named %s", name);
            goto out;
        }
        if ((rc = snapshot_root_stat(c, g, st, err)) == 0)
            lookup_ref(c, st->st_ino, 1);
        goto out;
    }
    int64_t view = ino_view(parent);
    if (!view_exists(c, view)) {
        rc = core_fail(err, ESTALE, "snapshot was deleted");
        goto out;
    }
    InodeRow pr, r;
    if ((rc = inode_get(c, view, ino_id(parent), &pr, err)) < 0)
        goto out;
    bool isdir = S_ISDIR(pr.mode);
    inode_row_clear(&pr);
    if (!isdir) {
        rc = core_fail(err, ENOTDIR, "not a directory");
        goto out;
    }
    uint64_t child = ino_id(parent);
    if (strcmp(name, ".") != 0) {
        if (!strcmp(name, "..")) {
            rc = core_fail(err, ENOENT, "\"..\" is resolved by the caller");
            goto out;
        }
        if ((rc = dirent_get(c, view, ino_id(parent), name, &child, err)) < 0)
            goto out;
    }
    if ((rc = inode_get(c, view, child, &r, err)) < 0)
        goto out;
    inode_to_stat(c, view, &r, st);
    inode_row_clear(&r);
    lookup_ref(c, st->st_ino, 1);
out:
    g_mutex_unlock(&c->lock);
    return rc;
}

/* Create a new inode and its entry; Core.lock held. */
static int make_node(Core *c, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
                     const char *target, const CoreCred *cred, struct stat *st,
                     uint64_t *new_id, GError **err)
{
    int rc = check_name(name, err);
    if (rc < 0)
        return rc;
    InodeRow pr;
    if ((rc = live_dir(c, parent, &pr, err)) < 0)
        return rc;
    uint64_t existing;
    if (reserved_name(parent, name) || dirent_get(c, 0, pr.id, name, &existing, NULL) == 0) {
        inode_row_clear(&pr);
        return core_fail(err, EEXIST, "%s: file exists", name);
    }
    if (pr.nlink >= 60000 && S_ISDIR(mode)) {
        inode_row_clear(&pr);
        return core_fail(err, EMLINK, "too many subdirectories");
    }
    int64_t now = core_now_ns();
    InodeRow r = {
        .id = c->next_id,
        .mode = mode,
        .uid = cred ? cred->uid : 0,
        .gid = cred ? cred->gid : 0,
        .atime = now, .mtime = now, .ctime = now,
        .nlink = S_ISDIR(mode) ? 2 : 1,
        .rdev = S_ISCHR(mode) || S_ISBLK(mode) ? rdev : 0,
        .target = target ? g_strdup(target) : NULL,
        .size = target ? strlen(target) : 0,
    };
    c->next_id++;
    if ((rc = db_meta_set(c, "next_id", (int64_t)c->next_id, err)) < 0)
        goto done;
    if (S_ISREG(mode) && (rc = version_new(c, r.id, &r.version, err)) < 0)
        goto done;
    if ((rc = inode_insert(c, &r, err)) < 0)
        goto done;
    if ((rc = dirent_add(c, pr.id, name, r.id, err)) < 0)
        goto done;
    pr.mtime = pr.ctime = now;
    if (S_ISDIR(mode))
        pr.nlink++;
    if ((rc = inode_put(c, &pr, err)) < 0)
        goto done;
    if (st) {
        inode_to_stat(c, 0, &r, st);
        lookup_ref(c, r.id, 1);
    }
    if (new_id)
        *new_id = r.id;
done:
    inode_row_clear(&r);
    inode_row_clear(&pr);
    return rc;
}

int core_make_node_locked(Core *c, uint64_t parent, const char *name, mode_t mode,
                          const CoreCred *cred, struct stat *st, uint64_t *id,
                          GError **err)
{
    return make_node(c, parent, name, mode, 0, NULL, cred, st, id, err);
}

int core_mknod(Core *c, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
               const CoreCred *cred, struct stat *st, GError **err)
{
    mode_t t = mode & S_IFMT;
    if (t == 0)
        mode |= S_IFREG;
    else if (t != S_IFREG && t != S_IFCHR && t != S_IFBLK && t != S_IFIFO && t != S_IFSOCK)
        return core_fail(err, EINVAL, "mknod: unsupported file type");
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = make_node(c, parent, name, mode & (S_IFMT | 07777), rdev, NULL, cred, st, NULL, err);
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_mkdir(Core *c, uint64_t parent, const char *name, mode_t mode, const CoreCred *cred,
               struct stat *st, GError **err)
{
    if (parent == CORE_SNAPDIR_INO) {
        int rc = core_snapshot_create(c, name, err);
        if (rc < 0)
            return rc;
        g_mutex_lock(&c->lock);
        int64_t g = snapshot_find(c, name);
        rc = snapshot_root_stat(c, g, st, err);
        if (rc == 0)
            lookup_ref(c, st->st_ino, 1);
        g_mutex_unlock(&c->lock);
        return rc;
    }
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = make_node(c, parent, name, S_IFDIR | (mode & 07777), 0, NULL, cred, st, NULL, err);
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_symlink(Core *c, const char *target, uint64_t parent, const char *name,
                 const CoreCred *cred, struct stat *st, GError **err)
{
    if (!target || !*target || strlen(target) >= 4096)
        return core_fail(err, target && *target ? ENAMETOOLONG : EINVAL, "bad symlink target");
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = make_node(c, parent, name, S_IFLNK | 0777, 0, target, cred, st, NULL, err);
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_link(Core *c, uint64_t ino, uint64_t newparent, const char *newname, struct stat *st,
              GError **err)
{
    int rc = check_name(newname, err);
    if (rc < 0)
        return rc;
    if (ino == CORE_SNAPDIR_INO || ino_view(ino) != 0)
        return core_fail(err, EROFS, "snapshots are read-only");
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    InodeRow pr = { 0 }, r = { 0 };
    uint64_t existing;
    if ((rc = live_dir(c, newparent, &pr, err)) < 0)
        goto out;
    if ((rc = inode_get(c, 0, ino_id(ino), &r, err)) < 0)
        goto out;
    if (S_ISDIR(r.mode)) {
        rc = core_fail(err, EPERM, "cannot hard-link a directory");
        goto out;
    }
    if (r.nlink == 0) {
        rc = core_fail(err, ENOENT, "file was deleted");
        goto out;
    }
    if (r.nlink >= 65000) {
        rc = core_fail(err, EMLINK, "too many links");
        goto out;
    }
    if (reserved_name(newparent, newname) || dirent_get(c, 0, pr.id, newname, &existing, NULL) == 0) {
        rc = core_fail(err, EEXIST, "%s: file exists", newname);
        goto out;
    }
    int64_t now = core_now_ns();
    if ((rc = dirent_add(c, pr.id, newname, r.id, err)) < 0)
        goto out;
    r.nlink++;
    r.ctime = now;
    if ((rc = inode_put(c, &r, err)) < 0)
        goto out;
    pr.mtime = pr.ctime = now;
    if ((rc = inode_put(c, &pr, err)) < 0)
        goto out;
    if (st) {
        inode_to_stat(c, 0, &r, st);
        lookup_ref(c, r.id, 1);
    }
out:
    inode_row_clear(&pr);
    inode_row_clear(&r);
    rc = db_op_end(c, rc);
    g_mutex_unlock(&c->lock);
    return rc;
}

/* One link of `r` is gone: drop it, end the inode when the last link went
 * and nobody has it open or looked up. Core.lock held. */
static int drop_link(Core *c, InodeRow *r, int64_t now, GError **err)
{
    if (S_ISDIR(r->mode))
        r->nlink = 0;
    else if (r->nlink > 0)
        r->nlink--;
    r->ctime = now;
    int rc = inode_put(c, r, err);
    if (rc < 0 || r->nlink > 0)
        return rc;
    if (S_ISDIR(r->mode))
        return inode_kill(c, r, err);
    return inode_reap_if_unused(c, r->id, err);
}

static int remove_entry(Core *c, uint64_t parent, const char *name, bool dir, GError **err)
{
    int rc = check_name(name, err);
    if (rc < 0)
        return rc;
    InodeRow pr = { 0 }, r = { 0 };
    uint64_t child;
    if ((rc = live_dir(c, parent, &pr, err)) < 0)
        goto out;
    if ((rc = dirent_get(c, 0, pr.id, name, &child, err)) < 0)
        goto out;
    if ((rc = inode_get(c, 0, child, &r, err)) < 0)
        goto out;
    if (dir && !S_ISDIR(r.mode)) {
        rc = core_fail(err, ENOTDIR, "%s: not a directory", name);
        goto out;
    }
    if (!dir && S_ISDIR(r.mode)) {
        rc = core_fail(err, EISDIR, "%s: is a directory", name);
        goto out;
    }
    if (dir && dirent_has_children(c, r.id)) {
        rc = core_fail(err, ENOTEMPTY, "%s: directory not empty", name);
        goto out;
    }
    int64_t now = core_now_ns();
    if ((rc = dirent_remove(c, pr.id, name, err)) < 0)
        goto out;
    if ((rc = drop_link(c, &r, now, err)) < 0)
        goto out;
    pr.mtime = pr.ctime = now;
    if (dir)
        pr.nlink--;
    rc = inode_put(c, &pr, err);
out:
    inode_row_clear(&pr);
    inode_row_clear(&r);
    return rc;
}

int core_unlink(Core *c, uint64_t parent, const char *name, GError **err)
{
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = db_op_end(c, remove_entry(c, parent, name, false, err));
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_rmdir(Core *c, uint64_t parent, const char *name, GError **err)
{
    if (parent == CORE_SNAPDIR_INO)
        return core_snapshot_delete(c, name, err);
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = db_op_end(c, remove_entry(c, parent, name, true, err));
    g_mutex_unlock(&c->lock);
    return rc;
}

/* Is directory `anc` the directory `id` or one of its ancestors? */
static bool is_ancestor(Core *c, uint64_t anc, uint64_t id)
{
    for (int depth = 0; depth < 100000; depth++) {
        if (id == anc)
            return true;
        if (id == CORE_ROOT_INO)
            return false;
        sqlite3_stmt *s = db_q(c, "SELECT parent FROM dirents WHERE child=? AND death=? LIMIT 1",
                               "ui", id, (int64_t)CORE_INF);
        if (!s || sqlite3_step(s) != SQLITE_ROW) {
            if (s)
                sqlite3_reset(s);
            return false;
        }
        id = (uint64_t)sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    return true;
}

static int rename_locked(Core *c, uint64_t parent, const char *name, uint64_t newparent,
                         const char *newname, unsigned flags, GError **err)
{
    int rc;
    if ((rc = check_name(name, err)) < 0 || (rc = check_name(newname, err)) < 0)
        return rc;
    if (flags & ~(CORE_RENAME_NOREPLACE | CORE_RENAME_EXCHANGE))
        return core_fail(err, EINVAL, "rename: unknown flags");
    if ((flags & CORE_RENAME_NOREPLACE) && (flags & CORE_RENAME_EXCHANGE))
        return core_fail(err, EINVAL, "rename: NOREPLACE and EXCHANGE together");
    if (reserved_name(newparent, newname) || reserved_name(parent, name))
        return core_fail(err, EPERM, "%s is reserved", CORE_SNAPDIR_NAME);
    InodeRow sp = { 0 }, dp = { 0 }, sr = { 0 }, dr = { 0 };
    bool have_dst = false;
    uint64_t sid, did = 0;
    if ((rc = live_dir(c, parent, &sp, err)) < 0)
        goto out;
    if ((rc = live_dir(c, newparent, &dp, err)) < 0)
        goto out;
    if ((rc = dirent_get(c, 0, sp.id, name, &sid, err)) < 0)
        goto out;
    if ((rc = inode_get(c, 0, sid, &sr, err)) < 0)
        goto out;
    have_dst = dirent_get(c, 0, dp.id, newname, &did, NULL) == 0;
    if (have_dst && (rc = inode_get(c, 0, did, &dr, err)) < 0)
        goto out;
    if (have_dst && (flags & CORE_RENAME_NOREPLACE)) {
        rc = core_fail(err, EEXIST, "%s: file exists", newname);
        goto out;
    }
    if (!have_dst && (flags & CORE_RENAME_EXCHANGE)) {
        rc = core_fail(err, ENOENT, "%s: no such file to exchange with", newname);
        goto out;
    }
    if (have_dst && did == sid) {
        rc = 0; /* two names of one inode: nothing to do */
        goto out;
    }
    /* A directory may not move below itself. */
    if (S_ISDIR(sr.mode) && sp.id != dp.id && is_ancestor(c, sr.id, dp.id)) {
        rc = core_fail(err, EINVAL, "cannot move a directory below itself");
        goto out;
    }
    if ((flags & CORE_RENAME_EXCHANGE) && S_ISDIR(dr.mode) && sp.id != dp.id &&
        is_ancestor(c, dr.id, sp.id)) {
        rc = core_fail(err, EINVAL, "cannot move a directory below itself");
        goto out;
    }
    int64_t now = core_now_ns();
    bool same = sp.id == dp.id;
    if (flags & CORE_RENAME_EXCHANGE) {
        if ((rc = dirent_remove(c, sp.id, name, err)) < 0 ||
            (rc = dirent_remove(c, dp.id, newname, err)) < 0 ||
            (rc = dirent_add(c, sp.id, name, did, err)) < 0 ||
            (rc = dirent_add(c, dp.id, newname, sid, err)) < 0)
            goto out;
        if (!same && S_ISDIR(sr.mode) != S_ISDIR(dr.mode)) {
            if (S_ISDIR(sr.mode)) {
                sp.nlink--;
                dp.nlink++;
            } else {
                sp.nlink++;
                dp.nlink--;
            }
        }
        dr.ctime = now;
        if ((rc = inode_put(c, &dr, err)) < 0)
            goto out;
    } else {
        if (have_dst) {
            if (S_ISDIR(sr.mode) && !S_ISDIR(dr.mode)) {
                rc = core_fail(err, ENOTDIR, "%s: not a directory", newname);
                goto out;
            }
            if (!S_ISDIR(sr.mode) && S_ISDIR(dr.mode)) {
                rc = core_fail(err, EISDIR, "%s: is a directory", newname);
                goto out;
            }
            if (S_ISDIR(dr.mode) && dirent_has_children(c, dr.id)) {
                rc = core_fail(err, ENOTEMPTY, "%s: directory not empty", newname);
                goto out;
            }
            if ((rc = dirent_remove(c, dp.id, newname, err)) < 0)
                goto out;
            if ((rc = drop_link(c, &dr, now, err)) < 0)
                goto out;
            if (S_ISDIR(dr.mode))
                dp.nlink--;
        }
        if ((rc = dirent_remove(c, sp.id, name, err)) < 0 ||
            (rc = dirent_add(c, dp.id, newname, sid, err)) < 0)
            goto out;
        if (S_ISDIR(sr.mode) && !same) {
            sp.nlink--;
            dp.nlink++;
        }
    }
    sr.ctime = now;
    if ((rc = inode_put(c, &sr, err)) < 0)
        goto out;
    if (same) {
        /* One directory: dp carries the net change. */
        dp.mtime = dp.ctime = now;
        rc = inode_put(c, &dp, err);
    } else {
        sp.mtime = sp.ctime = now;
        dp.mtime = dp.ctime = now;
        if ((rc = inode_put(c, &sp, err)) == 0)
            rc = inode_put(c, &dp, err);
    }
out:
    inode_row_clear(&sp);
    inode_row_clear(&dp);
    inode_row_clear(&sr);
    inode_row_clear(&dr);
    return rc;
}

int core_rename(Core *c, uint64_t parent, const char *name, uint64_t newparent,
                const char *newname, unsigned flags, GError **err)
{
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    int rc = db_op_end(c, rename_locked(c, parent, name, newparent, newname, flags, err));
    g_mutex_unlock(&c->lock);
    return rc;
}

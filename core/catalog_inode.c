/* catalog_inode.c — inode rows of the catalog with birth/death
 * generations: read a row as a view sees it, insert, change with
 * copy-on-write when a snapshot can see the row, end a row. Called with
 * Core.lock held. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define INODE_COLS "id, birth, death, mode, uid, gid, size, atime, mtime, ctime, nlink, rdev, target, version"

int64_t core_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void row_from(sqlite3_stmt *s, InodeRow *r)
{
    r->id = (uint64_t)sqlite3_column_int64(s, 0);
    r->birth = sqlite3_column_int64(s, 1);
    r->death = sqlite3_column_int64(s, 2);
    r->mode = (uint32_t)sqlite3_column_int64(s, 3);
    r->uid = (uint32_t)sqlite3_column_int64(s, 4);
    r->gid = (uint32_t)sqlite3_column_int64(s, 5);
    r->size = (uint64_t)sqlite3_column_int64(s, 6);
    r->atime = sqlite3_column_int64(s, 7);
    r->mtime = sqlite3_column_int64(s, 8);
    r->ctime = sqlite3_column_int64(s, 9);
    r->nlink = (uint32_t)sqlite3_column_int64(s, 10);
    r->rdev = (uint64_t)sqlite3_column_int64(s, 11);
    const unsigned char *t = sqlite3_column_text(s, 12);
    r->target = t ? g_strdup((const char *)t) : NULL;
    r->version = (uint64_t)sqlite3_column_int64(s, 13);
}

int inode_get(Core *c, int64_t view, uint64_t id, InodeRow *r, GError **err)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *s;
    if (view == 0)
        s = db_q(c, "SELECT " INODE_COLS " FROM inodes WHERE id=? AND death=?",
                 "ui", id, (int64_t)CORE_INF);
    else
        s = db_q(c, "SELECT " INODE_COLS " FROM inodes WHERE id=? AND birth<=? AND death>?",
                 "uii", id, view, view);
    if (!s)
        return db_fail(c, err, "inode lookup");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        row_from(s, r);
        sqlite3_reset(s);
        return 0;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(c, err, "inode lookup");
    return core_fail(err, ENOENT, "inode %" G_GUINT64_FORMAT " not found", id);
}

static int row_insert(Core *c, const InodeRow *r, GError **err)
{
    return db_x(c, err, "INSERT INTO inodes(" INODE_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                "uiiiiiiiiiiitu", r->id, r->birth, r->death, (int64_t)r->mode,
                (int64_t)r->uid, (int64_t)r->gid, (int64_t)r->size, r->atime,
                r->mtime, r->ctime, (int64_t)r->nlink, (int64_t)r->rdev,
                r->target, r->version);
}

int inode_insert(Core *c, InodeRow *r, GError **err)
{
    r->birth = c->gen;
    r->death = CORE_INF;
    return row_insert(c, r, err);
}

int inode_put(Core *c, InodeRow *r, GError **err)
{
    if (r->birth <= c->max_snap) {
        int rc = db_x(c, err, "UPDATE inodes SET death=? WHERE id=? AND birth=?",
                      "iui", c->gen, r->id, r->birth);
        if (rc < 0)
            return rc;
        return inode_insert(c, r, err);
    }
    return db_x(c, err, "UPDATE inodes SET mode=?, uid=?, gid=?, size=?, atime=?, mtime=?,"
                " ctime=?, nlink=?, rdev=?, target=?, version=? WHERE id=? AND birth=?",
                "iiiiiiiiitiui", (int64_t)r->mode, (int64_t)r->uid, (int64_t)r->gid,
                (int64_t)r->size, r->atime, r->mtime, r->ctime, (int64_t)r->nlink,
                (int64_t)r->rdev, r->target, (int64_t)r->version, r->id, r->birth);
}

int inode_kill(Core *c, InodeRow *r, GError **err)
{
    int rc = xattr_kill_all(c, r->id, err);
    if (rc < 0)
        return rc;
    if (r->birth <= c->max_snap)
        rc = db_x(c, err, "UPDATE inodes SET death=? WHERE id=? AND birth=?",
                  "iui", c->gen, r->id, r->birth);
    else
        rc = db_x(c, err, "DELETE FROM inodes WHERE id=? AND birth=?", "ui", r->id, r->birth);
    if (rc < 0)
        return rc;
    if (r->version)
        rc = version_release_if_unused(c, r->version, err);
    return rc;
}

void inode_row_clear(InodeRow *r)
{
    g_clear_pointer(&r->target, g_free);
}

void inode_to_stat(Core *c, int64_t view, const InodeRow *r, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino_make(view, r->id);
    st->st_mode = r->mode;
    st->st_nlink = r->nlink;
    st->st_uid = r->uid;
    st->st_gid = r->gid;
    st->st_rdev = r->rdev;
    st->st_size = (off_t)r->size;
    st->st_blksize = (blksize_t)c->cfg.block_size;
    st->st_blocks = (blkcnt_t)((r->size + 511) / 512);
    st->st_atim.tv_sec = r->atime / 1000000000;
    st->st_atim.tv_nsec = r->atime % 1000000000;
    st->st_mtim.tv_sec = r->mtime / 1000000000;
    st->st_mtim.tv_nsec = r->mtime % 1000000000;
    st->st_ctim.tv_sec = r->ctime / 1000000000;
    st->st_ctim.tv_nsec = r->ctime % 1000000000;
}

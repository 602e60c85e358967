/* catalog_xattr.c — extended attributes of the catalog with birth/death
 * generations. Called with Core.lock held. */
#include "core/core_private.h"

#include <errno.h>

int xattr_get(Core *c, int64_t view, uint64_t id, const char *name,
              GBytes **value, GError **err)
{
    sqlite3_stmt *s;
    if (view == 0)
        s = db_q(c, "SELECT value FROM xattrs WHERE ino=? AND name=? AND death=?",
                 "uti", id, name, (int64_t)CORE_INF);
    else
        s = db_q(c, "SELECT value FROM xattrs WHERE ino=? AND name=? AND birth<=? AND death>?",
                 "utii", id, name, view, view);
    if (!s)
        return db_fail(c, err, "xattr lookup");
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return core_fail(err, ENODATA, "%s: no such attribute", name);
    }
    *value = g_bytes_new(sqlite3_column_blob(s, 0), (gsize)sqlite3_column_bytes(s, 0));
    sqlite3_reset(s);
    return 0;
}

static int64_t live_birth(Core *c, uint64_t id, const char *name)
{
    sqlite3_stmt *s = db_q(c, "SELECT birth FROM xattrs WHERE ino=? AND name=? AND death=?",
                           "uti", id, name, (int64_t)CORE_INF);
    int64_t b = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        b = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    return b;
}

static int end_row(Core *c, uint64_t id, const char *name, int64_t birth, GError **err)
{
    if (birth <= c->max_snap)
        return db_x(c, err, "UPDATE xattrs SET death=? WHERE ino=? AND name=? AND birth=?",
                    "iuti", c->gen, id, name, birth);
    return db_x(c, err, "DELETE FROM xattrs WHERE ino=? AND name=? AND birth=?",
                "uti", id, name, birth);
}

int xattr_set(Core *c, uint64_t id, const char *name, const void *v, size_t len,
              GError **err)
{
    int64_t b = live_birth(c, id, name);
    if (b >= 0) {
        int rc = end_row(c, id, name, b, err);
        if (rc < 0)
            return rc;
    }
    int rc = db_x(c, err, "DELETE FROM xattrs WHERE ino=? AND name=? AND birth=?",
                  "uti", id, name, c->gen);
    if (rc < 0)
        return rc;
    return db_x(c, err, "INSERT INTO xattrs(ino, name, birth, death, value) VALUES(?,?,?,?,?)",
                "utiib", id, name, c->gen, (int64_t)CORE_INF, v, (int)len);
}

int xattr_remove(Core *c, uint64_t id, const char *name, GError **err)
{
    int64_t b = live_birth(c, id, name);
    if (b < 0)
        return core_fail(err, ENODATA, "%s: no such attribute", name);
    return end_row(c, id, name, b, err);
}

int xattr_list(Core *c, int64_t view, uint64_t id, GPtrArray *names, GError **err)
{
    sqlite3_stmt *s;
    if (view == 0)
        s = db_q(c, "SELECT name FROM xattrs WHERE ino=? AND death=? ORDER BY name",
                 "ui", id, (int64_t)CORE_INF);
    else
        s = db_q(c, "SELECT name FROM xattrs WHERE ino=? AND birth<=? AND death>? ORDER BY name",
                 "uii", id, view, view);
    if (!s)
        return db_fail(c, err, "xattr listing");
    while (sqlite3_step(s) == SQLITE_ROW)
        g_ptr_array_add(names, g_strdup((const char *)sqlite3_column_text(s, 0)));
    sqlite3_reset(s);
    return 0;
}

int xattr_kill_all(Core *c, uint64_t id, GError **err)
{
    int rc = db_x(c, err, "UPDATE xattrs SET death=? WHERE ino=? AND death=? AND birth<=?",
                  "iuii", c->gen, id, (int64_t)CORE_INF, c->max_snap);
    if (rc < 0)
        return rc;
    return db_x(c, err, "DELETE FROM xattrs WHERE ino=? AND death=?", "ui", id, (int64_t)CORE_INF);
}

/* catalog_dirent.c — directory entries of the catalog with birth/death
 * generations (an entry a snapshot sees is ended, not deleted). Called
 * with Core.lock held. */
#include "core/core_private.h"

#include <errno.h>

int dirent_get(Core *c, int64_t view, uint64_t parent, const char *name,
               uint64_t *child, GError **err)
{
    sqlite3_stmt *s;
    if (view == 0)
        s = db_q(c, "SELECT child FROM dirents WHERE parent=? AND name=? AND death=?",
                 "uti", parent, name, (int64_t)CORE_INF);
    else
        s = db_q(c, "SELECT child FROM dirents WHERE parent=? AND name=? AND birth<=? AND death>?",
                 "utii", parent, name, view, view);
    if (!s)
        return db_fail(c, err, "directory lookup");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *child = (uint64_t)sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return 0;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(c, err, "directory lookup");
    return core_fail(err, ENOENT, "%s: no such entry", name);
}

int dirent_add(Core *c, uint64_t parent, const char *name, uint64_t child,
               GError **err)
{
    /* A row born at G that died at G (removed and added again within one
     * generation) is simply replaced. */
    int rc = db_x(c, err, "DELETE FROM dirents WHERE parent=? AND name=? AND birth=?",
                  "uti", parent, name, c->gen);
    if (rc < 0)
        return rc;
    return db_x(c, err, "INSERT INTO dirents(parent, name, birth, death, child) VALUES(?,?,?,?,?)",
                "utiiu", parent, name, c->gen, (int64_t)CORE_INF, child);
}

int dirent_remove(Core *c, uint64_t parent, const char *name, GError **err)
{
    sqlite3_stmt *s = db_q(c, "SELECT birth FROM dirents WHERE parent=? AND name=? AND death=?",
                           "uti", parent, name, (int64_t)CORE_INF);
    if (!s)
        return db_fail(c, err, "directory lookup");
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return core_fail(err, ENOENT, "%s: no such entry", name);
    }
    int64_t birth = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (birth <= c->max_snap)
        return db_x(c, err, "UPDATE dirents SET death=? WHERE parent=? AND name=? AND birth=?",
                    "iuti", c->gen, parent, name, birth);
    return db_x(c, err, "DELETE FROM dirents WHERE parent=? AND name=? AND birth=?",
                "uti", parent, name, birth);
}

int dirent_list(Core *c, int64_t view, uint64_t parent, GPtrArray *names,
                GArray *children, GError **err)
{
    sqlite3_stmt *s;
    if (view == 0)
        s = db_q(c, "SELECT name, child FROM dirents WHERE parent=? AND death=? ORDER BY name",
                 "ui", parent, (int64_t)CORE_INF);
    else
        s = db_q(c, "SELECT name, child FROM dirents WHERE parent=? AND birth<=? AND death>? "
                 "ORDER BY name", "uii", parent, view, view);
    if (!s)
        return db_fail(c, err, "directory listing");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        g_ptr_array_add(names, g_strdup((const char *)sqlite3_column_text(s, 0)));
        uint64_t ch = (uint64_t)sqlite3_column_int64(s, 1);
        g_array_append_val(children, ch);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(c, err, "directory listing");
    return 0;
}

bool dirent_has_children(Core *c, uint64_t parent)
{
    sqlite3_stmt *s = db_q(c, "SELECT 1 FROM dirents WHERE parent=? AND death=? LIMIT 1",
                           "ui", parent, (int64_t)CORE_INF);
    bool any = s && sqlite3_step(s) == SQLITE_ROW;
    if (s)
        sqlite3_reset(s);
    return any;
}

/* snapshot.c — snapshots: creating one records (name, G) and increments
 * the generation G (O(1)); deleting one removes the rows that neither a
 * remaining snapshot nor the live tree can see, releases file versions
 * nobody references and marks unreferenced dumpfiles as garbage. Takes
 * Core.lock (the *_locked variants expect it held); both commit inside
 * their operation, so they first wait for a group commit's unlocked
 * fsyncs (db_commit_wait_idle) before opening it. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

static int check_name(const char *name, GError **err)
{
    if (!name || !*name)
        return core_fail(err, EINVAL, "snapshot name is empty");
    if (strlen(name) > 255)
        return core_fail(err, ENAMETOOLONG, "snapshot name is too long");
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return core_fail(err, EINVAL, "%s: not a valid snapshot name", name);
    return 0;
}

int core_snapshot_create_locked(Core *c, const char *name, GError **err)
{
    int rc = check_name(name, err);
    if (rc < 0)
        return rc;
    if (snapshot_find(c, name) >= 0)
        return core_fail(err, EEXIST, "snapshot %s already exists", name);
    if (c->gen >= (1LL << (63 - CORE_VIEW_SHIFT)) - 1)
        return core_fail(err, ENOSPC, "no more snapshot generations");
    rc = db_x(c, err, "INSERT INTO snapshots(name, gen, ctime) VALUES(?,?,?)", "tii",
              name, c->gen, core_now_ns() / 1000000000);
    if (rc < 0)
        return rc;
    c->max_snap = c->gen;
    c->gen++;
    rc = db_meta_set(c, "generation", c->gen, err);
    if (rc < 0)
        return rc;
    return db_commit(c, err);
}

static int collect_ids(Core *c, const char *sql, GArray *out)
{
    sqlite3_stmt *s = db_q(c, sql, NULL);
    if (!s)
        return -EIO;
    while (sqlite3_step(s) == SQLITE_ROW) {
        uint64_t v = (uint64_t)sqlite3_column_int64(s, 0);
        g_array_append_val(out, v);
    }
    sqlite3_reset(s);
    return 0;
}

int core_snapshot_delete_locked(Core *c, const char *name, GError **err)
{
    int rc = check_name(name, err);
    if (rc < 0)
        return rc;
    if (snapshot_find(c, name) < 0)
        return core_fail(err, ENOENT, "snapshot %s does not exist", name);
    if ((rc = db_x(c, err, "DELETE FROM snapshots WHERE name=?", "t", name)) < 0)
        return rc;
    sqlite3_stmt *s = db_q(c, "SELECT coalesce(max(gen), 0) FROM snapshots", NULL);
    if (s && sqlite3_step(s) == SQLITE_ROW)
        c->max_snap = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    static const char *const gc[] = {
        "DELETE FROM inodes WHERE death!=9223372036854775807 AND NOT EXISTS "
        "(SELECT 1 FROM snapshots s WHERE s.gen>=inodes.birth AND s.gen<inodes.death)",
        "DELETE FROM dirents WHERE death!=9223372036854775807 AND NOT EXISTS "
        "(SELECT 1 FROM snapshots s WHERE s.gen>=dirents.birth AND s.gen<dirents.death)",
        "DELETE FROM xattrs WHERE death!=9223372036854775807 AND NOT EXISTS "
        "(SELECT 1 FROM snapshots s WHERE s.gen>=xattrs.birth AND s.gen<xattrs.death)",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(gc); i++)
        if ((rc = db_x(c, err, gc[i], NULL)) < 0)
            return rc;
    g_autoptr(GArray) vs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    if (collect_ids(c, "SELECT id FROM versions v WHERE NOT EXISTS "
                    "(SELECT 1 FROM inodes i WHERE i.version=v.id)", vs) < 0)
        return db_fail(c, err, "snapshot garbage collection");
    for (guint i = 0; i < vs->len; i++)
        if ((rc = version_release_if_unused(c, g_array_index(vs, uint64_t, i), err)) < 0)
            return rc;
    if ((rc = dumpfile_mark_garbage(c, err)) < 0)
        return rc;
    return db_commit(c, err);
}

int core_snapshot_create(Core *c, const char *name, GError **err)
{
    gate_enter_snapshot(&c->gate);
    g_mutex_lock(&c->lock);
    /* It commits as its last step: wait for a group commit's unlocked
     * fsyncs now, not with the operation open. */
    db_commit_wait_idle(c);
    db_op_begin(c);
    int rc = db_op_end(c, core_snapshot_create_locked(c, name, err));
    g_mutex_unlock(&c->lock);
    gate_leave_snapshot(&c->gate);
    return rc;
}

int core_snapshot_delete(Core *c, const char *name, GError **err)
{
    g_mutex_lock(&c->lock);
    db_commit_wait_idle(c); /* as in core_snapshot_create */
    db_op_begin(c);
    int rc = db_op_end(c, core_snapshot_delete_locked(c, name, err));
    g_mutex_unlock(&c->lock);
    return rc;
}

static void snapinfo_free(gpointer p)
{
    CoreSnapshotInfo *i = p;
    g_free(i->name);
    g_free(i);
}

GPtrArray *core_snapshot_list(Core *c, GError **err)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(snapinfo_free);
    g_mutex_lock(&c->lock);
    sqlite3_stmt *s = db_q(c, "SELECT name, gen, ctime FROM snapshots ORDER BY gen", NULL);
    if (!s) {
        db_fail(c, err, "snapshot listing");
        g_mutex_unlock(&c->lock);
        g_ptr_array_unref(a);
        return NULL;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        CoreSnapshotInfo *i = g_new0(CoreSnapshotInfo, 1);
        i->name = g_strdup((const char *)sqlite3_column_text(s, 0));
        i->generation = (uint64_t)sqlite3_column_int64(s, 1);
        i->ctime = sqlite3_column_int64(s, 2);
        g_ptr_array_add(a, i);
    }
    sqlite3_reset(s);
    g_mutex_unlock(&c->lock);
    return a;
}

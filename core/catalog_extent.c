/* catalog_extent.c — file versions and their extents. An extent maps a
 * byte range of one file version to a dumpfile (on tape), to a cache
 * object (not on tape yet) or to lost data (after a recovery); no extent
 * is a hole. Versions shared with snapshots are never changed; the only
 * rewrite that touches them is the flush, which replaces "in object O"
 * by "in dumpfile D" without changing any byte. A cache object nothing
 * references any more is deleted only after the commit that removed the
 * references (db_delete_after_commit). Called with Core.lock held. */
#include "core/core_private.h"

#include <errno.h>

int version_new(Core *c, uint64_t ino, uint64_t *version, GError **err)
{
    uint64_t v = c->next_version++;
    int rc = db_x(c, err, "INSERT INTO versions(id, ino, birth) VALUES(?,?,?)", "uui",
                  v, ino, c->gen);
    if (rc < 0)
        return rc;
    rc = db_meta_set(c, "next_version", (int64_t)c->next_version, err);
    if (rc < 0)
        return rc;
    *version = v;
    return 0;
}

int64_t version_birth(Core *c, uint64_t version)
{
    sqlite3_stmt *s = db_q(c, "SELECT birth FROM versions WHERE id=?", "u", version);
    int64_t b = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        b = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    return b;
}

int extent_copy(Core *c, uint64_t from, uint64_t to, GError **err)
{
    return db_x(c, err, "INSERT INTO extents(version, off, len, kind, ref, ref_off) "
                "SELECT ?, off, len, kind, ref, ref_off FROM extents WHERE version=?",
                "uu", to, from);
}

static void ext_from(sqlite3_stmt *s, Extent *e)
{
    e->off = (uint64_t)sqlite3_column_int64(s, 0);
    e->len = (uint64_t)sqlite3_column_int64(s, 1);
    e->kind = sqlite3_column_int(s, 2);
    e->ref = (uint64_t)sqlite3_column_int64(s, 3);
    e->ref_off = (uint64_t)sqlite3_column_int64(s, 4);
}

GArray *extent_list(Core *c, uint64_t version, uint64_t off, uint64_t len)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(Extent));
    uint64_t end = len ? off + len : UINT64_MAX >> 1;
    sqlite3_stmt *s = db_q(c, "SELECT off, len, kind, ref, ref_off FROM extents "
                           "WHERE version=? AND off<=? ORDER BY off DESC LIMIT 1",
                           "ui", version, (int64_t)off);
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        Extent e;
        ext_from(s, &e);
        if (e.off + e.len > off)
            g_array_append_val(a, e);
    }
    if (s)
        sqlite3_reset(s);
    s = db_q(c, "SELECT off, len, kind, ref, ref_off FROM extents "
             "WHERE version=? AND off>? AND off<? ORDER BY off", "uii", version,
             (int64_t)off, (int64_t)end);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        Extent e;
        ext_from(s, &e);
        g_array_append_val(a, e);
    }
    if (s)
        sqlite3_reset(s);
    return a;
}

static int ext_insert(Core *c, uint64_t version, const Extent *e, GError **err)
{
    if (e->len == 0)
        return 0;
    return db_x(c, err, "INSERT INTO extents(version, off, len, kind, ref, ref_off) "
                "VALUES(?,?,?,?,?,?)", "uuuiuu", version, e->off, e->len,
                (int64_t)e->kind, e->ref, e->ref_off);
}

static int ext_delete(Core *c, uint64_t version, uint64_t off, GError **err)
{
    return db_x(c, err, "DELETE FROM extents WHERE version=? AND off=?", "uu", version, off);
}

/* Remove mappings of [off, end), keeping the parts outside. */
static int ext_punch(Core *c, uint64_t version, uint64_t off, uint64_t end, GError **err)
{
    g_autoptr(GArray) a = extent_list(c, version, off, end - off);
    for (guint i = 0; i < a->len; i++) {
        Extent e = g_array_index(a, Extent, i);
        int rc = ext_delete(c, version, e.off, err);
        if (rc < 0)
            return rc;
        if (e.off < off) {
            Extent l = e;
            l.len = off - e.off;
            if ((rc = ext_insert(c, version, &l, err)) < 0)
                return rc;
        }
        if (e.off + e.len > end) {
            Extent r = e;
            r.off = end;
            r.len = e.off + e.len - end;
            r.ref_off = e.ref_off + (end - e.off);
            if ((rc = ext_insert(c, version, &r, err)) < 0)
                return rc;
        }
    }
    return 0;
}

static bool ext_follows(const Extent *a, const Extent *b)
{
    return a->kind == b->kind && a->ref == b->ref && a->off + a->len == b->off &&
           a->ref_off + a->len == b->ref_off;
}

int extent_set(Core *c, uint64_t version, uint64_t off, uint64_t len, int kind,
               uint64_t ref, uint64_t ref_off, GError **err)
{
    if (len == 0)
        return 0;
    int rc = ext_punch(c, version, off, off + len, err);
    if (rc < 0)
        return rc;
    Extent n = { .off = off, .len = len, .kind = kind, .ref = ref, .ref_off = ref_off };
    /* Merge with the neighbours when they continue the same mapping. */
    if (off > 0) {
        g_autoptr(GArray) l = extent_list(c, version, off - 1, 1);
        if (l->len == 1) {
            Extent p = g_array_index(l, Extent, 0);
            if (ext_follows(&p, &n)) {
                if ((rc = ext_delete(c, version, p.off, err)) < 0)
                    return rc;
                n.off = p.off;
                n.ref_off = p.ref_off;
                n.len += p.len;
            }
        }
    }
    {
        g_autoptr(GArray) r = extent_list(c, version, n.off + n.len, 1);
        if (r->len == 1) {
            Extent q = g_array_index(r, Extent, 0);
            if (q.off == n.off + n.len && ext_follows(&n, &q)) {
                if ((rc = ext_delete(c, version, q.off, err)) < 0)
                    return rc;
                n.len += q.len;
            }
        }
    }
    return ext_insert(c, version, &n, err);
}

int extent_truncate(Core *c, uint64_t version, uint64_t size, GError **err)
{
    return ext_punch(c, version, size, UINT64_MAX >> 2, err);
}

typedef struct {
    uint64_t version;
    Extent e;
} VExtent;

int extent_rewrite_object(Core *c, uint64_t obj, uint64_t obj_off, uint64_t len,
                          uint64_t df, uint64_t df_off, GError **err)
{
    uint64_t end = obj_off + len;
    g_autoptr(GArray) hits = g_array_new(FALSE, FALSE, sizeof(VExtent));
    sqlite3_stmt *s = db_q(c, "SELECT off, len, kind, ref, ref_off, version FROM extents "
                           "WHERE kind=1 AND ref=? AND ref_off<? AND ref_off+len>?",
                           "uuu", obj, end, obj_off);
    if (!s)
        return db_fail(c, err, "extent rewrite");
    while (sqlite3_step(s) == SQLITE_ROW) {
        VExtent v;
        ext_from(s, &v.e);
        v.version = (uint64_t)sqlite3_column_int64(s, 5);
        g_array_append_val(hits, v);
    }
    sqlite3_reset(s);
    for (guint i = 0; i < hits->len; i++) {
        VExtent v = g_array_index(hits, VExtent, i);
        Extent e = v.e;
        int rc = ext_delete(c, v.version, e.off, err);
        if (rc < 0)
            return rc;
        uint64_t a = MAX(e.ref_off, obj_off), b = MIN(e.ref_off + e.len, end);
        if (a > e.ref_off) {
            Extent l = e;
            l.len = a - e.ref_off;
            if ((rc = ext_insert(c, v.version, &l, err)) < 0)
                return rc;
        }
        Extent m = { .off = e.off + (a - e.ref_off), .len = b - a, .kind = EXT_DUMP,
                     .ref = df, .ref_off = df_off + (a - obj_off) };
        if ((rc = ext_insert(c, v.version, &m, err)) < 0)
            return rc;
        if (b < e.ref_off + e.len) {
            Extent r = e;
            r.off = e.off + (b - e.ref_off);
            r.ref_off = b;
            r.len = e.ref_off + e.len - b;
            if ((rc = ext_insert(c, v.version, &r, err)) < 0)
                return rc;
        }
    }
    return 0;
}

bool object_referenced(Core *c, uint64_t obj)
{
    sqlite3_stmt *s = db_q(c, "SELECT 1 FROM versions WHERE id=?", "u", obj);
    bool used = s && sqlite3_step(s) == SQLITE_ROW;
    if (s)
        sqlite3_reset(s);
    if (used)
        return true;
    s = db_q(c, "SELECT 1 FROM extents WHERE kind=1 AND ref=? LIMIT 1", "u", obj);
    used = s && sqlite3_step(s) == SQLITE_ROW;
    if (s)
        sqlite3_reset(s);
    return used;
}

static void object_drop_if_unused(Core *c, uint64_t obj)
{
    if (object_referenced(c, obj))
        return;
    DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
    if (d && d->flushing)
        return; /* the flusher drops it when it is done */
    /* Not flushed any more; its bytes stay in the cache until the commit
     * that removes the last reference, since a crash before it reopens a
     * catalog that still points at them. */
    g_hash_table_remove(c->dirty, &obj);
    g_hash_table_remove(c->commit_objs, &obj);
    db_delete_after_commit(c, obj);
}

int version_release_if_unused(Core *c, uint64_t version, GError **err)
{
    sqlite3_stmt *s = db_q(c, "SELECT 1 FROM inodes WHERE version=? LIMIT 1", "u", version);
    bool used = s && sqlite3_step(s) == SQLITE_ROW;
    if (s)
        sqlite3_reset(s);
    if (used)
        return 0;
    g_autoptr(GArray) objs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    s = db_q(c, "SELECT DISTINCT ref FROM extents WHERE version=? AND kind=1", "u", version);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        uint64_t o = (uint64_t)sqlite3_column_int64(s, 0);
        g_array_append_val(objs, o);
    }
    if (s)
        sqlite3_reset(s);
    int rc = db_x(c, err, "DELETE FROM extents WHERE version=?", "u", version);
    if (rc < 0)
        return rc;
    rc = db_x(c, err, "DELETE FROM versions WHERE id=?", "u", version);
    if (rc < 0)
        return rc;
    g_array_append_val(objs, version);
    for (guint i = 0; i < objs->len; i++)
        object_drop_if_unused(c, g_array_index(objs, uint64_t, i));
    return 0;
}

int dumpfile_mark_garbage(Core *c, GError **err)
{
    return db_x(c, err, "UPDATE dumpfiles SET garbage=1 WHERE garbage=0 AND kind IN (1,2) AND "
                "NOT EXISTS (SELECT 1 FROM extents WHERE kind=0 AND ref=dumpfiles.id)", NULL);
}

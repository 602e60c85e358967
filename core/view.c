/* view.c — views of the catalog and their inode numbers: the live tree,
 * snapshot views ((generation << CORE_VIEW_SHIFT) | id) and the virtual
 * `.snapshots` directory; lookup counts and reaping of unlinked inodes
 * nobody uses any more. Called with Core.lock held. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

bool view_exists(Core *c, int64_t view)
{
    if (view == 0)
        return true;
    sqlite3_stmt *s = db_q(c, "SELECT 1 FROM snapshots WHERE gen=?", "i", view);
    bool ok = s && sqlite3_step(s) == SQLITE_ROW;
    if (s)
        sqlite3_reset(s);
    return ok;
}

int64_t snapshot_find(Core *c, const char *name)
{
    sqlite3_stmt *s = db_q(c, "SELECT gen FROM snapshots WHERE name=?", "t", name);
    int64_t g = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        g = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    return g;
}

void snapdir_stat(Core *c, struct stat *st)
{
    InodeRow root;
    memset(st, 0, sizeof *st);
    if (inode_get(c, 0, CORE_ROOT_INO, &root, NULL) == 0) {
        inode_to_stat(c, 0, &root, st);
        inode_row_clear(&root);
    }
    st->st_ino = CORE_SNAPDIR_INO;
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    st->st_size = 0;
    st->st_blocks = 0;
}

int snapshot_root_stat(Core *c, int64_t gen, struct stat *st, GError **err)
{
    InodeRow r;
    int rc = inode_get(c, gen, CORE_ROOT_INO, &r, err);
    if (rc < 0)
        return rc;
    inode_to_stat(c, gen, &r, st);
    inode_row_clear(&r);
    return 0;
}

void lookup_ref(Core *c, uint64_t ino, uint64_t n)
{
    uint64_t *v = g_hash_table_lookup(c->lookups, &ino);
    if (v) {
        *v += n;
        return;
    }
    g_hash_table_insert(c->lookups, g_memdup2(&ino, sizeof ino), g_memdup2(&n, sizeof n));
}

static uint64_t count_of(GHashTable *t, uint64_t key)
{
    uint64_t *v = g_hash_table_lookup(t, &key);
    return v ? *v : 0;
}

int inode_reap_if_unused(Core *c, uint64_t id, GError **err)
{
    if (count_of(c->lookups, id) || count_of(c->opens, id))
        return 0;
    InodeRow r;
    if (inode_get(c, 0, id, &r, NULL) < 0)
        return 0;
    int rc = 0;
    if (r.nlink == 0)
        rc = inode_kill(c, &r, err);
    inode_row_clear(&r);
    return rc;
}

void core_forget(Core *c, uint64_t ino, uint64_t nlookup)
{
    g_mutex_lock(&c->lock);
    uint64_t *v = g_hash_table_lookup(c->lookups, &ino);
    if (v) {
        *v = *v > nlookup ? *v - nlookup : 0;
        if (*v == 0) {
            g_hash_table_remove(c->lookups, &ino);
            if (ino_view(ino) == 0 && ino != CORE_SNAPDIR_INO) {
                GError *e = NULL;
                db_op_begin(c);
                if (db_op_end(c, inode_reap_if_unused(c, ino_id(ino), &e)) < 0) {
                    g_warning("forget: %s", e->message);
                    g_error_free(e);
                }
            }
        }
    }
    g_mutex_unlock(&c->lock);
}

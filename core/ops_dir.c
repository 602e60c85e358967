/* ops_dir.c — directory handles: opendir takes a snapshot of the entries
 * (so offsets stay valid while the directory changes), readdir returns
 * them with attributes, releasedir drops the handle. `.snapshots` lists
 * the snapshots; the root does not list `.snapshots`. Take Core.lock. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

int core_opendir(Core *c, uint64_t ino, uint64_t *fh, GError **err)
{
    if (!fh)
        return core_fail(err, EINVAL, "opendir without a handle pointer");
    int rc = 0;
    g_mutex_lock(&c->lock);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GArray *kids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_ptr_array_add(names, g_strdup("."));
    g_array_append_val(kids, ino);
    g_ptr_array_add(names, g_strdup(".."));
    g_array_append_val(kids, ino);
    if (ino == CORE_SNAPDIR_INO) {
        sqlite3_stmt *s = db_q(c, "SELECT name, gen FROM snapshots ORDER BY name", NULL);
        while (s && sqlite3_step(s) == SQLITE_ROW) {
            g_ptr_array_add(names, g_strdup((const char *)sqlite3_column_text(s, 0)));
            uint64_t root = ino_make(sqlite3_column_int64(s, 1), CORE_ROOT_INO);
            g_array_append_val(kids, root);
        }
        if (s)
            sqlite3_reset(s);
    } else {
        int64_t view = ino_view(ino);
        InodeRow r;
        if (!view_exists(c, view)) {
            rc = core_fail(err, ESTALE, "snapshot was deleted");
            goto fail;
        }
        if ((rc = inode_get(c, view, ino_id(ino), &r, err)) < 0)
            goto fail;
        bool dir = S_ISDIR(r.mode);
        inode_row_clear(&r);
        if (!dir) {
            rc = core_fail(err, ENOTDIR, "not a directory");
            goto fail;
        }
        guint first = kids->len;
        if ((rc = dirent_list(c, view, ino_id(ino), names, kids, err)) < 0)
            goto fail;
        for (guint i = first; i < kids->len; i++)
            g_array_index(kids, uint64_t, i) = ino_make(view, g_array_index(kids, uint64_t, i));
    }
    CoreHandle *h = g_new0(CoreHandle, 1);
    h->ino = ino;
    h->dir = true;
    h->names = names;
    h->children = kids;
    uint64_t id = c->next_fh++;
    g_hash_table_insert(c->handles, g_memdup2(&id, sizeof id), h);
    *fh = id;
    g_mutex_unlock(&c->lock);
    return 0;
fail:
    g_ptr_array_unref(names);
    g_array_unref(kids);
    g_mutex_unlock(&c->lock);
    return rc;
}

static int child_stat(Core *c, uint64_t ino, struct stat *st)
{
    if (ino == CORE_SNAPDIR_INO) {
        snapdir_stat(c, st);
        return 0;
    }
    InodeRow r;
    int rc = inode_get(c, ino_view(ino), ino_id(ino), &r, NULL);
    if (rc < 0)
        return rc;
    inode_to_stat(c, ino_view(ino), &r, st);
    inode_row_clear(&r);
    return 0;
}

int core_readdir(Core *c, uint64_t ino, uint64_t fh, off_t off, bool plus, CoreDirFill fill,
                 void *ctx, GError **err)
{
    if (!fill)
        return core_fail(err, EINVAL, "readdir without a fill function");
    g_mutex_lock(&c->lock);
    CoreHandle *h = g_hash_table_lookup(c->handles, &fh);
    int rc = 0;
    if (!h || !h->dir || h->ino != ino) {
        rc = core_fail(err, EBADF, "not an open directory");
        goto out;
    }
    if (off < 0) {
        rc = core_fail(err, EINVAL, "negative directory offset");
        goto out;
    }
    for (guint i = (guint)off; i < h->names->len; i++) {
        struct stat st;
        uint64_t child = g_array_index(h->children, uint64_t, i);
        if (child_stat(c, child, &st) < 0)
            continue; /* removed since opendir */
        const char *name = h->names->pdata[i];
        /* fill may call back into nothing of ours; it only copies. */
        if (fill(ctx, name, &st, (off_t)i + 1))
            break;
        if (plus && i >= 2)
            lookup_ref(c, st.st_ino, 1);
    }
out:
    g_mutex_unlock(&c->lock);
    return rc;
}

int core_releasedir(Core *c, uint64_t ino, uint64_t fh, GError **err)
{
    g_mutex_lock(&c->lock);
    CoreHandle *h = g_hash_table_lookup(c->handles, &fh);
    int rc = 0;
    if (!h || !h->dir || h->ino != ino)
        rc = core_fail(err, EBADF, "not an open directory");
    else
        g_hash_table_remove(c->handles, &fh);
    g_mutex_unlock(&c->lock);
    return rc;
}

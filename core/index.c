/* index.c — what an index is: the next index sequence, a dumpfile id, and
 * a copy of the catalog exactly as one commit left it, in STORE/tmp, which
 * the flusher then writes to tape as a dumpfile of kind CORE_DUMP_INDEX
 * with generation = the sequence. Reading indexes back is recover.c's job.
 *
 * Locks: index_prepare takes Core.lock to assign the sequence and id,
 * commit them and open a read-only snapshot connection pinned at that
 * commit (db_snapshot_open), then releases it for the copy
 * (db_snapshot_copy): operations and commits go on meanwhile, and the copy
 * still holds that commit, no later one. */
#include "core/core_private.h"

#include <errno.h>
#include <glib/gstdio.h>

int index_prepare(Core *c, uint64_t *seq, uint64_t *id, char **path, GError **err)
{
    sqlite3 *snap = NULL;
    int64_t seen = -1;
    g_mutex_lock(&c->lock);
    *seq = ++c->index_seq;
    *id = c->next_dumpfile++;
    int r = db_meta_set(c, "index_seq", (int64_t)*seq, err);
    if (r == 0)
        r = db_meta_set(c, "next_dumpfile", (int64_t)c->next_dumpfile, err);
    if (r == 0)
        r = db_commit(c, err);
    if (r == 0)
        r = db_snapshot_open(c, &snap, &seen, err);
    c->index_commits = c->commits;
    g_mutex_unlock(&c->lock);
    /* The snapshot is the commit above (it records this index's sequence
     * and a next_dumpfile past its id), not an older or newer state. */
    if (r == 0 && seen != (int64_t)*seq)
        r = core_fail(err, EIO, "index %" G_GUINT64_FORMAT ": the catalog snapshot "
                      "records index %" G_GINT64_FORMAT, *seq, seen);
    *path = g_strdup_printf("%s/tmp/index-%" G_GUINT64_FORMAT ".db", c->dir, *seq);
    g_unlink(*path);
    if (r == 0) {
        core_test_point(c, CORE_TEST_INDEX_COPY);
        r = db_snapshot_copy(snap, *path, err);
    }
    db_snapshot_close(snap);
    if (r < 0) {
        g_unlink(*path);
        g_clear_pointer(path, g_free);
    }
    return r;
}

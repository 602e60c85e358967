/* index.c — what an index is: the next index sequence, a dumpfile id, and
 * a consistent copy of the catalog (sqlite3_backup right after a commit)
 * in STORE/tmp, which the flusher then writes to tape as a dumpfile of
 * kind CORE_DUMP_INDEX with generation = the sequence. Reading indexes
 * back is recover.c's job. Called with Core.lock held. */
#include "core/core_private.h"

#include <errno.h>
#include <glib/gstdio.h>

int index_prepare_locked(Core *c, uint64_t *seq, uint64_t *id, char **path, GError **err)
{
    *seq = ++c->index_seq;
    *id = c->next_dumpfile++;
    int r = db_meta_set(c, "index_seq", (int64_t)*seq, err);
    if (r == 0)
        r = db_meta_set(c, "next_dumpfile", (int64_t)c->next_dumpfile, err);
    *path = g_strdup_printf("%s/tmp/index-%" G_GUINT64_FORMAT ".db", c->dir, *seq);
    g_unlink(*path);
    if (r == 0)
        r = db_backup_to(c, *path, err);
    if (r < 0) {
        g_unlink(*path);
        g_clear_pointer(path, g_free);
    }
    return r;
}

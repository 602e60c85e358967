/* status.c — figures about a store (status) and the list of dumpfiles
 * with their parts (dumps). Take Core.lock for catalog reads. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

static int64_t one_int(Core *c, const char *sql)
{
    sqlite3_stmt *s = db_q(c, sql, NULL);
    int64_t v = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    return v;
}

int core_status(Core *c, CoreStatus *st, GError **err)
{
    if (!st)
        return core_fail(err, EINVAL, "status without a result buffer");
    memset(st, 0, sizeof *st);
    g_strlcpy(st->store_id, c->cfg.store_id, sizeof st->store_id);
    CacheStats cs;
    cache_stats(c->cache, &cs);
    st->dirty_bytes = cs.dirty_bytes;
    st->cache_bytes = cs.dirty_bytes + cs.clean_bytes;
    st->cache_size_limit = cs.size_limit;
    st->cache_hits = cs.hits;
    st->cache_misses = cs.misses;
    GArray *vols = tape_library_volumes(c->lib);
    for (guint i = 0; vols && i < vols->len; i++) {
        TapeVolumeInfo *v = &g_array_index(vols, TapeVolumeInfo, i);
        st->volumes++;
        st->volumes_full += v->full;
        st->volume_bytes_used += v->used;
        st->volume_bytes_total += v->capacity;
    }
    if (vols)
        g_array_unref(vols);
    g_mutex_lock(&c->lock);
    /* Data replaced or deleted since the last look is garbage on tape. */
    dumpfile_mark_garbage(c, NULL);
    st->generation = (uint64_t)c->gen;
    st->snapshots = (uint64_t)one_int(c, "SELECT count(*) FROM snapshots");
    st->inodes = (uint64_t)one_int(c, "SELECT count(*) FROM inodes WHERE death=9223372036854775807");
    st->dumpfiles = (uint64_t)one_int(c, "SELECT count(*) FROM dumpfiles");
    st->dumpfile_bytes = (uint64_t)one_int(c, "SELECT coalesce(sum(length), 0) FROM dumpfiles");
    st->garbage_dumpfiles = (uint64_t)one_int(c, "SELECT count(*) FROM dumpfiles WHERE garbage=1");
    st->garbage_bytes = (uint64_t)one_int(c, "SELECT coalesce(sum(length), 0) FROM dumpfiles WHERE garbage=1");
    st->parts = (uint64_t)one_int(c, "SELECT count(*) FROM parts");
    st->bytes_to_tape = c->bytes_to_tape;
    st->taper_seconds = c->taper_seconds;
    st->bytes_recalled = c->bytes_recalled;
    st->index_sequence = c->index_seq;
    st->last_error = c->last_error;
    g_strlcpy(st->last_error_msg, c->last_error_msg, sizeof st->last_error_msg);
    g_mutex_unlock(&c->lock);
    return 0;
}

static void dump_free(gpointer p)
{
    CoreDumpInfo *d = p;
    if (d->parts)
        g_array_unref(d->parts);
    g_free(d);
}

GPtrArray *core_dumps(Core *c, GError **err)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(dump_free);
    g_mutex_lock(&c->lock);
    GHashTable *byid = g_hash_table_new(g_int64_hash, g_int64_equal);
    sqlite3_stmt *s = db_q(c, "SELECT id, kind, generation, length, nfiles, garbage FROM dumpfiles "
                           "ORDER BY id", NULL);
    if (!s) {
        db_fail(c, err, "dumpfile listing");
        g_mutex_unlock(&c->lock);
        g_hash_table_destroy(byid);
        g_ptr_array_unref(a);
        return NULL;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        CoreDumpInfo *d = g_new0(CoreDumpInfo, 1);
        d->id = (uint64_t)sqlite3_column_int64(s, 0);
        d->kind = (uint32_t)sqlite3_column_int64(s, 1);
        d->generation = (uint64_t)sqlite3_column_int64(s, 2);
        d->length = (uint64_t)sqlite3_column_int64(s, 3);
        d->nfiles = (uint32_t)sqlite3_column_int64(s, 4);
        d->garbage = sqlite3_column_int(s, 5) != 0;
        d->parts = g_array_new(FALSE, FALSE, sizeof(CorePartInfo));
        g_ptr_array_add(a, d);
        g_hash_table_insert(byid, &d->id, d);
    }
    sqlite3_reset(s);
    s = db_q(c, "SELECT dumpfile, partnum, off, len, volume, fileno FROM parts "
             "ORDER BY dumpfile, off", NULL);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        uint64_t df = (uint64_t)sqlite3_column_int64(s, 0);
        CoreDumpInfo *d = g_hash_table_lookup(byid, &df);
        if (!d)
            continue;
        CorePartInfo p = { .partnum = (uint32_t)sqlite3_column_int64(s, 1),
                           .offset = (uint64_t)sqlite3_column_int64(s, 2),
                           .length = (uint64_t)sqlite3_column_int64(s, 3),
                           .fileno = (uint32_t)sqlite3_column_int64(s, 5) };
        g_strlcpy(p.volume, (const char *)sqlite3_column_text(s, 4), sizeof p.volume);
        g_array_append_val(d->parts, p);
    }
    if (s)
        sqlite3_reset(s);
    g_mutex_unlock(&c->lock);
    g_hash_table_destroy(byid);
    return a;
}

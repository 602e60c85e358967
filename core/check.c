/* check.c — the catalog consistency check: entries point at live inodes,
 * link counts match entries, every inode is reachable, extents of a
 * version do not overlap and point at dumpfiles whose parts cover them or
 * at cache objects that exist and hold every block they cover as dirty;
 * the same for every snapshot view. With `deep`, every part is read back,
 * verified and compared with its catalog row. Takes Core.lock for the
 * catalog checks; deep verification reads tape without it. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

static void problem(GPtrArray *out, int *n, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void problem(GPtrArray *out, int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_warning("check: %s", msg);
    if (out)
        g_ptr_array_add(out, msg);
    else
        g_free(msg);
    (*n)++;
}

/* Rows of one view; `view` 0 = live. */
static void check_view(Core *c, int64_t view, GPtrArray *out, int *n)
{
    const char *vis = view == 0 ? "death=9223372036854775807" : "birth<=?1 AND death>?1";
    g_autofree char *q1 = g_strdup_printf(
        "SELECT d.parent, d.name, d.child FROM dirents d WHERE %s AND NOT EXISTS "
        "(SELECT 1 FROM inodes i WHERE i.id=d.child AND %s)", view == 0 ? "d.death=9223372036854775807" :
        "d.birth<=?1 AND d.death>?1", view == 0 ? "i.death=9223372036854775807" : "i.birth<=?1 AND i.death>?1");
    g_autofree char *q2 = g_strdup_printf(
        "SELECT i.id, i.mode, i.nlink, "
        "(SELECT count(*) FROM dirents d WHERE d.child=i.id AND %s), "
        "(SELECT count(*) FROM dirents d JOIN inodes j ON j.id=d.child AND %s "
        "  WHERE d.parent=i.id AND %s AND (j.mode & 61440)=16384), i.version "
        "FROM inodes i WHERE %s",
        view == 0 ? "d.death=9223372036854775807" : "d.birth<=?1 AND d.death>?1",
        view == 0 ? "j.death=9223372036854775807" : "j.birth<=?1 AND j.death>?1",
        view == 0 ? "d.death=9223372036854775807" : "d.birth<=?1 AND d.death>?1",
        view == 0 ? "i.death=9223372036854775807" : "i.birth<=?1 AND i.death>?1");
    (void)vis;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db, q1, -1, &s, NULL) == SQLITE_OK) {
        if (view)
            sqlite3_bind_int64(s, 1, view);
        while (sqlite3_step(s) == SQLITE_ROW)
            problem(out, n, "view %" G_GINT64_FORMAT ": entry %lld/%s points at missing inode %lld",
                    view, (long long)sqlite3_column_int64(s, 0),
                    (const char *)sqlite3_column_text(s, 1), (long long)sqlite3_column_int64(s, 2));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(c->db, q2, -1, &s, NULL) == SQLITE_OK) {
        if (view)
            sqlite3_bind_int64(s, 1, view);
        while (sqlite3_step(s) == SQLITE_ROW) {
            uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);
            uint32_t mode = (uint32_t)sqlite3_column_int64(s, 1);
            int64_t nlink = sqlite3_column_int64(s, 2), links = sqlite3_column_int64(s, 3);
            int64_t subdirs = sqlite3_column_int64(s, 4);
            uint64_t version = (uint64_t)sqlite3_column_int64(s, 5);
            if (S_ISDIR(mode)) {
                if (nlink != 2 + subdirs)
                    problem(out, n, "view %" G_GINT64_FORMAT ": directory %" G_GUINT64_FORMAT
                            " has nlink %lld, expected %lld", view, id, (long long)nlink,
                            (long long)(2 + subdirs));
                if (id != CORE_ROOT_INO && links != 1)
                    problem(out, n, "view %" G_GINT64_FORMAT ": directory %" G_GUINT64_FORMAT
                            " has %lld entries", view, id, (long long)links);
            } else {
                bool orphan_ok = view == 0 && nlink == 0 && links == 0;
                if (nlink != links && !orphan_ok)
                    problem(out, n, "view %" G_GINT64_FORMAT ": inode %" G_GUINT64_FORMAT
                            " has nlink %lld but %lld entries", view, id, (long long)nlink,
                            (long long)links);
            }
            if (S_ISREG(mode)) {
                sqlite3_stmt *v = NULL;
                sqlite3_prepare_v2(c->db, "SELECT 1 FROM versions WHERE id=?", -1, &v, NULL);
                sqlite3_bind_int64(v, 1, (int64_t)version);
                if (sqlite3_step(v) != SQLITE_ROW)
                    problem(out, n, "view %" G_GINT64_FORMAT ": file %" G_GUINT64_FORMAT
                            " has no version %" G_GUINT64_FORMAT, view, id, version);
                sqlite3_finalize(v);
            }
        }
    }
    sqlite3_finalize(s);
}

static void check_extents(Core *c, GPtrArray *out, int *n)
{
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(c->db, "SELECT version, off, len, kind, ref, ref_off FROM extents "
                       "ORDER BY version, off", -1, &s, NULL);
    uint64_t pv = 0, pend = 0;
    g_autoptr(GHashTable) objs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        uint64_t v = (uint64_t)sqlite3_column_int64(s, 0);
        uint64_t off = (uint64_t)sqlite3_column_int64(s, 1);
        uint64_t len = (uint64_t)sqlite3_column_int64(s, 2);
        int kind = sqlite3_column_int(s, 3);
        uint64_t ref = (uint64_t)sqlite3_column_int64(s, 4);
        uint64_t roff = (uint64_t)sqlite3_column_int64(s, 5);
        if (v == pv && off < pend)
            problem(out, n, "version %" G_GUINT64_FORMAT ": extents overlap at %" G_GUINT64_FORMAT, v, off);
        if (len == 0)
            problem(out, n, "version %" G_GUINT64_FORMAT ": empty extent at %" G_GUINT64_FORMAT, v, off);
        pv = v;
        pend = off + len;
        if (kind == EXT_DUMP) {
            sqlite3_stmt *p = NULL;
            sqlite3_prepare_v2(c->db, "SELECT off, len FROM parts WHERE dumpfile=? ORDER BY off",
                               -1, &p, NULL);
            sqlite3_bind_int64(p, 1, (int64_t)ref);
            uint64_t at = 0;
            while (sqlite3_step(p) == SQLITE_ROW) {
                uint64_t po = (uint64_t)sqlite3_column_int64(p, 0);
                if (po > at)
                    break;
                at = MAX(at, po + (uint64_t)sqlite3_column_int64(p, 1));
            }
            sqlite3_finalize(p);
            if (at < roff + len)
                problem(out, n, "version %" G_GUINT64_FORMAT ": extent at %" G_GUINT64_FORMAT
                        " needs dumpfile %" G_GUINT64_FORMAT " up to %" G_GUINT64_FORMAT
                        " but its parts end at %" G_GUINT64_FORMAT, v, off, ref, roff + len, at);
        } else if (kind == EXT_OBJECT) {
            bool exists = true;
            if (!g_hash_table_contains(objs, &ref)) {
                exists = cache_object_exists(c->cache, ref);
                if (!exists)
                    problem(out, n, "version %" G_GUINT64_FORMAT ": extent at %" G_GUINT64_FORMAT
                            " points at missing cache object %" G_GUINT64_FORMAT, v, off, ref);
                else
                    g_hash_table_add(objs, g_memdup2(&ref, sizeof ref));
            }
            /* Bytes only in the cache: every block the extent covers must
             * be there and dirty (clean ones may be evicted, and data is
             * marked clean only once its extents point at tape). */
            uint64_t bs = cache_block_size(c->cache);
            for (uint64_t b = roff / bs * bs; exists && b < roff + len; b += bs) {
                int st = cache_block_state(c->cache, ref, b, NULL);
                if (st != CACHE_BLOCK_DIRTY) {
                    problem(out, n, "version %" G_GUINT64_FORMAT ": extent at %" G_GUINT64_FORMAT
                            " needs block %" G_GUINT64_FORMAT " of cache object %" G_GUINT64_FORMAT
                            " but it is %s", v, off, b / bs, ref,
                            st == CACHE_BLOCK_CLEAN ? "clean" : "absent");
                    break;
                }
            }
        }
    }
    sqlite3_finalize(s);
}

int core_check(Core *c, bool deep, GPtrArray *problems, GError **err)
{
    int n = 0;
    g_mutex_lock(&c->lock);
    check_view(c, 0, problems, &n);
    g_autoptr(GArray) gens = g_array_new(FALSE, FALSE, sizeof(int64_t));
    sqlite3_stmt *s = db_q(c, "SELECT gen FROM snapshots ORDER BY gen", NULL);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        int64_t g = sqlite3_column_int64(s, 0);
        g_array_append_val(gens, g);
    }
    if (s)
        sqlite3_reset(s);
    for (guint i = 0; i < gens->len; i++)
        check_view(c, g_array_index(gens, int64_t, i), problems, &n);
    check_extents(c, problems, &n);
    sqlite3_stmt *r = NULL;
    sqlite3_prepare_v2(c->db, "SELECT 1 FROM inodes WHERE id=1 AND death=9223372036854775807",
                       -1, &r, NULL);
    if (sqlite3_step(r) != SQLITE_ROW)
        problem(problems, &n, "the root directory is missing");
    sqlite3_finalize(r);
    typedef struct {
        char volume[TAPE_VOLUME_NAME_MAX];
        uint32_t fileno;
        uint64_t df, off, len;
        uint32_t partnum;
        guint8 xxh[16];
        bool has_xxh;
    } PartRef;
    g_autoptr(GArray) prefs = g_array_new(FALSE, FALSE, sizeof(PartRef));
    if (deep) {
        s = db_q(c, "SELECT volume, fileno, dumpfile, partnum, off, len, xxh128 FROM parts "
                 "ORDER BY volume, fileno", NULL);
        while (s && sqlite3_step(s) == SQLITE_ROW) {
            PartRef p = { .fileno = (uint32_t)sqlite3_column_int64(s, 1),
                          .df = (uint64_t)sqlite3_column_int64(s, 2),
                          .partnum = (uint32_t)sqlite3_column_int64(s, 3),
                          .off = (uint64_t)sqlite3_column_int64(s, 4),
                          .len = (uint64_t)sqlite3_column_int64(s, 5) };
            if (sqlite3_column_bytes(s, 6) == 16) {
                memcpy(p.xxh, sqlite3_column_blob(s, 6), 16);
                p.has_xxh = true;
            }
            g_strlcpy(p.volume, (const char *)sqlite3_column_text(s, 0), sizeof p.volume);
            g_array_append_val(prefs, p);
        }
        if (s)
            sqlite3_reset(s);
    }
    g_mutex_unlock(&c->lock);
    for (guint i = 0; i < prefs->len; i++) {
        PartRef *p = &g_array_index(prefs, PartRef, i);
        GError *e = NULL;
        TapePart *tp = tape_part_open(c->lib, p->volume, p->fileno, &e);
        if (tp && tape_part_verify(tp, &e) == 0) {
            /* Intact, but is it the part the catalog row names? */
            const TapePartHeader *h = tape_part_header(tp);
            const TapePartTrailer *t = tape_part_trailer(tp);
            if (h->dumpfile_id != p->df || h->partnum != p->partnum || h->offset != p->off ||
                t->length != p->len || (p->has_xxh && memcmp(t->payload_xxh128, p->xxh, 16)))
                problem(problems, &n, "dumpfile %" G_GUINT64_FORMAT " part %u: volume %s file %u "
                        "holds dumpfile %" G_GUINT64_FORMAT " part %u at %" G_GUINT64_FORMAT
                        " (%" G_GUINT64_FORMAT " bytes), not the part the catalog names", p->df,
                        p->partnum, p->volume, p->fileno, h->dumpfile_id, h->partnum, h->offset,
                        t->length);
            tape_part_close(tp);
            continue;
        }
        if (tp)
            tape_part_close(tp);
        problem(problems, &n, "dumpfile %" G_GUINT64_FORMAT ": volume %s file %u: %s", p->df,
                p->volume, p->fileno, e ? e->message : "unreadable");
        g_clear_error(&e);
    }
    if (n)
        return core_fail(err, EUCLEAN, "%d consistency problem(s) found", n);
    return 0;
}

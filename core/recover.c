/* recover.c — rebuilding a store from its volumes alone: scan every tape
 * file of every volume for index parts, pick the newest index whose parts
 * are all present, restore it as the new store's catalog (same store id,
 * the library where it is), and list the files whose data was only in the
 * old cache (their ranges become "lost": reading them fails with EIO).
 * Runs single-threaded before any Core exists; no locks. */
#include "core/core_private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint64_t df, gen, off, len;
    uint32_t partnum, fileno;
    bool last;
    char volume[TAPE_VOLUME_NAME_MAX];
} IndexPart;

static gint ip_cmp(gconstpointer a, gconstpointer b)
{
    const IndexPart *x = a, *y = b;
    if (x->df != y->df)
        return (x->df > y->df) - (x->df < y->df);
    return (x->off > y->off) - (x->off < y->off);
}

static int scan_indexes(TapeLibrary *lib, GArray *out)
{
    GArray *vols = tape_library_volumes(lib);
    for (guint v = 0; vols && v < vols->len; v++) {
        TapeVolumeInfo *vi = &g_array_index(vols, TapeVolumeInfo, v);
        for (uint32_t f = 0; f < vi->nfiles; f++) {
            TapePart *p = tape_part_open(lib, vi->name, f, NULL);
            if (!p)
                continue; /* a failed or damaged part */
            const TapePartHeader *h = tape_part_header(p);
            const TapePartTrailer *t = tape_part_trailer(p);
            if (h->kind == CORE_DUMP_INDEX) {
                IndexPart ip = { .df = h->dumpfile_id, .gen = h->generation, .off = h->offset,
                                 .len = t->length, .partnum = h->partnum, .fileno = f,
                                 .last = t->last };
                g_strlcpy(ip.volume, vi->name, sizeof ip.volume);
                g_array_append_val(out, ip);
            }
            tape_part_close(p);
        }
    }
    if (vols)
        g_array_unref(vols);
    g_array_sort(out, ip_cmp);
    return 0;
}

/* Newest complete index: returns its first part's index in `parts` and
 * the number of parts, or -1. */
static int pick_newest(GArray *parts, guint *count)
{
    int best = -1;
    uint64_t best_gen = 0;
    for (guint i = 0; i < parts->len;) {
        IndexPart *first = &g_array_index(parts, IndexPart, i);
        guint j = i;
        uint64_t at = 0;
        bool ok = true, last = false;
        while (j < parts->len && g_array_index(parts, IndexPart, j).df == first->df) {
            IndexPart *p = &g_array_index(parts, IndexPart, j);
            if (p->off == at && !last) {
                at += p->len;
                last = p->last;
            } else if (p->off < at) {
                /* a duplicate of a part retried elsewhere: ignore */
            } else {
                ok = false;
            }
            j++;
        }
        if (ok && last && (best < 0 || first->gen > best_gen)) {
            best = (int)i;
            best_gen = first->gen;
            *count = j - i;
        }
        i = j;
    }
    return best;
}

static int copy_index(TapeLibrary *lib, GArray *parts, int first, guint count, const char *dst,
                      GError **err)
{
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return core_fail(err, errno, "%s: %s", dst, g_strerror(errno));
    g_autofree guint8 *buf = g_malloc(1 << 20);
    uint64_t at = 0;
    int r = 0;
    for (guint i = 0; i < count && r == 0; i++) {
        IndexPart *ip = &g_array_index(parts, IndexPart, (guint)first + i);
        if (ip->off < at)
            continue;
        GError *e = NULL;
        TapePart *p = tape_part_open(lib, ip->volume, ip->fileno, &e);
        if (!p) {
            r = core_fail_from(err, e, EIO, "reading the index");
            g_clear_error(&e);
            break;
        }
        for (uint64_t done = 0; done < ip->len && r == 0;) {
            size_t n = (size_t)MIN((uint64_t)(1 << 20), ip->len - done);
            if (tape_part_read(p, done, buf, n, &e) < 0) {
                r = core_fail_from(err, e, EIO, "reading the index");
                g_clear_error(&e);
            } else if (pwrite(fd, buf, n, (off_t)(ip->off + done)) != (ssize_t)n) {
                r = core_fail(err, errno ? errno : EIO, "%s: %s", dst, g_strerror(errno));
            }
            done += n;
        }
        tape_part_close(p);
        at = ip->off + ip->len;
    }
    if (r == 0 && fsync(fd) != 0)
        r = core_fail(err, errno, "%s: %s", dst, g_strerror(errno));
    close(fd);
    return r;
}

/* Path of inode `id` as view `view` sees it (for the lost-file list). */
static char *view_path(sqlite3 *db, int64_t view, uint64_t id)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(db, view == 0
                       ? "SELECT parent, name FROM dirents WHERE child=?1 AND death=?2 LIMIT 1"
                       : "SELECT parent, name FROM dirents WHERE child=?1 AND birth<=?2 AND death>?2 LIMIT 1",
                       -1, &s, NULL);
    for (int depth = 0; id != CORE_ROOT_INO && depth < 4096; depth++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, (int64_t)id);
        sqlite3_bind_int64(s, 2, view == 0 ? CORE_INF : view);
        if (sqlite3_step(s) != SQLITE_ROW)
            break;
        id = (uint64_t)sqlite3_column_int64(s, 0);
        g_ptr_array_insert(parts, 0, g_strdup((const char *)sqlite3_column_text(s, 1)));
    }
    sqlite3_finalize(s);
    g_ptr_array_add(parts, NULL);
    char *joined = g_strjoinv("/", (char **)parts->pdata);
    g_ptr_array_unref(parts);
    char *out = g_strconcat("/", joined, NULL);
    g_free(joined);
    return out;
}

static int mark_lost(sqlite3 *db, GPtrArray *lost, GError **err)
{
    /* Every inode row (live or in a snapshot) whose version has data that
     * was only in the old cache. */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT i.id, i.birth, i.death FROM inodes i WHERE "
                           "i.version IN (SELECT version FROM extents WHERE kind=1) "
                           "ORDER BY i.id, i.birth", -1, &s, NULL) != SQLITE_OK)
        return core_fail(err, EIO, "recovered catalog: %s", sqlite3_errmsg(db));
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    while (sqlite3_step(s) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);
        int64_t birth = sqlite3_column_int64(s, 1), death = sqlite3_column_int64(s, 2);
        char *p = NULL;
        if (death == CORE_INF) {
            p = view_path(db, 0, id);
        } else {
            sqlite3_stmt *q = NULL;
            sqlite3_prepare_v2(db, "SELECT name, gen FROM snapshots WHERE gen>=?1 AND gen<?2 "
                               "ORDER BY gen LIMIT 1", -1, &q, NULL);
            sqlite3_bind_int64(q, 1, birth);
            sqlite3_bind_int64(q, 2, death);
            if (sqlite3_step(q) == SQLITE_ROW) {
                g_autofree char *in = view_path(db, sqlite3_column_int64(q, 1), id);
                p = g_strdup_printf("/%s/%s%s", CORE_SNAPDIR_NAME,
                                    (const char *)sqlite3_column_text(q, 0), in);
            }
            sqlite3_finalize(q);
        }
        if (p && !g_hash_table_contains(seen, p)) {
            if (lost)
                g_ptr_array_add(lost, g_strdup(p));
            g_hash_table_add(seen, p);
        } else {
            g_free(p);
        }
    }
    sqlite3_finalize(s);
    char *msg = NULL;
    if (sqlite3_exec(db, "UPDATE extents SET kind=2 WHERE kind=1", NULL, NULL, &msg) != SQLITE_OK) {
        int r = core_fail(err, EIO, "recovered catalog: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

int core_recover(const char *library_dir, const char *new_store_dir, GPtrArray *lost,
                 GError **err)
{
    if (!library_dir || !new_store_dir)
        return core_fail(err, EINVAL, "recover needs a library and a new store directory");
    GDir *d = g_dir_open(new_store_dir, 0, NULL);
    if (d) {
        bool empty = g_dir_read_name(d) == NULL;
        g_dir_close(d);
        if (!empty)
            return core_fail(err, EEXIST, "%s: not empty (recover into a new directory)",
                             new_store_dir);
    }
    GError *e = NULL;
    TapeLibrary *lib = tape_library_open(library_dir, NULL, &e);
    if (!lib) {
        int r = core_fail_from(err, e, ENOENT, "opening the library");
        g_clear_error(&e);
        return r;
    }
    g_autoptr(GArray) parts = g_array_new(FALSE, FALSE, sizeof(IndexPart));
    scan_indexes(lib, parts);
    guint count = 0;
    int first = pick_newest(parts, &count);
    if (first < 0) {
        tape_library_close(lib);
        return core_fail(err, ENOENT, "%s: no complete index on any volume", library_dir);
    }
    int r = 0;
    if (g_mkdir_with_parents(new_store_dir, 0755) != 0) {
        r = core_fail(err, errno, "%s: %s", new_store_dir, g_strerror(errno));
        tape_library_close(lib);
        return r;
    }
    g_autofree char *tmpdir = g_build_filename(new_store_dir, "tmp", NULL);
    g_mkdir_with_parents(tmpdir, 0700);
    g_autofree char *cat = g_build_filename(new_store_dir, "catalog.db", NULL);
    r = copy_index(lib, parts, first, count, cat, err);
    StoreConfig cfg = { .version = 1 };
    g_strlcpy(cfg.store_id, tape_library_store_id(lib), sizeof cfg.store_id);
    cfg.block_size = tape_library_block_size(lib);
    GArray *vols = tape_library_volumes(lib);
    cfg.volumes = vols ? vols->len : 0;
    if (vols && vols->len)
        cfg.volume_size = g_array_index(vols, TapeVolumeInfo, 0).capacity;
    if (vols)
        g_array_unref(vols);
    tape_library_close(lib);
    sqlite3 *db = NULL;
    if (r == 0 && sqlite3_open(cat, &db) != SQLITE_OK)
        r = core_fail(err, EIO, "recovered catalog: %s", sqlite3_errmsg(db));
    if (r == 0) {
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='part_size'", -1, &s, NULL)
                == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
            cfg.part_size = (uint64_t)sqlite3_column_int64(s, 0);
        else
            r = core_fail(err, EINVAL, "recovered index is not a tapefs catalog");
        sqlite3_finalize(s);
    }
    if (r == 0)
        r = mark_lost(db, lost, err);
    if (db)
        sqlite3_close(db);
    if (r == 0) {
        cfg.library = g_canonicalize_filename(library_dir, NULL);
        g_autofree char *cfgpath = g_build_filename(new_store_dir, "config", NULL);
        r = config_write(cfgpath, &cfg, err);
        config_clear(&cfg);
    }
    return r;
}

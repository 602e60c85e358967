/* recover.c — rebuilding a store from its volumes alone: scan every tape
 * file of every volume for index parts, pick the newest index whose parts
 * are all present, restore it as the new store's catalog (same store id,
 * the library where it is), and list the files whose data was only in the
 * old cache (their ranges become "lost": reading them fails with EIO).
 * Files that manifests written after that index name are then brought
 * forward (recover_manifest.c).
 * Id counters (next dumpfile id, index sequence) are advanced past every
 * dumpfile and index found on any volume, so nothing on tape is reused.
 * The store is built in a hidden sibling directory and renamed into place
 * at the end, so a failed recovery leaves nothing behind.
 * Runs single-threaded before any Core exists; no locks. */
#include "core/core_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static gint part_cmp(gconstpointer a, gconstpointer b)
{
    const RecoverPart *x = a, *y = b;
    if (x->df != y->df)
        return (x->df > y->df) - (x->df < y->df);
    if (x->gen != y->gen)
        return (x->gen > y->gen) - (x->gen < y->gen);
    return (x->off > y->off) - (x->off < y->off);
}

/* Scan every tape file: every finished part goes to `all`, index parts
 * also to `indexes` (both sorted); *max_df and *max_gen get the largest
 * dumpfile id (any kind) and index generation on any volume. */
static int scan_parts(TapeLibrary *lib, GArray *all, GArray *indexes, uint64_t *max_df,
                      uint64_t *max_gen)
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
            *max_df = MAX(*max_df, h->dumpfile_id);
            RecoverPart rp = { .df = h->dumpfile_id, .gen = h->generation, .off = h->offset,
                               .len = t->length, .partnum = h->partnum, .fileno = f,
                               .kind = h->kind, .last = t->last };
            memcpy(rp.xxh128, t->payload_xxh128, sizeof rp.xxh128);
            g_strlcpy(rp.volume, vi->name, sizeof rp.volume);
            g_array_append_val(all, rp);
            if (h->kind == CORE_DUMP_INDEX) {
                *max_gen = MAX(*max_gen, h->generation);
                g_array_append_val(indexes, rp);
            }
            tape_part_close(p);
        }
    }
    if (vols)
        g_array_unref(vols);
    g_array_sort(all, part_cmp);
    g_array_sort(indexes, part_cmp);
    return 0;
}

static gint cand_newest_first(gconstpointer a, gconstpointer b)
{
    const RecoverDumpfile *x = a, *y = b;
    if (x->gen != y->gen)
        return (x->gen < y->gen) - (x->gen > y->gen);
    return (x->df < y->df) - (x->df > y->df);
}

GArray *recover_complete_dumpfiles(GArray *parts)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(RecoverDumpfile));
    for (guint i = 0; i < parts->len;) {
        RecoverPart *first = &g_array_index(parts, RecoverPart, i);
        guint j = i;
        uint64_t at = 0;
        bool ok = true, last = false;
        while (j < parts->len && g_array_index(parts, RecoverPart, j).df == first->df &&
               g_array_index(parts, RecoverPart, j).gen == first->gen) {
            RecoverPart *p = &g_array_index(parts, RecoverPart, j);
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
        if (ok && last) {
            RecoverDumpfile c = { .first = i, .count = j - i, .df = first->df, .gen = first->gen };
            g_array_append_val(out, c);
        }
        i = j;
    }
    return out;
}

/* Every complete index, newest first. */
static GArray *complete_indexes(GArray *parts)
{
    GArray *out = recover_complete_dumpfiles(parts);
    g_array_sort(out, cand_newest_first);
    return out;
}

/* Where the bytes of a dumpfile go: a file or a memory buffer. */
typedef struct {
    int fd;
    const char *path;
    GByteArray *mem;
} Sink;

static int read_dumpfile(TapeLibrary *lib, GArray *parts, guint first, guint count, Sink *to,
                         GError **err)
{
    g_autofree guint8 *buf = g_malloc(1 << 20);
    uint64_t at = 0;
    int r = 0;
    for (guint i = 0; i < count && r == 0; i++) {
        RecoverPart *ip = &g_array_index(parts, RecoverPart, first + i);
        if (ip->off < at)
            continue;
        GError *e = NULL;
        TapePart *p = tape_part_open(lib, ip->volume, ip->fileno, &e);
        if (!p || tape_part_verify(p, &e) < 0) {
            r = core_fail(err, EIO, "part %u on %s file %u: %s", ip->partnum, ip->volume,
                          ip->fileno, e ? e->message : "unreadable");
            g_clear_error(&e);
            if (p)
                tape_part_close(p);
            break;
        }
        for (uint64_t done = 0; done < ip->len && r == 0;) {
            size_t n = (size_t)MIN((uint64_t)(1 << 20), ip->len - done);
            uint64_t to_off = ip->off + done;
            if (tape_part_read(p, done, buf, n, &e) < 0) {
                r = core_fail(err, EIO, "part %u on %s file %u: %s", ip->partnum, ip->volume,
                              ip->fileno, e ? e->message : "unreadable");
                g_clear_error(&e);
            } else if (to->mem) {
                if (to->mem->len < to_off + n)
                    g_byte_array_set_size(to->mem, (guint)(to_off + n));
                memcpy(to->mem->data + to_off, buf, n);
            } else if (pwrite(to->fd, buf, n, (off_t)to_off) != (ssize_t)n) {
                r = core_fail(err, errno ? errno : EIO, "%s: %s", to->path, g_strerror(errno));
            }
            done += n;
        }
        tape_part_close(p);
        at = ip->off + ip->len;
    }
    return r;
}

int recover_read_dumpfile(TapeLibrary *lib, GArray *parts, guint first, guint count,
                          GByteArray *out, GError **err)
{
    Sink to = { .fd = -1, .mem = out };
    return read_dumpfile(lib, parts, first, count, &to, err);
}

/* Copy one index to `dst`, every part verified first. */
static int copy_index(TapeLibrary *lib, GArray *parts, guint first, guint count, const char *dst,
                      GError **err)
{
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return core_fail(err, errno, "%s: %s", dst, g_strerror(errno));
    Sink to = { .fd = fd, .path = dst };
    int r = read_dumpfile(lib, parts, first, count, &to, err);
    if (r == 0 && fsync(fd) != 0)
        r = core_fail(err, errno, "%s: %s", dst, g_strerror(errno));
    close(fd);
    return r;
}

/* Does `path` open as an intact tapefs catalog? Sets *part_size. */
static int check_catalog(const char *path, uint64_t *part_size, GError **err)
{
    sqlite3 *db = NULL;
    int r = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        r = core_fail(err, EIO, "not a database: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return r;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), "ok"))
        r = core_fail(err, EIO, "damaged database: %s",
                      s && sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
                                                     : sqlite3_errmsg(db));
    sqlite3_finalize(s);
    s = NULL;
    if (r == 0) {
        if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='part_size'", -1, &s, NULL)
                == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
            *part_size = (uint64_t)sqlite3_column_int64(s, 0);
        else
            r = core_fail(err, EINVAL, "not a tapefs catalog");
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
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

/* The index holds the counters as they were when it was taken; dumpfiles
 * and indexes written after it are on tape too. New ids and sequence
 * numbers must come after everything any volume holds. */
static int advance_counters(sqlite3 *db, uint64_t max_df, uint64_t max_gen, GError **err)
{
    sqlite3_stmt *s = NULL;
    int r = 0;
    if (sqlite3_prepare_v2(db, "UPDATE meta SET value=max(value, ?2) WHERE key=?1", -1, &s,
                           NULL) != SQLITE_OK)
        return core_fail(err, EIO, "recovered catalog: %s", sqlite3_errmsg(db));
    const struct {
        const char *key;
        uint64_t v;
    } kv[] = { { "next_dumpfile", max_df + 1 }, { "index_seq", max_gen } };
    for (size_t i = 0; i < G_N_ELEMENTS(kv) && r == 0; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, kv[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)kv[i].v);
        if (sqlite3_step(s) != SQLITE_DONE)
            r = core_fail(err, EIO, "recovered catalog: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    return r;
}

/* Remove a staging directory recursively (it holds only what
 * build_store made: no symlinks). */
static void remove_tree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (d) {
        const char *n;
        while ((n = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(dir, n, NULL);
            if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
                remove_tree(p);
            else
                g_unlink(p);
        }
        g_dir_close(d);
    }
    g_rmdir(dir);
}

void recover_note(GPtrArray *notes, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_message("recover: %s", m);
    if (notes)
        g_ptr_array_add(notes, m);
    else
        g_free(m);
}

/* Build the store in `stage`: the first index (newest first) that copies,
 * verifies and opens as a catalog, the configuration, tmp/. */
static int build_store(TapeLibrary *lib, const char *library_dir, const char *stage,
                       GArray *all, GArray *parts, uint64_t max_df, uint64_t max_gen,
                       GPtrArray *lost, GPtrArray *notes, GError **err)
{
    g_autoptr(GArray) cands = complete_indexes(parts);
    if (cands->len == 0)
        return core_fail(err, ENOENT, "%s: no complete index on any volume", library_dir);
    g_autofree char *tmpdir = g_build_filename(stage, "tmp", NULL);
    if (g_mkdir_with_parents(tmpdir, 0700) != 0)
        return core_fail(err, errno, "%s: %s", tmpdir, g_strerror(errno));
    g_autofree char *cat = g_build_filename(stage, "catalog.db", NULL);
    StoreConfig cfg = { .version = 1 };
    int r = -ENOENT;
    guint used = 0;
    for (guint i = 0; i < cands->len; i++) {
        RecoverDumpfile *ic = &g_array_index(cands, RecoverDumpfile, i);
        GError *e = NULL;
        r = copy_index(lib, parts, ic->first, ic->count, cat, &e);
        if (r == 0)
            r = check_catalog(cat, &cfg.part_size, &e);
        if (r == 0) {
            used = i;
            break;
        }
        recover_note(notes, "index %" G_GUINT64_FORMAT " (dumpfile %" G_GUINT64_FORMAT ") is unusable: %s",
             ic->gen, ic->df, e ? e->message : g_strerror(-r));
        g_clear_error(&e);
        g_unlink(cat);
    }
    if (r < 0)
        return core_fail(err, EIO, "%s: none of the %u complete indexes is readable",
                         library_dir, cands->len);
    RecoverDumpfile *ic = &g_array_index(cands, RecoverDumpfile, used);
    if (used > 0)
        recover_note(notes, "recovered from the older index %" G_GUINT64_FORMAT " (dumpfile %"
             G_GUINT64_FORMAT "): changes recorded only in newer indexes are missing",
             ic->gen, ic->df);
    g_strlcpy(cfg.store_id, tape_library_store_id(lib), sizeof cfg.store_id);
    cfg.block_size = tape_library_block_size(lib);
    GArray *vols = tape_library_volumes(lib);
    cfg.volumes = vols ? vols->len : 0;
    if (vols && vols->len)
        cfg.volume_size = g_array_index(vols, TapeVolumeInfo, 0).capacity;
    if (vols)
        g_array_unref(vols);
    sqlite3 *db = NULL;
    if (sqlite3_open(cat, &db) != SQLITE_OK)
        r = core_fail(err, EIO, "recovered catalog: %s", sqlite3_errmsg(db));
    /* Files named by manifests newer than the index first: a file whose
     * data the index had only in the cache may be whole again. */
    g_autoptr(GPtrArray) lost_after = g_ptr_array_new_with_free_func(g_free);
    if (r == 0)
        r = recover_after_index(db, lib, all, ic->df, lost_after, notes, err);
    if (r == 0)
        r = mark_lost(db, lost, err);
    for (guint i = 0; r == 0 && lost && i < lost_after->len; i++) {
        bool dup = false;
        for (guint j = 0; j < lost->len && !dup; j++)
            dup = strcmp(lost->pdata[j], lost_after->pdata[i]) == 0;
        if (!dup)
            g_ptr_array_add(lost, g_strdup(lost_after->pdata[i]));
    }
    if (r == 0)
        r = advance_counters(db, max_df, max_gen, err);
    sqlite3_close(db);
    if (r == 0) {
        cfg.library = g_canonicalize_filename(library_dir, NULL);
        g_autofree char *cfgpath = g_build_filename(stage, "config", NULL);
        r = config_write(cfgpath, &cfg, err);
        config_clear(&cfg);
    }
    return r;
}

int core_recover_notes(const char *library_dir, const char *new_store_dir, GPtrArray *lost,
                       GPtrArray *notes, GError **err)
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
    g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(RecoverPart));
    g_autoptr(GArray) parts = g_array_new(FALSE, FALSE, sizeof(RecoverPart));
    uint64_t max_df = 0, max_gen = 0;
    scan_parts(lib, all, parts, &max_df, &max_gen);
    /* The store is built next to its final place and renamed there at the
     * end: a failed recovery leaves nothing behind. */
    g_autofree char *canon = g_canonicalize_filename(new_store_dir, NULL);
    g_autofree char *parent = g_path_get_dirname(canon);
    g_autofree char *base = g_path_get_basename(canon);
    int r = 0;
    if (g_mkdir_with_parents(parent, 0755) != 0) {
        r = core_fail(err, errno, "%s: %s", parent, g_strerror(errno));
        tape_library_close(lib);
        return r;
    }
    g_autofree char *stage = g_strdup_printf("%s/.%s.recover-XXXXXX", parent, base);
    if (!g_mkdtemp_full(stage, 0755)) {
        r = core_fail(err, errno, "%s: %s", parent, g_strerror(errno));
        tape_library_close(lib);
        return r;
    }
    r = build_store(lib, library_dir, stage, all, parts, max_df, max_gen, lost, notes, err);
    tape_library_close(lib);
    if (r == 0 && rename(stage, canon) != 0)
        r = core_fail(err, errno, "%s: %s", new_store_dir, g_strerror(errno));
    if (r < 0)
        remove_tree(stage);
    return r;
}

int core_recover(const char *library_dir, const char *new_store_dir, GPtrArray *lost,
                 GError **err)
{
    return core_recover_notes(library_dir, new_store_dir, lost, NULL, err);
}

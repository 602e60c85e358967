/* manifest.c — manifests: small dumpfiles (kind CORE_DUMP_MANIFEST) that
 * make the data on tape attributable to files without the catalog. After
 * each flush round the flusher calls manifest_write_round; when data
 * dumpfiles were recorded since the newest manifest, it writes
 * one manifest naming every live file version whose extents point into
 * them: inode, version, its live paths, size, mode, owner, times and all
 * its extents (dumpfile id and offset, or "not on tape"). recover.c reads
 * them back (recover_manifest.c) to bring forward files changed after the
 * newest index. This file also owns the manifest's byte format (encode,
 * decode; docs/FORMATS.md).
 *
 * Cost: the dumpfiles table is walked newest first only down to the
 * newest manifest, and only the versions with extents in those
 * dumpfiles are read, so a manifest costs what the round flushed, not
 * what the catalog holds. Ordering relies on dumpfile ids being taken in
 * the order the dumpfiles are written (one flusher thread).
 *
 * Locks: called on the flusher thread with no lock held. Core.lock is
 * taken to read the catalog and take a dumpfile id, then released while
 * the manifest streams through the flusher's taper (which the flusher
 * does not use meanwhile), then taken again to record the dumpfile and
 * its parts as one operation. Parts reported by the taper's device thread
 * go to a local list under its own mutex (a leaf). */
#include "core/core_private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define MF_MAGIC "TAPEFSMF"
#define MF_VERSION 1u
#define MF_HEADER 64u
#define MF_ENTRY 72u
#define MF_EXTENT 40u
#define MF_PATH_MAX 65536u

/* ---- format ------------------------------------------------------------ */

static void put32(GByteArray *b, uint32_t v)
{
    guint8 x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (guint8)(v >> (8 * i));
    g_byte_array_append(b, x, 4);
}

static void put64(GByteArray *b, uint64_t v)
{
    guint8 x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (guint8)(v >> (8 * i));
    g_byte_array_append(b, x, 8);
}

static uint64_t get64(const guint8 *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get32(const guint8 *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void manifest_entry_free(gpointer p)
{
    ManifestEntry *e = p;
    if (!e)
        return;
    g_ptr_array_unref(e->paths);
    g_array_unref(e->extents);
    g_free(e);
}

static ManifestEntry *entry_new(void)
{
    ManifestEntry *e = g_new0(ManifestEntry, 1);
    e->paths = g_ptr_array_new_with_free_func(g_free);
    e->extents = g_array_new(FALSE, FALSE, sizeof(ManifestExtent));
    return e;
}

void manifest_free(Manifest *m)
{
    if (!m)
        return;
    g_ptr_array_unref(m->entries);
    g_free(m);
}

GByteArray *manifest_encode(const Manifest *m)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)MF_MAGIC, 8);
    put32(b, MF_VERSION);
    put32(b, MF_HEADER);
    put64(b, 0); /* payload length, filled in below */
    put64(b, m->dumpfile);
    put64(b, m->index_seq);
    put64(b, m->generation);
    put32(b, m->entries->len);
    put32(b, 0);
    put64(b, (uint64_t)m->ctime);
    for (guint i = 0; i < m->entries->len; i++) {
        const ManifestEntry *e = m->entries->pdata[i];
        put64(b, e->ino);
        put64(b, e->version);
        put64(b, e->size);
        put32(b, e->mode);
        put32(b, e->uid);
        put32(b, e->gid);
        put32(b, e->paths->len);
        put64(b, (uint64_t)e->atime);
        put64(b, (uint64_t)e->mtime);
        put64(b, (uint64_t)e->ctime);
        put32(b, e->extents->len);
        put32(b, 0);
        for (guint j = 0; j < e->paths->len; j++) {
            const char *p = e->paths->pdata[j];
            uint32_t n = (uint32_t)strlen(p);
            put32(b, n);
            g_byte_array_append(b, (const guint8 *)p, n);
        }
        for (guint j = 0; j < e->extents->len; j++) {
            const ManifestExtent *x = &g_array_index(e->extents, ManifestExtent, j);
            put64(b, x->off);
            put64(b, x->len);
            put32(b, x->kind);
            put32(b, 0);
            put64(b, x->dumpfile);
            put64(b, x->df_off);
        }
    }
    uint64_t total = b->len + 8;
    for (int i = 0; i < 8; i++)
        b->data[16 + i] = (guint8)(total >> (8 * i));
    put64(b, XXH3_64bits(b->data, b->len));
    return b;
}

/* A path as the manifest may hold it: absolute, no empty, "." or ".."
 * component, no NUL. */
static bool path_ok(const char *p, size_t n)
{
    if (n < 2 || p[0] != '/' || memchr(p, 0, n))
        return false;
    for (size_t i = 1, start = 1; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        size_t len = i - start;
        if (len == 0 || (len == 1 && p[start] == '.') ||
            (len == 2 && p[start] == '.' && p[start + 1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

Manifest *manifest_decode(const void *buf, size_t len, GError **err)
{
    const guint8 *p = buf, *end = p + len;
    if (len < MF_HEADER + 8 || memcmp(p, MF_MAGIC, 8) != 0) {
        core_fail(err, EBADMSG, "not a manifest");
        return NULL;
    }
    if (get32(p + 8) != MF_VERSION) {
        core_fail(err, ENOTSUP, "manifest version %u is not known", get32(p + 8));
        return NULL;
    }
    if (get32(p + 12) != MF_HEADER || get64(p + 16) != len) {
        core_fail(err, EBADMSG, "manifest header does not match its length (%zu bytes)", len);
        return NULL;
    }
    if (XXH3_64bits(p, len - 8) != get64(end - 8)) {
        core_fail(err, EBADMSG, "manifest checksum mismatch");
        return NULL;
    }
    end -= 8;
    Manifest *m = g_new0(Manifest, 1);
    m->entries = g_ptr_array_new_with_free_func(manifest_entry_free);
    m->dumpfile = get64(p + 24);
    m->index_seq = get64(p + 32);
    m->generation = get64(p + 40);
    uint32_t n = get32(p + 48);
    m->ctime = (int64_t)get64(p + 56);
    const guint8 *q = p + MF_HEADER;
    const char *bad = NULL;
    for (uint32_t i = 0; i < n && !bad; i++) {
        if ((size_t)(end - q) < MF_ENTRY) {
            bad = "entry past the end";
            break;
        }
        ManifestEntry *e = entry_new();
        g_ptr_array_add(m->entries, e);
        e->ino = get64(q);
        e->version = get64(q + 8);
        e->size = get64(q + 16);
        e->mode = get32(q + 24);
        e->uid = get32(q + 28);
        e->gid = get32(q + 32);
        uint32_t npaths = get32(q + 36);
        e->atime = (int64_t)get64(q + 40);
        e->mtime = (int64_t)get64(q + 48);
        e->ctime = (int64_t)get64(q + 56);
        uint32_t next = get32(q + 64);
        q += MF_ENTRY;
        if (!S_ISREG(e->mode) || npaths == 0) {
            bad = "entry is not a named regular file";
            break;
        }
        for (uint32_t j = 0; j < npaths && !bad; j++) {
            uint32_t pl = (size_t)(end - q) >= 4 ? get32(q) : UINT32_MAX;
            if (pl > MF_PATH_MAX || (size_t)(end - q) < 4 + (size_t)pl ||
                !path_ok((const char *)q + 4, pl)) {
                bad = "bad path";
                break;
            }
            g_ptr_array_add(e->paths, g_strndup((const char *)q + 4, pl));
            q += 4 + pl;
        }
        uint64_t at = 0;
        for (uint32_t j = 0; j < next && !bad; j++) {
            if ((size_t)(end - q) < MF_EXTENT) {
                bad = "extent past the end";
                break;
            }
            ManifestExtent x = { .off = get64(q), .len = get64(q + 8), .kind = get32(q + 16),
                                 .dumpfile = get64(q + 24), .df_off = get64(q + 32) };
            q += MF_EXTENT;
            if (x.len == 0 || x.off < at || x.off + x.len < x.off || x.off + x.len > e->size ||
                (x.kind != MANIFEST_ON_TAPE && x.kind != MANIFEST_NOT_ON_TAPE) ||
                x.df_off + x.len < x.df_off)
                bad = "bad extent";
            at = x.off + x.len;
            g_array_append_val(e->extents, x);
        }
    }
    if (!bad && q != end)
        bad = "bytes after the last entry";
    if (bad) {
        core_fail(err, EBADMSG, "manifest of dumpfile %" G_GUINT64_FORMAT ": %s", m->dumpfile, bad);
        manifest_free(m);
        return NULL;
    }
    return m;
}

/* ---- building one after a flush round (Core.lock held) ------------------ */

/* Data dumpfiles recorded after the newest manifest. */
static GArray *unnamed_dumpfiles(Core *c)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    sqlite3_stmt *s = db_q(c, "SELECT id, kind FROM dumpfiles ORDER BY id DESC", NULL);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        int kind = sqlite3_column_int(s, 1);
        /* Back to the newest manifest, not the newest index: when a
         * manifest could not be written, the next one names its round too,
         * so a recovery from an older index still finds those files. */
        if (kind == CORE_DUMP_MANIFEST)
            break;
        uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);
        if (kind == CORE_DUMP_FILE || kind == CORE_DUMP_BUNDLE)
            g_array_append_val(out, id);
    }
    if (s)
        sqlite3_reset(s);
    return out;
}

/* Path of live directory entry (parent, name), walking up to the root. */
static char *live_path(Core *c, uint64_t parent, const char *name)
{
    GString *p = g_string_new(name);
    g_string_prepend_c(p, '/');
    for (int depth = 0; parent != CORE_ROOT_INO && depth < 4096; depth++) {
        sqlite3_stmt *s = db_q(c, "SELECT parent, name FROM dirents WHERE child=? AND death=? "
                               "LIMIT 1", "ui", parent, CORE_INF);
        if (!s || sqlite3_step(s) != SQLITE_ROW) {
            if (s)
                sqlite3_reset(s);
            g_string_free(p, TRUE);
            return NULL; /* not reachable from the root */
        }
        parent = (uint64_t)sqlite3_column_int64(s, 0);
        g_string_prepend(p, (const char *)sqlite3_column_text(s, 1));
        g_string_prepend_c(p, '/');
        sqlite3_reset(s);
    }
    return g_string_free(p, FALSE);
}

/* The live file using `version`, with its paths and extents; NULL when no
 * live, named inode uses it (a snapshot's or a released version). */
static ManifestEntry *describe_version(Core *c, uint64_t version)
{
    sqlite3_stmt *s = db_q(c, "SELECT id FROM inodes WHERE version=? AND death=? LIMIT 1", "ui",
                           version, CORE_INF);
    int64_t id = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    if (s)
        sqlite3_reset(s);
    InodeRow r = { 0 };
    if (id < 0 || inode_get(c, 0, (uint64_t)id, &r, NULL) < 0)
        return NULL;
    ManifestEntry *e = entry_new();
    e->version = version;
    e->ino = r.id;
    e->mode = r.mode;
    e->uid = r.uid;
    e->gid = r.gid;
    e->size = r.size;
    e->atime = r.atime;
    e->mtime = r.mtime;
    e->ctime = r.ctime;
    inode_row_clear(&r);
    g_autoptr(GArray) parents = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    s = db_q(c, "SELECT parent, name FROM dirents WHERE child=? AND death=? ORDER BY parent, name",
             "ui", e->ino, CORE_INF);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        uint64_t parent = (uint64_t)sqlite3_column_int64(s, 0);
        g_array_append_val(parents, parent);
        g_ptr_array_add(names, g_strdup((const char *)sqlite3_column_text(s, 1)));
    }
    if (s)
        sqlite3_reset(s);
    for (guint i = 0; i < parents->len; i++) {
        char *p = live_path(c, g_array_index(parents, uint64_t, i), names->pdata[i]);
        if (p)
            g_ptr_array_add(e->paths, p);
    }
    s = db_q(c, "SELECT off, len, kind, ref, ref_off FROM extents WHERE version=? ORDER BY off",
             "u", version);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        ManifestExtent x = { .off = (uint64_t)sqlite3_column_int64(s, 0),
                             .len = (uint64_t)sqlite3_column_int64(s, 1) };
        if (sqlite3_column_int(s, 2) == EXT_DUMP) {
            x.kind = MANIFEST_ON_TAPE;
            x.dumpfile = (uint64_t)sqlite3_column_int64(s, 3);
            x.df_off = (uint64_t)sqlite3_column_int64(s, 4);
        } else {
            x.kind = MANIFEST_NOT_ON_TAPE;
        }
        /* Bytes past the size are never read. */
        if (x.off >= e->size)
            continue;
        x.len = MIN(x.len, e->size - x.off);
        g_array_append_val(e->extents, x);
    }
    if (s)
        sqlite3_reset(s);
    if (e->paths->len == 0) {
        manifest_entry_free(e); /* unlinked but still open: no name to give */
        return NULL;
    }
    return e;
}

/* The manifest of what was flushed since the newest manifest,
 * with a new dumpfile id; NULL when there is nothing to name. */
static Manifest *build_locked(Core *c, GError **err)
{
    g_autoptr(GArray) dfs = unnamed_dumpfiles(c);
    if (dfs->len == 0)
        return NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_autoptr(GArray) versions = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (guint i = dfs->len; i-- > 0;) {
        sqlite3_stmt *s = db_q(c, "SELECT DISTINCT version FROM extents WHERE kind=0 AND ref=?",
                               "u", g_array_index(dfs, uint64_t, i));
        while (s && sqlite3_step(s) == SQLITE_ROW) {
            uint64_t v = (uint64_t)sqlite3_column_int64(s, 0);
            if (g_hash_table_contains(seen, &v))
                continue;
            g_hash_table_add(seen, g_memdup2(&v, sizeof v));
            g_array_append_val(versions, v);
        }
        if (s)
            sqlite3_reset(s);
    }
    Manifest *m = g_new0(Manifest, 1);
    m->entries = g_ptr_array_new_with_free_func(manifest_entry_free);
    for (guint i = 0; i < versions->len; i++) {
        ManifestEntry *e = describe_version(c, g_array_index(versions, uint64_t, i));
        if (e)
            g_ptr_array_add(m->entries, e);
    }
    m->index_seq = c->index_seq;
    m->generation = (uint64_t)c->gen;
    m->ctime = core_now_ns();
    m->dumpfile = c->next_dumpfile++;
    if (db_meta_set(c, "next_dumpfile", (int64_t)c->next_dumpfile, err) < 0) {
        manifest_free(m);
        return NULL;
    }
    return m;
}

/* ---- writing it ------------------------------------------------------- */

typedef struct {
    GMutex lock;
    GArray *done; /* TapePartDone, successful ones */
} PartList;

static void on_part(const TapePartDone *p, void *user)
{
    PartList *pl = user;
    if (!p->successful)
        return;
    g_mutex_lock(&pl->lock);
    g_array_append_val(pl->done, *p);
    g_mutex_unlock(&pl->lock);
}

/* Stream `bytes` as dumpfile `id`; `path` holds the same bytes, for the
 * taper to write a part again on the next volume. No lock held. */
static int stream(TapeTaper *t, uint64_t id, uint64_t gen, const char *path, GByteArray *bytes,
                  PartList *pl, GError **err)
{
    GError *e = NULL;
    int r = tape_taper_start(t, id, CORE_DUMP_MANIFEST, gen, on_part, pl, &e);
    if (r == 0) {
        tape_taper_add_slice(t, path, 0, bytes->len);
        r = tape_taper_push(t, bytes->data, bytes->len, &e);
        if (r == 0)
            r = tape_taper_finish(t, &e);
        else
            tape_taper_cancel(t);
    }
    if (r < 0) {
        r = core_fail_from(err, e, -r, "writing a manifest");
        g_clear_error(&e);
    }
    return r;
}

/* Insert the manifest's dumpfile row and its parts; Core.lock held. */
static int record_locked(Core *c, const Manifest *m, uint64_t len, PartList *pl, GError **err)
{
    db_op_begin(c);
    int r = db_x(c, err, "INSERT INTO dumpfiles(id, kind, generation, length, nfiles, ctime, garbage) "
                 "VALUES(?,?,?,?,?,?,0)", "uiiuii", m->dumpfile, (int64_t)CORE_DUMP_MANIFEST,
                 (int64_t)m->generation, len, (int64_t)m->entries->len, m->ctime / 1000000000);
    g_mutex_lock(&pl->lock);
    for (guint i = 0; i < pl->done->len && r == 0; i++) {
        TapePartDone *p = &g_array_index(pl->done, TapePartDone, i);
        r = db_x(c, err, "INSERT OR REPLACE INTO parts(dumpfile, partnum, off, len, volume, fileno, "
                 "xxh128) VALUES(?,?,?,?,?,?,?)", "uiuutib", m->dumpfile, (int64_t)p->partnum,
                 p->offset, p->size, p->volume, (int64_t)p->fileno, p->payload_xxh128, 16);
    }
    g_mutex_unlock(&pl->lock);
    if (r == 0)
        c->bytes_to_tape += len;
    return db_op_end(c, r);
}

void manifest_write_round(Core *c, TapeTaper *taper)
{
    GError *e = NULL;
    g_mutex_lock(&c->lock);
    db_op_begin(c);
    Manifest *m = build_locked(c, &e);
    int r = db_op_end(c, m || !e ? 0 : -EIO);
    g_mutex_unlock(&c->lock);
    if (!m) {
        if (r < 0 || e)
            g_warning("manifest: %s", e ? e->message : "cannot build it");
        g_clear_error(&e);
        return;
    }
    g_autoptr(GByteArray) bytes = manifest_encode(m);
    g_autofree char *path = g_strdup_printf("%s/tmp/manifest-%" G_GUINT64_FORMAT, c->dir,
                                            m->dumpfile);
    PartList pl = { .done = g_array_new(FALSE, FALSE, sizeof(TapePartDone)) };
    g_mutex_init(&pl.lock);
    if (!g_file_set_contents(path, (const char *)bytes->data, (gssize)bytes->len, &e))
        r = -EIO;
    if (r == 0)
        r = stream(taper, m->dumpfile, m->generation, path, bytes, &pl, &e);
    g_unlink(path);
    if (r == 0) {
        g_mutex_lock(&c->lock);
        r = record_locked(c, m, bytes->len, &pl, &e);
        g_mutex_unlock(&c->lock);
    }
    /* The data is on tape and in the catalog either way: a manifest that
     * failed is retried by the next round, which names the same data. */
    if (r < 0)
        g_warning("manifest of dumpfile %" G_GUINT64_FORMAT ": %s", m->dumpfile,
                  e ? e->message : "failed");
    g_clear_error(&e);
    g_array_unref(pl.done);
    g_mutex_clear(&pl.lock);
    manifest_free(m);
}

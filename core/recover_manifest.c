/* recover_manifest.c — the part of recovery that goes past the newest
 * index: it reads the manifests (manifest.c) written after the index the
 * catalog was restored from, in dumpfile id order (ids are taken in the
 * order dumpfiles are written), and brings forward every file version
 * they name whose data is on the volumes and verifies: the version and
 * its extents are inserted, the dumpfiles and parts it needs are recorded,
 * and the file is changed in place (an inode the index has) or created at
 * its path (missing parent directories are made; when the path is taken
 * or not usable, under RECOVERED_DIR). For each inode the newest version
 * that verifies wins; when the newest one does not, its path is listed as
 * lost with the reason in the notes, and the file keeps the older state.
 * A damaged or incomplete manifest is skipped with a note.
 * Runs single-threaded inside core_recover on the staging catalog before
 * any Core exists; no locks. */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

#define RECOVERED_DIR "recovered-after-index"

typedef struct {
    sqlite3 *db;
    TapeLibrary *lib;
    GArray *parts;          /* RecoverPart, every finished tape file */
    GHashTable *df_parts;   /* data dumpfile id -> GArray of indexes in parts */
    GHashTable *verified;   /* "volume/fileno" -> error text or "" (intact) */
    GHashTable *df_files;   /* dumpfile id brought in -> files using it */
    int64_t gen, max_snap;
    uint64_t next_id, next_version;
    GError **err;
    int rc;                 /* first catalog error */
} Ctx;

/* ---- catalog helpers -------------------------------------------------- */

/* Prepare `sql` with bindings (i = int64, u = uint64, t = text, b = blob
 * of 16 bytes); NULL after recording the error. */
static sqlite3_stmt *prep(Ctx *c, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    if (c->rc < 0)
        return NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) {
        c->rc = core_fail(c->err, EIO, "recovered catalog: %s", sqlite3_errmsg(c->db));
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt && fmt[i]; i++) {
        switch (fmt[i]) {
        case 'i':
            sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
            break;
        case 'u':
            sqlite3_bind_int64(s, i + 1, (int64_t)va_arg(ap, uint64_t));
            break;
        case 't':
            sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
            break;
        case 'b':
            sqlite3_bind_blob(s, i + 1, va_arg(ap, const void *), 16, SQLITE_TRANSIENT);
            break;
        }
    }
    va_end(ap);
    return s;
}

/* Step a prepared statement to its end and finalize it. */
static int done(Ctx *c, sqlite3_stmt *s)
{
    if (!s)
        return c->rc;
    int r = sqlite3_step(s);
    if (r != SQLITE_DONE && r != SQLITE_ROW && c->rc == 0)
        c->rc = core_fail(c->err, EIO, "recovered catalog: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    return c->rc;
}

/* First column of the first row as int64, or `dflt` when there is none. */
static int64_t one(Ctx *c, sqlite3_stmt *s, int64_t dflt)
{
    if (s && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        dflt = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    (void)c;
    return dflt;
}

static int64_t meta(Ctx *c, const char *key, int64_t dflt)
{
    return one(c, prep(c, "SELECT value FROM meta WHERE key=?", "t", key), dflt);
}

/* The live child `name` of `parent`, 0 if none; *mode gets its mode. */
static uint64_t lookup(Ctx *c, uint64_t parent, const char *name, uint32_t *mode)
{
    sqlite3_stmt *s = prep(c, "SELECT d.child, i.mode FROM dirents d JOIN inodes i ON i.id=d.child "
                           "AND i.death=?3 WHERE d.parent=?1 AND d.name=?2 AND d.death=?3",
                           "uti", parent, name, (int64_t)CORE_INF);
    uint64_t child = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        child = (uint64_t)sqlite3_column_int64(s, 0);
        *mode = (uint32_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return child;
}

/* Before a live inode row changes: if a snapshot sees it, end it and go on
 * with a copy born now (copy-on-write, as inode_put does). */
static int cow_inode(Ctx *c, uint64_t id)
{
    int64_t birth = one(c, prep(c, "SELECT birth FROM inodes WHERE id=? AND death=?", "ui", id,
                                (int64_t)CORE_INF), -1);
    if (birth < 0 || birth > c->max_snap)
        return c->rc;
    done(c, prep(c, "INSERT INTO inodes(id, birth, death, mode, uid, gid, size, atime, mtime, "
                 "ctime, nlink, rdev, target, version) SELECT id, ?1, death, mode, uid, gid, size, "
                 "atime, mtime, ctime, nlink, rdev, target, version FROM inodes WHERE id=?2 AND "
                 "birth=?3", "iui", c->gen, id, birth));
    return done(c, prep(c, "UPDATE inodes SET death=?1 WHERE id=?2 AND birth=?3", "iui", c->gen,
                        id, birth));
}

static uint64_t new_dir(Ctx *c, uint64_t parent, const char *name, uint32_t uid, uint32_t gid)
{
    uint64_t id = c->next_id++;
    int64_t now = (int64_t)g_get_real_time() * 1000;
    done(c, prep(c, "INSERT INTO inodes(id, birth, death, mode, uid, gid, size, atime, mtime, "
                 "ctime, nlink, rdev, target, version) VALUES(?,?,?,?,?,?,0,?,?,?,2,0,NULL,0)",
                 "uiiiiiiii", id, c->gen, (int64_t)CORE_INF, (int64_t)(S_IFDIR | 0755),
                 (int64_t)uid, (int64_t)gid, now, now, now));
    done(c, prep(c, "INSERT INTO dirents(parent, name, birth, death, child) VALUES(?,?,?,?,?)",
                 "utiiu", parent, name, c->gen, (int64_t)CORE_INF, id));
    cow_inode(c, parent);
    done(c, prep(c, "UPDATE inodes SET nlink=nlink+1 WHERE id=? AND death=?", "ui", parent,
                 (int64_t)CORE_INF));
    return c->rc < 0 ? 0 : id;
}

/* The live directory for the components of `path` but the last, made
 * where missing; 0 with *why set when a component is not a directory. */
static uint64_t parent_dir(Ctx *c, const char *path, const char **leaf, uint32_t uid,
                           uint32_t gid, char **why)
{
    g_auto(GStrv) comps = g_strsplit(path + 1, "/", -1);
    guint n = g_strv_length(comps);
    uint64_t dir = CORE_ROOT_INO;
    for (guint i = 0; i + 1 < n && dir; i++) {
        uint32_t mode = 0;
        uint64_t child = lookup(c, dir, comps[i], &mode);
        if (child && !S_ISDIR(mode)) {
            *why = g_strdup_printf("%s is not a directory", comps[i]);
            return 0;
        }
        dir = child ? child : new_dir(c, dir, comps[i], uid, gid);
    }
    *leaf = strrchr(path, '/') + 1;
    return dir;
}

/* Give the new inode `id` the name `path` if the path is free and usable. */
static bool place(Ctx *c, uint64_t id, const char *path, uint32_t uid, uint32_t gid, char **why)
{
    const char *leaf = NULL;
    uint64_t dir = parent_dir(c, path, &leaf, uid, gid, why);
    if (!dir)
        return false;
    uint32_t mode = 0;
    if (lookup(c, dir, leaf, &mode)) {
        *why = g_strdup("another file has that path");
        return false;
    }
    return done(c, prep(c, "INSERT INTO dirents(parent, name, birth, death, child) "
                        "VALUES(?,?,?,?,?)", "utiiu", dir, leaf, c->gen, (int64_t)CORE_INF,
                        id)) == 0;
}

/* ---- verifying an entry's data -------------------------------------- */

static bool dumpfile_in_catalog(Ctx *c, uint64_t df)
{
    return one(c, prep(c, "SELECT 1 FROM dumpfiles WHERE id=?", "u", df), 0) == 1;
}

/* Is tape file (volume, fileno) intact? Verified once; NULL = intact. */
static const char *part_error(Ctx *c, const RecoverPart *p)
{
    g_autofree char *key = g_strdup_printf("%s/%u", p->volume, p->fileno);
    const char *known = g_hash_table_lookup(c->verified, key);
    if (known)
        return *known ? known : NULL;
    GError *e = NULL;
    TapePart *tp = tape_part_open(c->lib, p->volume, p->fileno, &e);
    if (tp && tape_part_verify(tp, &e) == 0) {
        /* The part must still be the one the scan saw. */
        const TapePartTrailer *t = tape_part_trailer(tp);
        if (memcmp(t->payload_xxh128, p->xxh128, 16))
            g_set_error(&e, CORE_ERROR, EIO, "%s file %u changed since the scan", p->volume,
                        p->fileno);
    }
    if (tp)
        tape_part_close(tp);
    char *msg = g_strdup(e ? e->message : "");
    g_clear_error(&e);
    g_hash_table_insert(c->verified, g_steal_pointer(&key), msg);
    return *msg ? msg : NULL;
}

/* NULL when every byte the entry maps is on tape and verifies; otherwise
 * why not (g_free). */
static char *entry_problem(Ctx *c, const ManifestEntry *e)
{
    for (guint i = 0; i < e->extents->len; i++) {
        const ManifestExtent *x = &g_array_index(e->extents, ManifestExtent, i);
        if (x->kind == MANIFEST_NOT_ON_TAPE)
            return g_strdup_printf("bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT
                                   " were not on tape yet", x->off, x->off + x->len);
        if (dumpfile_in_catalog(c, x->dumpfile))
            continue; /* the index has it */
        GArray *idx = g_hash_table_lookup(c->df_parts, &x->dumpfile);
        uint64_t at = x->df_off, end = x->df_off + x->len;
        for (guint j = 0; idx && j < idx->len && at < end; j++) {
            const RecoverPart *p = &g_array_index(c->parts, RecoverPart,
                                                  g_array_index(idx, guint, j));
            if (p->off > at || p->off + p->len <= at)
                continue;
            const char *bad = part_error(c, p);
            if (bad)
                return g_strdup_printf("dumpfile %" G_GUINT64_FORMAT ": %s", x->dumpfile, bad);
            at = p->off + p->len;
        }
        if (at < end)
            return g_strdup_printf("dumpfile %" G_GUINT64_FORMAT " is not on the volumes "
                                   "(bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ")",
                                   x->dumpfile, at, end);
    }
    return NULL;
}

/* ---- bringing one version forward ------------------------------------ */

/* Version id and extents for `e`; Returns the version id, 0 on error. */
static uint64_t put_version(Ctx *c, const ManifestEntry *e, uint64_t ino)
{
    uint64_t v = e->version;
    int64_t owner = one(c, prep(c, "SELECT ino FROM versions WHERE id=?", "u", v), -1);
    if (owner >= 0 && (uint64_t)owner != ino)
        v = c->next_version++; /* not expected: ids are never reused */
    if (owner >= 0 && v == e->version) {
        /* The same version flushed further after the index. */
        done(c, prep(c, "DELETE FROM extents WHERE version=?", "u", v));
    } else {
        done(c, prep(c, "INSERT INTO versions(id, ino, birth) VALUES(?,?,?)", "uui", v, ino,
                     c->gen));
    }
    c->next_version = MAX(c->next_version, v + 1);
    for (guint i = 0; i < e->extents->len; i++) {
        const ManifestExtent *x = &g_array_index(e->extents, ManifestExtent, i);
        done(c, prep(c, "INSERT INTO extents(version, off, len, kind, ref, ref_off) "
                     "VALUES(?,?,?,?,?,?)", "uuuiuu", v, x->off, x->len, (int64_t)EXT_DUMP,
                     x->dumpfile, x->df_off));
        bool counted = false; /* files per dumpfile: count this one once */
        for (guint j = 0; j < i && !counted; j++)
            counted = g_array_index(e->extents, ManifestExtent, j).dumpfile == x->dumpfile;
        if (!counted && !dumpfile_in_catalog(c, x->dumpfile)) {
            uint64_t *k = g_memdup2(&x->dumpfile, sizeof x->dumpfile);
            guint n = GPOINTER_TO_UINT(g_hash_table_lookup(c->df_files, k));
            g_hash_table_insert(c->df_files, k, GUINT_TO_POINTER(n + 1));
        }
    }
    return c->rc < 0 ? 0 : v;
}

/* The dumpfiles brought in and their parts, as the flusher records them. */
static void record_dumpfiles(Ctx *c)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->df_files);
    while (g_hash_table_iter_next(&it, &k, &v) && c->rc == 0) {
        uint64_t df = *(uint64_t *)k;
        if (dumpfile_in_catalog(c, df))
            continue;
        GArray *idx = g_hash_table_lookup(c->df_parts, &df);
        uint64_t len = 0, gen = 0;
        uint32_t kind = CORE_DUMP_FILE;
        for (guint j = 0; idx && j < idx->len; j++) {
            const RecoverPart *p = &g_array_index(c->parts, RecoverPart,
                                                  g_array_index(idx, guint, j));
            len = MAX(len, p->off + p->len);
            gen = p->gen;
            kind = p->kind;
            done(c, prep(c, "INSERT OR IGNORE INTO parts(dumpfile, partnum, off, len, volume, "
                         "fileno, xxh128) VALUES(?,?,?,?,?,?,?)", "uiuutib", df,
                         (int64_t)p->partnum, p->off, p->len, p->volume, (int64_t)p->fileno,
                         p->xxh128));
        }
        done(c, prep(c, "INSERT INTO dumpfiles(id, kind, generation, length, nfiles, ctime, "
                     "garbage) VALUES(?,?,?,?,?,?,0)", "uiuuii", df, (int64_t)kind, gen, len,
                     (int64_t)GPOINTER_TO_UINT(v), (int64_t)(g_get_real_time() / G_USEC_PER_SEC)));
    }
}

/* Bring `e` forward. Returns where it now is (g_free), NULL when it could
 * not be placed (*why says why). */
static char *apply(Ctx *c, const ManifestEntry *e, GPtrArray *notes, char **why)
{
    int64_t live = one(c, prep(c, "SELECT mode FROM inodes WHERE id=? AND death=?", "ui", e->ino,
                               (int64_t)CORE_INF), -1);
    if (live >= 0 && S_ISREG((uint32_t)live)) {
        /* The index has this file: it gets the newer version in place. */
        int64_t old = one(c, prep(c, "SELECT version FROM inodes WHERE id=? AND death=?", "ui",
                                  e->ino, (int64_t)CORE_INF), 0);
        uint64_t v = put_version(c, e, e->ino);
        cow_inode(c, e->ino);
        done(c, prep(c, "UPDATE inodes SET mode=?, uid=?, gid=?, size=?, atime=?, mtime=?, "
                     "ctime=?, version=? WHERE id=? AND death=?", "iiiuiiiuui", (int64_t)e->mode,
                     (int64_t)e->uid, (int64_t)e->gid, e->size, e->atime, e->mtime, e->ctime, v,
                     e->ino, (int64_t)CORE_INF));
        if ((uint64_t)old != v && one(c, prep(c, "SELECT 1 FROM inodes WHERE version=? LIMIT 1",
                                              "i", old), 0) == 0) {
            done(c, prep(c, "DELETE FROM extents WHERE version=?", "i", old));
            done(c, prep(c, "DELETE FROM versions WHERE id=?", "i", old));
        }
        return c->rc < 0 ? NULL : g_strdup(e->paths->pdata[0]);
    }
    /* A file the index does not have (or not as a file): a new inode. */
    uint64_t id = e->ino;
    if (one(c, prep(c, "SELECT 1 FROM inodes WHERE id=? LIMIT 1", "u", id), 0) == 1)
        id = c->next_id++;
    c->next_id = MAX(c->next_id, id + 1);
    char *at = NULL;
    unsigned names = 0;
    for (guint i = 0; i < e->paths->len && c->rc == 0; i++) {
        const char *p = e->paths->pdata[i];
        char *no = NULL;
        if (place(c, id, p, e->uid, e->gid, &no)) {
            names++;
            if (!at)
                at = g_strdup(p);
        } else if (i > 0) {
            recover_note(notes, "%s: another name of %s is not restored: %s", p,
                         (const char *)e->paths->pdata[0], no);
        } else {
            /* Not at its own path: under RECOVERED_DIR, same relative path. */
            g_autofree char *alt = g_strdup_printf("/%s%s", RECOVERED_DIR, p);
            g_autofree char *alt2 = g_strdup_printf("%s~%" G_GUINT64_FORMAT, alt, e->ino);
            char *no2 = NULL;
            const char *got = NULL;
            if (place(c, id, alt, e->uid, e->gid, &no2)) {
                got = alt;
            } else {
                g_clear_pointer(&no2, g_free);
                if (place(c, id, alt2, e->uid, e->gid, &no2))
                    got = alt2;
            }
            if (got) {
                names++;
                at = g_strdup(got);
                recover_note(notes, "%s cannot be restored at its path (%s): it is at %s", p, no,
                             got);
            } else {
                *why = g_strdup_printf("no usable path (%s; %s)", no, no2 ? no2 : "?");
            }
            g_free(no2);
        }
        g_free(no);
    }
    if (!names || c->rc < 0) {
        g_free(at);
        return NULL;
    }
    uint64_t v = put_version(c, e, id);
    done(c, prep(c, "INSERT INTO inodes(id, birth, death, mode, uid, gid, size, atime, mtime, "
                 "ctime, nlink, rdev, target, version) VALUES(?,?,?,?,?,?,?,?,?,?,?,0,NULL,?)",
                 "uiiiiiuiiiiu", id, c->gen, (int64_t)CORE_INF, (int64_t)e->mode,
                 (int64_t)e->uid, (int64_t)e->gid, e->size, e->atime, e->mtime, e->ctime,
                 (int64_t)names, v));
    if (c->rc < 0)
        g_clear_pointer(&at, g_free);
    return at;
}

/* ---- the manifests ------------------------------------------------------ */

typedef struct {
    const ManifestEntry *e;
    uint64_t manifest;  /* its manifest's dumpfile id */
} Named;

static void named_list_free(gpointer p)
{
    g_array_unref(p);
}

/* Read and decode every complete manifest after `index_df`, oldest first;
 * the rest are noted and skipped. */
static GPtrArray *read_manifests(Ctx *c, uint64_t index_df, GPtrArray *notes)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)manifest_free);
    g_autoptr(GArray) mparts = g_array_new(FALSE, FALSE, sizeof(RecoverPart));
    for (guint i = 0; i < c->parts->len; i++) {
        RecoverPart *p = &g_array_index(c->parts, RecoverPart, i);
        if (p->kind == CORE_DUMP_MANIFEST && p->df > index_df)
            g_array_append_val(mparts, *p);
    }
    g_autoptr(GArray) whole = recover_complete_dumpfiles(mparts);
    guint w = 0;
    for (guint i = 0; i < mparts->len;) {
        uint64_t df = g_array_index(mparts, RecoverPart, i).df;
        guint j = i;
        while (j < mparts->len && g_array_index(mparts, RecoverPart, j).df == df)
            j++;
        RecoverDumpfile *d = w < whole->len ? &g_array_index(whole, RecoverDumpfile, w) : NULL;
        if (!d || d->df != df) {
            recover_note(notes, "manifest %" G_GUINT64_FORMAT " is incomplete on the volumes: "
                         "skipped", df);
            i = j;
            continue;
        }
        w++;
        i = j;
        g_autoptr(GByteArray) bytes = g_byte_array_new();
        GError *e = NULL;
        Manifest *m = NULL;
        if (recover_read_dumpfile(c->lib, mparts, d->first, d->count, bytes, &e) == 0)
            m = manifest_decode(bytes->data, bytes->len, &e);
        if (m && m->dumpfile != df) {
            g_set_error(&e, CORE_ERROR, EBADMSG, "it says it is dumpfile %" G_GUINT64_FORMAT,
                        m->dumpfile);
            g_clear_pointer(&m, manifest_free);
        }
        if (!m) {
            recover_note(notes, "manifest %" G_GUINT64_FORMAT " is unusable: %s; skipped", df,
                         e ? e->message : "?");
            g_clear_error(&e);
            continue;
        }
        g_ptr_array_add(out, m);
    }
    return out;
}

int recover_after_index(sqlite3 *db, TapeLibrary *lib, GArray *parts, uint64_t index_df,
                        GPtrArray *lost, GPtrArray *notes, GError **err)
{
    Ctx c = { .db = db, .lib = lib, .parts = parts, .err = err };
    /* Skipped manifests are noted before anything is read from a catalog. */
    bool any = false;
    for (guint i = 0; i < parts->len && !any; i++) {
        RecoverPart *p = &g_array_index(parts, RecoverPart, i);
        any = p->kind == CORE_DUMP_MANIFEST && p->df > index_df;
    }
    if (!any)
        return 0;
    g_autoptr(GPtrArray) manifests = read_manifests(&c, index_df, notes);
    c.df_parts = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                       (GDestroyNotify)g_array_unref);
    c.verified = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    c.df_files = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (guint i = 0; i < parts->len; i++) {
        RecoverPart *p = &g_array_index(parts, RecoverPart, i);
        if (p->kind != CORE_DUMP_FILE && p->kind != CORE_DUMP_BUNDLE)
            continue;
        GArray *idx = g_hash_table_lookup(c.df_parts, &p->df);
        if (!idx) {
            idx = g_array_new(FALSE, FALSE, sizeof(guint));
            g_hash_table_insert(c.df_parts, g_memdup2(&p->df, sizeof p->df), idx);
        }
        g_array_append_val(idx, i);
    }
    c.gen = meta(&c, "generation", 1);
    c.max_snap = one(&c, prep(&c, "SELECT max(gen) FROM snapshots", NULL), 0);
    c.next_id = (uint64_t)meta(&c, "next_id", 2);
    c.next_version = (uint64_t)meta(&c, "next_version", 1);

    /* Each inode's versions, oldest manifest first; inodes in the order
     * they first appear. */
    g_autoptr(GHashTable) by_ino = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                                         named_list_free);
    g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (guint i = 0; i < manifests->len; i++) {
        Manifest *m = manifests->pdata[i];
        for (guint j = 0; j < m->entries->len; j++) {
            const ManifestEntry *e = m->entries->pdata[j];
            GArray *l = g_hash_table_lookup(by_ino, &e->ino);
            if (!l) {
                l = g_array_new(FALSE, FALSE, sizeof(Named));
                g_hash_table_insert(by_ino, g_memdup2(&e->ino, sizeof e->ino), l);
                g_array_append_val(order, e->ino);
            }
            Named n = { .e = e, .manifest = m->dumpfile };
            g_array_append_val(l, n);
        }
    }
    guint brought = 0;
    for (guint i = 0; i < order->len && c.rc == 0; i++) {
        GArray *l = g_hash_table_lookup(by_ino, &g_array_index(order, uint64_t, i));
        const Named *newest = &g_array_index(l, Named, l->len - 1);
        g_autofree char *first_problem = NULL;
        bool placed = false;
        for (guint k = l->len; k-- > 0 && !placed && c.rc == 0;) {
            const Named *n = &g_array_index(l, Named, k);
            char *why = entry_problem(&c, n->e);
            char *at = why ? NULL : apply(&c, n->e, notes, &why);
            if (at) {
                placed = true;
                brought++;
                if (k + 1 < l->len)
                    recover_note(notes, "%s keeps the older version named by manifest %"
                                 G_GUINT64_FORMAT, at, n->manifest);
                g_free(at);
            }
            if (why && !first_problem)
                first_problem = why;
            else
                g_free(why);
        }
        if (first_problem && c.rc == 0) {
            const char *path = newest->e->paths->pdata[0];
            if (lost)
                g_ptr_array_add(lost, g_strdup(path));
            recover_note(notes, "lost %s: the version that manifest %" G_GUINT64_FORMAT
                         " names cannot be restored: %s; %s", path, newest->manifest,
                         first_problem, placed ? "an older version is restored instead"
                         : "the file keeps what the index has, if anything");
        }
    }
    record_dumpfiles(&c);
    if (c.rc == 0) {
        done(&c, prep(&c, "UPDATE meta SET value=max(value, ?) WHERE key='next_id'", "u",
                      c.next_id));
        done(&c, prep(&c, "UPDATE meta SET value=max(value, ?) WHERE key='next_version'", "u",
                      c.next_version));
    }
    if (c.rc == 0)
        recover_note(notes, "brought forward %u file(s) written after the index (dumpfile %"
                     G_GUINT64_FORMAT ") from %u manifest(s)", brought, index_df,
                     manifests->len);
    g_hash_table_unref(c.df_parts);
    g_hash_table_unref(c.verified);
    g_hash_table_unref(c.df_files);
    return c.rc;
}

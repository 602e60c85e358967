/* catalog_db.c — the catalog's SQLite connection: schema, cached prepared
 * statements, the meta table (generation and id counters), per-operation
 * savepoints (db_op_begin/db_op_end), group commit followed by the cache
 * deletions it made safe, and read-only snapshot connections whose copy
 * becomes an index.
 *
 * Locks: everything on the main connection (Core.db) runs with Core.lock
 * held (one thread at a time). Two parts run without it:
 *   - the cache fsyncs of db_group_commit: under the lock it takes the set
 *     of objects written so far (commit_objs) out into commit_stolen and
 *     puts an empty set in its place, unlocks, fsyncs the taken set in
 *     the pool, relocks, then fsyncs (locked) what was written meanwhile
 *     and commits. While commit_stolen is set, every other db_commit waits
 *     on Core.commit_cond (so none commits rows whose objects are still
 *     being fsync'ed), and no operation may hold its SAVEPOINT open across
 *     an unlock: db_group_commit requires op_depth == 0 and operations
 *     complete theirs within one hold of the lock;
 *   - db_snapshot_copy: the snapshot connection is its caller's alone, its
 *     read transaction was opened under the lock (db_snapshot_open).
 * The fsync workers take no core lock. */
#include "core/core_private.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshots(name TEXT PRIMARY KEY,"
    "  gen INTEGER NOT NULL UNIQUE, ctime INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS inodes(id INTEGER NOT NULL, birth INTEGER NOT NULL,"
    "  death INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL, size INTEGER NOT NULL, atime INTEGER NOT NULL,"
    "  mtime INTEGER NOT NULL, ctime INTEGER NOT NULL, nlink INTEGER NOT NULL,"
    "  rdev INTEGER NOT NULL, target TEXT, version INTEGER NOT NULL,"
    "  PRIMARY KEY(id, birth));"
    "CREATE INDEX IF NOT EXISTS inodes_death ON inodes(id, death);"
    "CREATE INDEX IF NOT EXISTS inodes_version ON inodes(version);"
    "CREATE TABLE IF NOT EXISTS dirents(parent INTEGER NOT NULL, name TEXT NOT NULL,"
    "  birth INTEGER NOT NULL, death INTEGER NOT NULL, child INTEGER NOT NULL,"
    "  PRIMARY KEY(parent, name, birth));"
    "DROP INDEX IF EXISTS dirents_live;"
    "CREATE INDEX IF NOT EXISTS dirents_by_name ON dirents(parent, death, name);"
    "CREATE INDEX IF NOT EXISTS dirents_child ON dirents(child, death);"
    "CREATE TABLE IF NOT EXISTS xattrs(ino INTEGER NOT NULL, name TEXT NOT NULL,"
    "  birth INTEGER NOT NULL, death INTEGER NOT NULL, value BLOB NOT NULL,"
    "  PRIMARY KEY(ino, name, birth));"
    "CREATE TABLE IF NOT EXISTS versions(id INTEGER PRIMARY KEY, ino INTEGER NOT NULL,"
    "  birth INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS extents(version INTEGER NOT NULL, off INTEGER NOT NULL,"
    "  len INTEGER NOT NULL, kind INTEGER NOT NULL, ref INTEGER NOT NULL,"
    "  ref_off INTEGER NOT NULL, PRIMARY KEY(version, off));"
    "CREATE INDEX IF NOT EXISTS extents_ref ON extents(kind, ref, ref_off);"
    "CREATE TABLE IF NOT EXISTS dumpfiles(id INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
    "  generation INTEGER NOT NULL, length INTEGER NOT NULL, nfiles INTEGER NOT NULL,"
    "  ctime INTEGER NOT NULL, garbage INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS parts(dumpfile INTEGER NOT NULL, partnum INTEGER NOT NULL,"
    "  off INTEGER NOT NULL, len INTEGER NOT NULL, volume TEXT NOT NULL,"
    "  fileno INTEGER NOT NULL, xxh128 BLOB, PRIMARY KEY(dumpfile, partnum));"
    /* Volumes are the library's business (tape_library_volumes): an
     * older catalog's never-written copy of them goes. */
    "DROP TABLE IF EXISTS volumes;";

int db_create_schema(sqlite3 *db, GError **err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        int r = core_fail(err, EIO, "catalog schema: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

int db_fail(Core *c, GError **err, const char *what)
{
    int code = sqlite3_errcode(c->db);
    int e = (code == SQLITE_FULL) ? ENOSPC : EIO;
    g_warning("catalog: %s: %s", what, sqlite3_errmsg(c->db));
    return core_fail(err, e, "catalog: %s: %s", what, sqlite3_errmsg(c->db));
}

static void stmt_free(gpointer p) { sqlite3_finalize(p); }

int db_open(Core *c, const char *path, bool create, GError **err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (create)
        flags |= SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        int r = core_fail(err, create ? EIO : ENOENT, "catalog %s: %s", path,
                          c->db ? sqlite3_errmsg(c->db) : "cannot open");
        sqlite3_close(c->db);
        c->db = NULL;
        return r;
    }
    sqlite3_busy_timeout(c->db, 5000);
    c->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, stmt_free);
    char *msg = NULL;
    if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "PRAGMA foreign_keys=OFF;", NULL, NULL, &msg) != SQLITE_OK) {
        int r = core_fail(err, EIO, "catalog %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        db_close(c);
        return r;
    }
    sqlite3_stmt *s = NULL;
    if (!create &&
        sqlite3_prepare_v2(c->db, "SELECT count(*) FROM meta", -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        int r = core_fail(err, EINVAL, "catalog %s: not a tapefs catalog: %s", path,
                          sqlite3_errmsg(c->db));
        db_close(c);
        return r;
    }
    sqlite3_finalize(s);
    /* The schema is idempotent: an older catalog gets new indexes. */
    if (db_create_schema(c->db, err) < 0) {
        db_close(c);
        return -EIO;
    }
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        int r = db_fail(c, err, "begin");
        db_close(c);
        return r;
    }
    c->last_commit = g_get_monotonic_time();
    return 0;
}

void db_close(Core *c)
{
    if (!c->db)
        return;
    if (sqlite3_get_autocommit(c->db) == 0)
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    g_clear_pointer(&c->stmts, g_hash_table_destroy);
    sqlite3_close(c->db);
    c->db = NULL;
}

static sqlite3_stmt *db_vq(Core *c, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *s = g_hash_table_lookup(c->stmts, sql);
    if (!s) {
        if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
            g_warning("catalog: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(c->db));
            return NULL;
        }
        g_hash_table_insert(c->stmts, (gpointer)sql, s);
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    int i = 1;
    for (const char *f = fmt ? fmt : ""; *f; f++, i++) {
        switch (*f) {
        case 'i':
            sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
            break;
        case 'u':
            sqlite3_bind_int64(s, i, (int64_t)va_arg(ap, uint64_t));
            break;
        case 't': {
            const char *t = va_arg(ap, const char *);
            if (t)
                sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(s, i);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            int n = va_arg(ap, int);
            sqlite3_bind_blob(s, i, p ? p : "", n, SQLITE_TRANSIENT);
            break;
        }
        default:
            g_warning("catalog: bad binding format %c", *f);
            return NULL;
        }
    }
    return s;
}

sqlite3_stmt *db_q(Core *c, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *s = db_vq(c, sql, fmt, ap);
    va_end(ap);
    return s;
}

int db_x(Core *c, GError **err, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *s = db_vq(c, sql, fmt, ap);
    va_end(ap);
    if (!s)
        return db_fail(c, err, "prepare");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        int r = db_fail(c, err, sql);
        sqlite3_reset(s);
        return r;
    }
    sqlite3_reset(s);
    if (sqlite3_changes(c->db) > 0)
        c->txn_dirty = true;
    return 0;
}

int64_t db_meta_get(Core *c, const char *key, int64_t dflt)
{
    sqlite3_stmt *s = db_q(c, "SELECT value FROM meta WHERE key=?", "t", key);
    int64_t v = dflt;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    return v;
}

int db_meta_set(Core *c, const char *key, int64_t value, GError **err)
{
    return db_x(c, err, "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value", "ti", key, value);
}

void db_note_object(Core *c, uint64_t obj)
{
    g_hash_table_add(c->commit_objs, g_memdup2(&obj, sizeof obj));
}

/* Parallel cache fsyncs: many small objects cost one journal flush of
 * the cache's filesystem instead of one each. The workers take no core
 * lock; db_commit waits for them with Core.lock held. */
typedef struct {
    GMutex lock;
    GCond cond;
    guint pending;
    int error;
    char msg[200];
} FsyncBatch;

typedef struct {
    Cache *cache;
    uint64_t obj;
    FsyncBatch *batch;
} FsyncJob;

static void fsync_worker(gpointer data, gpointer user)
{
    (void)user;
    FsyncJob *j = data;
    GError *e = NULL;
    int r = cache_fsync(j->cache, j->obj, &e);
    FsyncBatch *b = j->batch;
    g_mutex_lock(&b->lock);
    if (r < 0 && r != -ENOENT && !b->error) {
        b->error = r;
        g_strlcpy(b->msg, e ? e->message : g_strerror(-r), sizeof b->msg);
    }
    if (--b->pending == 0)
        g_cond_signal(&b->cond);
    g_mutex_unlock(&b->lock);
    g_clear_error(&e);
    g_free(j);
}

/* Created the first time there is something to fsync. Core.lock held. */
static void fsync_pool_ensure(Core *c, GHashTable *objs)
{
    if (!c->fsync_pool && g_hash_table_size(objs) > 0)
        c->fsync_pool = g_thread_pool_new(fsync_worker, NULL, 16, FALSE, NULL);
}

/* fsync every object of `objs` in the pool and wait. Needs no core lock
 * (fsync_pool_ensure(objs) ran, `objs` is not changed meanwhile). */
static int fsync_objects(Core *c, GHashTable *objs, GError **err)
{
    guint n = g_hash_table_size(objs);
    if (n == 0)
        return 0;
    FsyncBatch b = { .pending = 1 };
    g_mutex_init(&b.lock);
    g_cond_init(&b.cond);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, objs);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        FsyncJob *j = g_new0(FsyncJob, 1);
        j->cache = c->cache;
        j->obj = *(uint64_t *)k;
        j->batch = &b;
        g_mutex_lock(&b.lock);
        b.pending++;
        g_mutex_unlock(&b.lock);
        g_thread_pool_push(c->fsync_pool, j, NULL);
    }
    g_mutex_lock(&b.lock);
    b.pending--;
    while (b.pending)
        g_cond_wait(&b.cond, &b.lock);
    g_mutex_unlock(&b.lock);
    g_mutex_clear(&b.lock);
    g_cond_clear(&b.cond);
    if (b.error)
        return core_fail(err, -b.error, "cache fsync before commit: %s", b.msg);
    return 0;
}

void db_delete_after_commit(Core *c, uint64_t obj)
{
    g_array_append_val(c->after_commit, obj);
}

/* The catalog as committed no longer points at the queued objects (a
 * rolled back change may have restored a reference: checked again). */
static void run_after_commit(Core *c)
{
    for (guint i = 0; i < c->after_commit->len; i++) {
        uint64_t obj = g_array_index(c->after_commit, uint64_t, i);
        DirtyObj *d = g_hash_table_lookup(c->dirty, &obj);
        if (object_referenced(c, obj) || (d && d->flushing) || !c->cache ||
            !cache_object_exists(c->cache, obj))
            continue;
        g_hash_table_remove(c->dirty, &obj);
        g_hash_table_remove(c->commit_objs, &obj);
        GError *e = NULL;
        if (cache_object_delete(c->cache, obj, &e) < 0) {
            g_warning("dropping cache object %" G_GUINT64_FORMAT ": %s", obj, e->message);
            g_error_free(e);
        }
    }
    g_array_set_size(c->after_commit, 0);
}

void db_op_begin(Core *c)
{
    if (c->op_depth++ > 0 || !c->db)
        return;
    if (sqlite3_exec(c->db, "SAVEPOINT op", NULL, NULL, NULL) != SQLITE_OK) {
        g_warning("catalog: savepoint: %s", sqlite3_errmsg(c->db));
        return;
    }
    c->op_open = true;
    c->op_mark = c->after_commit->len;
}

static void reset_stmts(Core *c)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->stmts);
    while (g_hash_table_iter_next(&it, NULL, &v))
        sqlite3_reset(v);
}

int db_op_end(Core *c, int rc)
{
    if (c->op_depth == 0 || --c->op_depth > 0 || !c->op_open)
        return rc;
    c->op_open = false;
    reset_stmts(c);
    if (rc < 0) {
        if (sqlite3_exec(c->db, "ROLLBACK TO op", NULL, NULL, NULL) != SQLITE_OK)
            g_warning("catalog: rollback of a failed operation: %s", sqlite3_errmsg(c->db));
        /* In-memory state that mirrors rows: the generation and newest
         * snapshot, and objects whose deletion was queued but which rows
         * point at again (they go back to the flusher). Id counters only
         * grow, so skipping ids is harmless. */
        c->gen = db_meta_get(c, "generation", c->gen);
        sqlite3_stmt *s = db_q(c, "SELECT coalesce(max(gen), 0) FROM snapshots", NULL);
        if (s && sqlite3_step(s) == SQLITE_ROW)
            c->max_snap = sqlite3_column_int64(s, 0);
        if (s)
            sqlite3_reset(s);
        for (guint i = c->op_mark; i < c->after_commit->len; i++) {
            uint64_t obj = g_array_index(c->after_commit, uint64_t, i);
            if (object_referenced(c, obj) && c->cache && cache_object_exists(c->cache, obj)) {
                dirty_mark_locked(c, obj);
                db_note_object(c, obj);
            }
        }
    }
    if (sqlite3_exec(c->db, "RELEASE op", NULL, NULL, NULL) != SQLITE_OK)
        g_warning("catalog: release of an operation: %s", sqlite3_errmsg(c->db));
    return rc;
}

void db_commit_wait_idle(Core *c)
{
    while (c->commit_stolen)
        g_cond_wait(&c->commit_cond, &c->lock);
}

int db_commit(Core *c, GError **err)
{
    bool fsync_stolen = false;
    if (c->commit_stolen) {
        if (c->op_depth == 0) {
            db_commit_wait_idle(c);
        } else {
            /* An operation is open: its savepoint must not outlive this
             * hold of the lock, so instead of waiting, the objects being
             * fsync'ed unlocked are fsync'ed here too (the callers that
             * commit inside an operation wait before opening it, so this
             * is only a safety net). */
            g_warning("catalog: commit inside an operation during a group commit");
            fsync_stolen = true;
        }
    }
    if (c->op_open) {
        /* The operation's last step is this commit. */
        reset_stmts(c);
        if (sqlite3_exec(c->db, "RELEASE op", NULL, NULL, NULL) != SQLITE_OK)
            g_warning("catalog: release of an operation: %s", sqlite3_errmsg(c->db));
        c->op_open = false;
    }
    if (!c->txn_dirty) {
        /* Nothing uncommitted: the catalog as it is is the committed one. */
        run_after_commit(c);
        c->last_commit = g_get_monotonic_time();
        return 0;
    }
    /* Data first: every cache object a row may point at is made durable
     * before the rows commit. */
    if (c->opt.cache_mode != CORE_CACHE_UNSAFE && c->cache) {
        if (fsync_stolen)
            fsync_pool_ensure(c, c->commit_stolen);
        fsync_pool_ensure(c, c->commit_objs);
        int r = fsync_stolen ? fsync_objects(c, c->commit_stolen, err) : 0;
        if (r == 0)
            r = fsync_objects(c, c->commit_objs, err);
        if (r < 0)
            return r;
    }
    g_hash_table_remove_all(c->commit_objs);
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(c, err, "commit");
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(c, err, "begin");
    c->txn_dirty = false;
    c->index_stale = true;
    c->commits++;
    run_after_commit(c);
    c->last_commit = g_get_monotonic_time();
    return 0;
}

int db_group_commit(Core *c, GError **err)
{
    g_assert(c->op_depth == 0);
    db_commit_wait_idle(c);
    if (!c->txn_dirty || c->opt.cache_mode == CORE_CACHE_UNSAFE || !c->cache ||
        g_hash_table_size(c->commit_objs) == 0)
        return db_commit(c, err);
    /* Phase 1, unlocked: the objects written so far. Writes go on and are
     * noted in a fresh set; every other commit waits for the end of this
     * phase (the rows it would commit may point at objects in `taken`). */
    fsync_pool_ensure(c, c->commit_objs);
    GHashTable *taken = c->commit_objs;
    c->commit_objs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    c->commit_stolen = taken;
    g_mutex_unlock(&c->lock);
    core_test_point(c, CORE_TEST_COMMIT_FSYNC);
    int r = fsync_objects(c, taken, err);
    g_mutex_lock(&c->lock);
    c->commit_stolen = NULL;
    g_cond_broadcast(&c->commit_cond);
    if (r < 0) {
        /* Nothing is forgotten: the next commit fsyncs them again. */
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, taken);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
            g_hash_table_iter_steal(&it);
            g_hash_table_add(c->commit_objs, k);
        }
        g_hash_table_destroy(taken);
        return r;
    }
    g_hash_table_destroy(taken);
    /* Phase 2, locked as any commit: the objects written meanwhile. */
    return db_commit(c, err);
}

/* Snapshot connections for index copies. */
int db_snapshot_open(Core *c, sqlite3 **snap, int64_t *index_seq, GError **err)
{
    *snap = NULL;
    const char *file = sqlite3_db_filename(c->db, "main");
    if (!file || !*file)
        return core_fail(err, EIO, "catalog: no file to open a snapshot of");
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        int r = core_fail(err, EIO, "catalog snapshot %s: %s", file,
                          db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, 5000);
    /* The read transaction starts with the first read: from then on the
     * connection sees the last commit, and nothing committed later. */
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='index_seq'", -1,
                                &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        *index_seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK) {
        int r = core_fail(err, EIO, "catalog snapshot %s: %s", file, sqlite3_errmsg(db));
        sqlite3_close(db);
        return r;
    }
    *snap = db;
    return 0;
}

int db_snapshot_copy(sqlite3 *snap, const char *path, GError **err)
{
    sqlite3 *dst = NULL;
    int r;
    if (sqlite3_open(path, &dst) != SQLITE_OK) {
        r = core_fail(err, EIO, "index copy %s: %s", path, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return r;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", snap, "main");
    if (!b) {
        r = core_fail(err, EIO, "index copy: %s", sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return r;
    }
    /* One step copies every page while the source's read transaction is
     * open, and that transaction was opened before (db_snapshot_open) and
     * stays open: the copy is the one committed state it sees, even if the
     * writer commits meanwhile. SQLite restarts a backup when the source
     * changes between steps; should a step ever return before the end, the
     * next ones (still inside the same read transaction) copy the same
     * state, so a restart is harmless. */
    int rc = sqlite3_backup_step(b, -1);
    for (int tries = 0; (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
                        tries < 1000; tries++) {
        if (rc != SQLITE_OK)
            g_usleep(5000);
        rc = sqlite3_backup_step(b, -1);
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        r = core_fail(err, EIO, "index copy: %s", sqlite3_errstr(rc));
        sqlite3_close(dst);
        return r;
    }
    sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    sqlite3_close(dst);
    return 0;
}

void db_snapshot_close(sqlite3 *snap)
{
    if (!snap)
        return;
    sqlite3_exec(snap, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(snap);
}

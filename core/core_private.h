/* core_private.h — the Core structure and the internal interfaces shared by
 * the files of core/. Not to be included outside core/.
 *
 * Locks (lock order, outermost first):
 *   0. Core.gate      (gate.c) writes and truncates pass it from "make the
 *                     version writable" until their extents are recorded;
 *                     snapshot creation closes it and waits for them, so
 *                     a snapshot never sees half of a write. Gate.lock is
 *                     only held inside the gate functions.
 *   1. Core.lock      the catalog connection and every field of Core marked
 *                     [lock]; held for catalog work only, never across a
 *                     cache_read/cache_write (their fill callback takes it)
 *                     nor across tape I/O. Two long waits run without it:
 *                     the cache fsyncs of the flusher's group commits
 *                     (db_group_commit: the objects written so far are
 *                     taken out of commit_objs, fsync'ed unlocked, and
 *                     every other db_commit waits on Core.commit_cond
 *                     until that is over) and the copy of the catalog for
 *                     an index (through a second, read-only connection
 *                     pinned at the last commit, see db_snapshot_open).
 *                     Every operation opens and ends its SAVEPOINT within
 *                     one hold of Core.lock: nothing waits or unlocks
 *                     while one is open.
 *   2. Flusher.lock   the flusher's queue and requests (flusher.c).
 *   3. Flusher.plock  parts reported by the taper's device thread.
 *   3. Recall.lock    open part handles and the read-ahead buffer
 *                     (recall.c); a leaf: nothing is taken inside it.
 * Cache and tape functions are called with at most Core.lock held and
 * then only those that never call back into the core (create, delete,
 * fsync in writeback mode, truncate, dirty_slices, mark_clean).
 */
#pragma once

#include "core/core.h"

#include "cache/cache.h"
#include "tape/tape.h"

#include <sqlite3.h>

#define CORE_INF INT64_MAX     /* death of a live row */
#define CORE_ID_MASK ((1ULL << CORE_VIEW_SHIFT) - 1)

/* ---- errors (error.c) ------------------------------------------------ */
int core_fail(GError **err, int errnum, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Re-tag an error from another layer; returns -code. */
int core_fail_from(GError **err, GError *src, int fallback, const char *what);

/* ---- configuration file (config.c) ----------------------------------- */
typedef struct {
    unsigned version;
    char store_id[TAPE_STORE_ID_LEN + 1];
    uint32_t block_size;
    uint64_t part_size;
    uint64_t volume_size;
    unsigned volumes;
    char *library;   /* as written: relative to the store or absolute */
} StoreConfig;

int config_write(const char *path, const StoreConfig *cfg, GError **err);
int config_read(const char *path, StoreConfig *cfg, GError **err);
void config_clear(StoreConfig *cfg);
/* Library directory of a store (g_free). */
char *config_library_path(const char *store_dir, const StoreConfig *cfg);

/* ---- the snapshot gate (gate.c) ---------------------------------------- */
typedef struct {
    GMutex lock;
    GCond cond;
    unsigned writers;   /* writes between prepare and record */
    bool snapshot;      /* a snapshot is waiting or being created */
} Gate;

void gate_init(Gate *g);
void gate_clear(Gate *g);
void gate_enter_write(Gate *g);
void gate_leave_write(Gate *g);
void gate_enter_snapshot(Gate *g);
void gate_leave_snapshot(Gate *g);

/* ---- the Core ---------------------------------------------------------- */
typedef struct Flusher Flusher;
typedef struct Recall Recall;

/* Per cache object with data not yet on tape. */
typedef struct {
    uint64_t obj;
    gint64 since;         /* monotonic us when it became dirty */
    bool flushing;        /* a flush of it is running */
    int64_t ino;          /* owning inode id, -1 = not known yet */
    uint64_t end;         /* end of its written bytes, 0 = not known yet
                             (an upper bound: truncation does not lower it) */
    GArray *rewritten;    /* (uint64 off, uint64 end) pairs written while
                             flushing: their extents stay on the object */
    uint64_t flush_read;  /* while flushing: writes from here on are not
                             rewrites (the flush has not read that far;
                             a stream moves it forward as it reads);
                             UINT64_MAX for batch flushes */
    GArray *pending;      /* (off, end) pairs of writes between their
                             cache_write and their catalog record; a flush
                             that starts meanwhile treats them as rewritten */
} DirtyObj;

typedef struct {
    uint64_t ino;
    int flags;
    bool writer;
    bool dir;
    GPtrArray *names;     /* opendir: snapshot of the entries */
    GArray *children;     /* uint64 inode numbers */
} CoreHandle;

struct Core {
    Gate gate;
    GMutex lock;
    char *dir;
    StoreConfig cfg;
    CoreOpenOptions opt;
    int lock_fd;
    TapeLibrary *lib;
    Cache *cache;
    Flusher *fl;
    Recall *rc;

    sqlite3 *db;                /* [lock] */
    GHashTable *stmts;          /* [lock] sql text -> sqlite3_stmt */
    bool txn_dirty;             /* [lock] changes since the last commit */
    gint64 last_commit;         /* [lock] */
    GHashTable *commit_objs;    /* [lock] objects written since the last
                                   commit (since the last one began its
                                   unlocked fsyncs, while those run) */
    GHashTable *commit_stolen;  /* [lock] the objects a db_group_commit is
                                   fsyncing with Core.lock released; NULL
                                   when none is (the table itself is only
                                   read meanwhile) */
    GCond commit_cond;          /* with Core.lock: commit_stolen went NULL */
    GArray *after_commit;       /* [lock] cache objects (uint64) to delete
                                   once a commit has removed every row that
                                   pointed at them (db_commit runs them) */
    GThreadPool *fsync_pool;    /* cache fsyncs of a group commit (created
                                   under Core.lock, then never changed) */
    int64_t gen;                /* [lock] current generation G */
    int64_t max_snap;           /* [lock] newest snapshot generation or 0 */
    uint64_t next_id;           /* [lock] next inode id */
    uint64_t next_version;      /* [lock] next file version / object id */
    uint64_t next_dumpfile;     /* [lock] */
    uint64_t index_seq;         /* [lock] */
    bool index_stale;           /* [lock] commits since the last index */
    uint64_t index_commits;     /* [lock] `commits` when the newest index's
                                   catalog copy was taken */
    uint64_t commits;           /* [lock] catalog commits so far */
    unsigned op_depth;          /* [lock] nesting of db_op_begin */
    bool op_open;               /* [lock] the SAVEPOINT of an operation is open */
    guint op_mark;              /* [lock] after_commit length at its start */
    GHashTable *lookups;        /* [lock] ino -> lookup count */
    GHashTable *opens;          /* [lock] live id -> open count */
    GHashTable *writers;        /* [lock] live id -> writer count */
    GHashTable *append_end;     /* [lock] live id -> end reserved by O_APPEND
                                   writes in flight (ops_file.c) */
    GHashTable *handles;        /* [lock] fh -> CoreHandle* */
    uint64_t next_fh;           /* [lock] */
    GHashTable *dirty;          /* [lock] obj -> DirtyObj* */
    uint64_t bytes_to_tape;     /* [lock] */
    double taper_seconds;       /* [lock] */
    uint64_t bytes_recalled;    /* [lock] */
    int last_error;             /* [lock] */
    char last_error_msg[256];   /* [lock] */
};

/* ---- catalog database (catalog_db.c) ---------------------------------- */
int db_open(Core *c, const char *path, bool create, GError **err);
void db_close(Core *c);
/* Prepared (cached) statement with `fmt` bindings: i = int64, u = uint64,
 * t = text, b = blob (pointer, int length). Reset on the next use. */
sqlite3_stmt *db_q(Core *c, const char *sql, const char *fmt, ...);
/* Run a statement to completion: 0 or -EIO. */
int db_x(Core *c, GError **err, const char *sql, const char *fmt, ...);
int db_fail(Core *c, GError **err, const char *what);
int64_t db_meta_get(Core *c, const char *key, int64_t dflt);
int db_meta_set(Core *c, const char *key, int64_t value, GError **err);
/* Group commit: make written cache objects durable, COMMIT, BEGIN.
 * Core.lock held throughout; when a db_group_commit is fsyncing without
 * it, waits (Core.commit_cond) for that to end first, releasing Core.lock
 * meanwhile, so callers must not hold an operation open (the snapshot
 * operations, which commit as their last step, wait with
 * db_commit_wait_idle before they open theirs). */
int db_commit(Core *c, GError **err);
/* The same commit, but the cache objects written so far are fsync'ed with
 * Core.lock released (writes and other operations go on; those written
 * meanwhile are fsync'ed after, with the lock held, then COMMIT). Core.lock
 * held on entry and on return; no operation open (op_depth == 0). On an
 * fsync error nothing commits and every object stays to be fsync'ed. */
int db_group_commit(Core *c, GError **err);
/* Wait (releasing Core.lock meanwhile) until no db_group_commit is
 * fsyncing. Core.lock held, no operation open. */
void db_commit_wait_idle(Core *c);
/* Note that a row now points at data of cache object `obj`. */
void db_note_object(Core *c, uint64_t obj);
/* Delete cache object `obj` after the next successful commit, if no row
 * points at it then. The committed catalog may still reference it until
 * then, and a crash before the commit reopens that catalog. */
void db_delete_after_commit(Core *c, uint64_t obj);
/* One operation is atomic in the catalog: db_op_begin opens a SAVEPOINT
 * (nested calls join the outer one); db_op_end(rc) releases it, or on
 * rc < 0 rolls every catalog change of the operation back first, so the
 * next group commit never makes half an operation durable. Returns rc.
 * A db_commit inside an operation ends its savepoint (used only as an
 * operation's last step). */
void db_op_begin(Core *c);
int db_op_end(Core *c, int rc);
/* A second, read-only connection to the catalog file with a read
 * transaction open: it sees the catalog as of the last commit and keeps
 * seeing exactly that (WAL) whatever the writer commits later. Core.lock
 * held (so the last commit is the caller's). *index_seq = the meta
 * index_seq it sees. */
int db_snapshot_open(Core *c, sqlite3 **snap, int64_t *index_seq, GError **err);
/* Copy what `snap` sees into a new database at `path` (sqlite3_backup);
 * no core lock needed (the connection is the caller's alone). */
int db_snapshot_copy(sqlite3 *snap, const char *path, GError **err);
/* End the read transaction and close (NULL is fine). */
void db_snapshot_close(sqlite3 *snap);
int db_create_schema(sqlite3 *db, GError **err);

/* ---- catalog rows (catalog_inode.c, catalog_dirent.c, catalog_xattr.c) */
typedef struct {
    uint64_t id;
    int64_t birth, death;
    uint32_t mode;
    uint32_t uid, gid;
    uint64_t size;
    int64_t atime, mtime, ctime; /* ns */
    uint32_t nlink;
    uint64_t rdev;
    char *target;
    uint64_t version;
} InodeRow;

/* `view` 0 = live tree, else a snapshot generation. -ENOENT if missing. */
int inode_get(Core *c, int64_t view, uint64_t id, InodeRow *r, GError **err);
int inode_insert(Core *c, InodeRow *r, GError **err);
/* Store changes to a live row (copy-on-write when a snapshot sees it). */
int inode_put(Core *c, InodeRow *r, GError **err);
/* The live inode ends (its xattrs too; its version is released). */
int inode_kill(Core *c, InodeRow *r, GError **err);
void inode_row_clear(InodeRow *r);
void inode_to_stat(Core *c, int64_t view, const InodeRow *r, struct stat *st);
int64_t core_now_ns(void);

int dirent_get(Core *c, int64_t view, uint64_t parent, const char *name,
               uint64_t *child, GError **err);
int dirent_add(Core *c, uint64_t parent, const char *name, uint64_t child,
               GError **err);
int dirent_remove(Core *c, uint64_t parent, const char *name, GError **err);
/* Names and children of a directory, sorted by name. */
int dirent_list(Core *c, int64_t view, uint64_t parent, GPtrArray *names,
                GArray *children, GError **err);
bool dirent_has_children(Core *c, uint64_t parent);

int xattr_get(Core *c, int64_t view, uint64_t id, const char *name,
              GBytes **value, GError **err);
int xattr_set(Core *c, uint64_t id, const char *name, const void *v,
              size_t len, GError **err);
int xattr_remove(Core *c, uint64_t id, const char *name, GError **err);
int xattr_list(Core *c, int64_t view, uint64_t id, GPtrArray *names,
               GError **err);
int xattr_kill_all(Core *c, uint64_t id, GError **err);

/* ---- versions and extents (catalog_extent.c) -------------------------- */
enum { EXT_DUMP = 0, EXT_OBJECT = 1, EXT_LOST = 2 };

typedef struct {
    uint64_t off, len;
    int kind;
    uint64_t ref;      /* dumpfile id or object id */
    uint64_t ref_off;  /* offset inside the dumpfile or object */
} Extent;

int version_new(Core *c, uint64_t ino, uint64_t *version, GError **err);
int64_t version_birth(Core *c, uint64_t version);
/* Copy every extent of `from` to the new version `to`. */
int extent_copy(Core *c, uint64_t from, uint64_t to, GError **err);
/* Make [off, off+len) of `version` map to (kind, ref, ref_off). */
int extent_set(Core *c, uint64_t version, uint64_t off, uint64_t len,
               int kind, uint64_t ref, uint64_t ref_off, GError **err);
/* Remove every mapping at or past `size`. */
int extent_truncate(Core *c, uint64_t version, uint64_t size, GError **err);
/* Extents overlapping [off, off+len), in order (GArray of Extent). */
GArray *extent_list(Core *c, uint64_t version, uint64_t off, uint64_t len);
/* Object range [obj_off, obj_off+len) is now at dumpfile `df` offset
 * `df_off`: rewrite every extent of every version that points into it. */
int extent_rewrite_object(Core *c, uint64_t obj, uint64_t obj_off,
                          uint64_t len, uint64_t df, uint64_t df_off,
                          GError **err);
/* Release a version nobody references any more: its extents, and cache
 * objects and dumpfiles that become unreferenced. */
int version_release_if_unused(Core *c, uint64_t version, GError **err);
bool object_referenced(Core *c, uint64_t obj);
/* Mark dumpfiles no extent references as garbage. */
int dumpfile_mark_garbage(Core *c, GError **err);

/* ---- views and inode numbers (view.c) --------------------------------- */
static inline int64_t ino_view(uint64_t ino)
{
    return ino == CORE_SNAPDIR_INO ? 0 : (int64_t)(ino >> CORE_VIEW_SHIFT);
}
static inline uint64_t ino_id(uint64_t ino) { return ino & CORE_ID_MASK; }
static inline uint64_t ino_make(int64_t view, uint64_t id)
{
    return ((uint64_t)view << CORE_VIEW_SHIFT) | id;
}
/* Does snapshot generation `view` exist? */
bool view_exists(Core *c, int64_t view);
void snapdir_stat(Core *c, struct stat *st);
int snapshot_root_stat(Core *c, int64_t gen, struct stat *st, GError **err);
int64_t snapshot_find(Core *c, const char *name);
void lookup_ref(Core *c, uint64_t ino, uint64_t n);
/* Delete a live inode with no links once nobody has it open/looked up. */
int inode_reap_if_unused(Core *c, uint64_t id, GError **err);
int core_snapshot_create_locked(Core *c, const char *name, GError **err);
int core_snapshot_delete_locked(Core *c, const char *name, GError **err);

/* ---- namespace (ops_namei.c) ---------------------------------------- */
int core_make_node_locked(Core *c, uint64_t parent, const char *name, mode_t mode,
                          const CoreCred *cred, struct stat *st, uint64_t *id,
                          GError **err);

bool core_has_writers_locked(Core *c, uint64_t id);

/* ---- file data (filedata.c) ------------------------------------------- */
/* Cache fill callback: bytes of an object's version, from its extents. */
int filedata_fill(void *owner, uint64_t obj, uint64_t offset, void *buf,
                  size_t len);
int filedata_cache_flush(void *owner, uint64_t obj);
void filedata_need_space(void *owner);
/* Truncate a live regular file (called with the lock held; COW aware). */
int filedata_truncate_locked(Core *c, InodeRow *r, uint64_t size,
                             GError **err);
/* Make the live file's version writable (COW if a snapshot sees it). */
int filedata_prepare_write_locked(Core *c, InodeRow *r, GError **err);
DirtyObj *dirty_mark_locked(Core *c, uint64_t obj);
/* Append the pair (a, b) to *arr (created if NULL). */
void range_add(GArray **arr, uint64_t a, uint64_t b);
/* Remove one pair (a, b) from arr, if present. */
void range_remove(GArray *arr, uint64_t a, uint64_t b);
/* The pieces of [a, b) not covered by the (start, end) pairs of `excl`
 * (NULL = none), as pairs in `out` (emptied first). */
void range_subtract(uint64_t a, uint64_t b, GArray *excl, GArray *out);

/* ---- recall (recall.c) ------------------------------------------------ */
Recall *recall_new(Core *c);
void recall_free(Recall *rc);
/* Read dumpfile bytes: called without Core.lock. */
int recall_read(Recall *rc, uint64_t dumpfile, uint64_t off, void *buf,
                size_t len, GError **err);
void recall_forget_parts(Recall *rc);

/* ---- flusher (flusher.c) ---------------------------------------------- */
Flusher *flusher_new(Core *c);
/* Stop the thread (after a final flush by the caller). */
void flusher_free(Flusher *fl);
/* Wake the flusher: something may be worth flushing. */
void flusher_kick(Flusher *fl);
/* Dirty bytes are over the limit: flush everything soon (never blocks). */
void flusher_urgent(Flusher *fl);
/* Flush every dirty object (objs NULL) or the given ones; with `index`,
 * also write an index. Blocks until done. */
int flusher_run(Flusher *fl, GArray *objs, bool index, GError **err);

/* ---- index (index.c) -------------------------------------------------- */
/* Start an index: next index sequence, a dumpfile id, a commit, and a
 * copy of the catalog exactly as that commit left it in STORE/tmp (*path,
 * g_free; the caller writes it to tape and unlinks it). Called WITHOUT
 * Core.lock: it takes the lock for the commit and releases it for the
 * copy. */
int index_prepare(Core *c, uint64_t *seq, uint64_t *id, char **path, GError **err);

/* ---- open-time cache reconciliation (reconcile.c) ----------------------- */
/* Bring dirty cache bytes no committed extent points at back to what the
 * catalog says (after a crash). Before the flusher starts; no lock held. */
int reconcile_cache(Core *c, GError **err);

/* ---- manifests (manifest.c) -------------------------------------------- */
enum { MANIFEST_ON_TAPE = 0, MANIFEST_NOT_ON_TAPE = 2 };

typedef struct {
    uint64_t off, len;     /* range of the file */
    uint32_t kind;         /* MANIFEST_ON_TAPE or MANIFEST_NOT_ON_TAPE */
    uint64_t dumpfile;     /* on tape: dumpfile id and offset in it */
    uint64_t df_off;
} ManifestExtent;

typedef struct {
    uint64_t ino, version, size;
    uint32_t mode, uid, gid;
    int64_t atime, mtime, ctime;  /* ns */
    GPtrArray *paths;      /* its live paths ("/a/b"), at least one */
    GArray *extents;       /* ManifestExtent, ascending, not overlapping */
} ManifestEntry;

typedef struct {
    uint64_t dumpfile;     /* the manifest's own dumpfile id */
    uint64_t index_seq;    /* newest index sequence when it was written */
    uint64_t generation;   /* catalog generation G then */
    int64_t ctime;         /* ns */
    GPtrArray *entries;    /* ManifestEntry* */
} Manifest;

/* After a flush round (flusher thread, no lock held): name on tape the
 * data dumpfiles recorded since the newest manifest. A failure
 * is logged; the next round names the same data again. */
void manifest_write_round(Core *c, TapeTaper *taper);
GByteArray *manifest_encode(const Manifest *m);
/* NULL with -EBADMSG (damaged) or -ENOTSUP (unknown version) in err. */
Manifest *manifest_decode(const void *buf, size_t len, GError **err);
void manifest_free(Manifest *m);
void manifest_entry_free(gpointer e);

/* ---- recovery (recover.c, recover_manifest.c) ------------------------- */
/* One finished tape file found by the recovery scan. */
typedef struct {
    uint64_t df, gen, off, len;
    uint32_t partnum, fileno, kind;
    bool last;
    uint8_t xxh128[16];
    char volume[TAPE_VOLUME_NAME_MAX];
} RecoverPart;

/* Complete dumpfiles in `parts` (sorted by dumpfile, generation, offset):
 * (first, count) ranges whose parts cover them from 0 to a last part. */
typedef struct {
    guint first, count;  /* range in the sorted part list */
    uint64_t df, gen;
} RecoverDumpfile;
GArray *recover_complete_dumpfiles(GArray *parts);
/* Read a whole dumpfile, every part verified first (block checksums and
 * the part's XXH3-128), into `out` (appended at the dumpfile offsets). */
int recover_read_dumpfile(TapeLibrary *lib, GArray *parts, guint first, guint count,
                          GByteArray *out, GError **err);
void recover_note(GPtrArray *notes, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Bring forward into the restored catalog `db` the files named by the
 * manifests written after index dumpfile `index_df` (`parts`: every
 * finished tape file on the volumes, sorted). Paths of files whose newer
 * data cannot be found go to `lost`, reasons to `notes`. */
int recover_after_index(sqlite3 *db, TapeLibrary *lib, GArray *parts, uint64_t index_df,
                        GPtrArray *lost, GPtrArray *notes, GError **err);

/* ---- misc ------------------------------------------------------------- */
void core_set_error(Core *c, int e, const char *msg);
/* The test hook of CoreOpenOptions, if any; no core lock held. */
static inline void core_test_point(Core *c, int point)
{
    if (c->opt.test_hook)
        c->opt.test_hook(c->opt.test_hook_arg, point);
}

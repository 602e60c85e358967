/* core.h — the public interface of the core: a store (configuration,
 * catalog, cache, library), the filesystem operations on it, snapshots,
 * the flusher that moves dirty file data to tape, recall, the index on
 * tape and recovery.
 *
 * The filesystem operations are inode-number based and map one to one onto
 * libfuse's low-level operations, so that fs/ only translates. Inode
 * numbers: the live tree uses catalog ids (CORE_ROOT_INO = 1); snapshot g
 * uses (g << CORE_VIEW_SHIFT) | id; CORE_SNAPDIR_INO is the virtual
 * `.snapshots` directory, found by lookup(root, ".snapshots") but not
 * listed by readdir(root). Everything reached through a snapshot is
 * read-only: writes fail with -EROFS here already.
 *
 * Errors: negative errno; when `err` is not NULL a one-line message is set
 * (domain CORE_ERROR, code = the positive errno). Bad input never asserts
 * and changes nothing.
 *
 * Thread safety and locks: every function may be called from any thread
 * on an open Core, except core_store_close (no other call during or after
 * it) and core_recover (no Core involved). Inside, the locks are taken in
 * this order, outermost first: the snapshot gate (writes and truncations
 * shared, snapshot creation exclusive), Core.lock (the catalog connection
 * and all in-memory state; never held across cache reads/writes, tape
 * I/O, the cache fsyncs of the flusher's group commits or the copy of the
 * catalog for an index), the flusher's locks, and the recall lock (a leaf). No core lock
 * is held while a caller's callback (CoreDirFill) runs except Core.lock
 * during readdir, so a fill callback must not call back into the Core.
 * core_private.h has the full list; docs/ARCHITECTURE.md the reasons.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

GQuark core_error_quark(void);
#define CORE_ERROR (core_error_quark())

typedef struct Core Core;

#define CORE_ROOT_INO 1ULL
#define CORE_VIEW_SHIFT 40
#define CORE_SNAPDIR_INO ((1ULL << CORE_VIEW_SHIFT) - 1)
#define CORE_SNAPDIR_NAME ".snapshots"

/* ------------------------------------------------------------------ */
/* Store                                                              */

typedef struct {
    unsigned volumes;      /* virtual volumes to create (default 4) */
    uint64_t volume_size;  /* bytes per volume (default 8 GiB) */
    uint64_t part_size;    /* payload bytes per part (default 1 GiB) */
    uint32_t block_size;   /* tape and cache block size (default 64 KiB) */
    const char *library;   /* library directory; NULL = STORE/library */
} CoreMkfsOptions;

void core_mkfs_options_init(CoreMkfsOptions *o);
/* Create a new store in `dir` (must be missing or empty). */
int core_store_create(const char *dir, const CoreMkfsOptions *o,
                      GError **err);

typedef enum {
    CORE_CACHE_WRITEBACK,    /* fsync makes the cache durable (default) */
    CORE_CACHE_WRITETHROUGH, /* fsync also puts the file on tape */
    CORE_CACHE_UNSAFE,       /* fsync only commits the catalog */
} CoreCacheMode;

typedef struct {
    CoreCacheMode cache_mode;
    uint64_t cache_size;       /* bytes; 0 = unlimited */
    unsigned cache_hi, cache_lo; /* reclaim thresholds in % (95, 80) */
    bool cache_on_read;        /* keep recalled blocks (default true) */
    size_t ring_size;          /* taper ring (default 16 MiB) */
    unsigned sync_interval;    /* seconds between index writes; 0 = only
                                  at sync and close (default 300) */
    uint64_t bundle_threshold; /* files below this are bundled (1 MiB) */
    uint64_t bundle_size;      /* a bundle is written once its pending
                                  files reach this many bytes (64 MiB) */
    unsigned bundle_delay;     /* ... or the oldest waited this many
                                  seconds (default 5) */
    uint64_t dirty_threshold;  /* flush everything when dirty bytes pass
                                  this; 0 = only when the cache asks */
    uint64_t stream_chunk;     /* a file still being written starts
                                  streaming to tape (one dumpfile that
                                  follows the writer) once this many bytes
                                  of it are dirty (default 16 MiB; 0 =
                                  only once closed) */
    unsigned commit_interval_ms; /* group commit period (default 1000) */
    unsigned dirty_wait_ms;    /* writers wait this long for cache space
                                  before -ENOSPC (default 30000) */
    bool no_flusher_triggers;  /* tests: flush only on explicit request */
    /* Tests only (leave NULL): called with no core lock held, on the thread
     * that reaches one of the points of CoreTestPoint, which then waits
     * until the hook returns. */
    void (*test_hook)(void *arg, int point);
    void *test_hook_arg;
} CoreOpenOptions;

/* Where CoreOpenOptions.test_hook is called. */
typedef enum {
    /* A group commit is making the cache objects written before it
     * durable, with Core.lock released (the flusher's group commits). */
    CORE_TEST_COMMIT_FSYNC = 1,
    /* An index is about to copy the committed catalog, with Core.lock
     * released. */
    CORE_TEST_INDEX_COPY = 2,
} CoreTestPoint;

void core_open_options_init(CoreOpenOptions *o);
/* Open a store: refused with -EBUSY when another process has it open,
 * -ENOENT/-EINVAL for a missing or damaged store, -EMEDIUMTYPE when the
 * cache or a volume belongs to another store. */
Core *core_store_open(const char *dir, const CoreOpenOptions *o,
                      GError **err);
/* Flush everything, write the index, close. Returns the first error seen
 * while flushing (the store is closed anyway; dirty data stays in the
 * cache for the next open). */
int core_store_close(Core *c, GError **err);
/* Make every dirty byte and the catalog durable on tape and write an
 * index. -EIO when some data could not be written (it stays dirty). */
int core_sync(Core *c, GError **err);
/* Flush dirty data to tape (no index). */
int core_flush_all(Core *c, GError **err);
/* Evict every clean cache block (tests, benchmarks). */
int core_drop_cache(Core *c, GError **err);
const char *core_store_id(Core *c);

/* ------------------------------------------------------------------ */
/* Filesystem operations (libfuse low-level shape)                    */

typedef struct {
    uid_t uid;
    gid_t gid;
} CoreCred;

/* Attribute change mask for core_setattr (same meaning as FUSE_SET_ATTR_*). */
enum {
    CORE_SET_MODE = 1 << 0,
    CORE_SET_UID = 1 << 1,
    CORE_SET_GID = 1 << 2,
    CORE_SET_SIZE = 1 << 3,
    CORE_SET_ATIME = 1 << 4,
    CORE_SET_MTIME = 1 << 5,
    CORE_SET_ATIME_NOW = 1 << 7,
    CORE_SET_MTIME_NOW = 1 << 8,
    CORE_SET_CTIME = 1 << 10,
};

/* rename flags (same values as the kernel's). */
#define CORE_RENAME_NOREPLACE (1u << 0)
#define CORE_RENAME_EXCHANGE (1u << 1)

/* lookup and every entry-creating call count one lookup on success. */
int core_lookup(Core *c, uint64_t parent, const char *name, struct stat *st,
                GError **err);
void core_forget(Core *c, uint64_t ino, uint64_t nlookup);
int core_getattr(Core *c, uint64_t ino, struct stat *st, GError **err);
int core_setattr(Core *c, uint64_t ino, const struct stat *attr, int to_set,
                 struct stat *out, GError **err);
/* *target is g_malloc'ed. */
int core_readlink(Core *c, uint64_t ino, char **target, GError **err);
int core_mknod(Core *c, uint64_t parent, const char *name, mode_t mode,
               dev_t rdev, const CoreCred *cred, struct stat *st,
               GError **err);
int core_mkdir(Core *c, uint64_t parent, const char *name, mode_t mode,
               const CoreCred *cred, struct stat *st, GError **err);
int core_symlink(Core *c, const char *target, uint64_t parent,
                 const char *name, const CoreCred *cred, struct stat *st,
                 GError **err);
int core_link(Core *c, uint64_t ino, uint64_t newparent, const char *newname,
              struct stat *st, GError **err);
int core_unlink(Core *c, uint64_t parent, const char *name, GError **err);
int core_rmdir(Core *c, uint64_t parent, const char *name, GError **err);
int core_rename(Core *c, uint64_t parent, const char *name,
                uint64_t newparent, const char *newname, unsigned flags,
                GError **err);

/* Files. `flags` are open(2) flags; *fh identifies the open file. */
int core_open(Core *c, uint64_t ino, int flags, uint64_t *fh, GError **err);
int core_create(Core *c, uint64_t parent, const char *name, mode_t mode,
                int flags, const CoreCred *cred, struct stat *st,
                uint64_t *fh, GError **err);
/* Bytes read (short only at end of file) or a negative errno. */
ssize_t core_read(Core *c, uint64_t ino, uint64_t fh, void *buf,
                  size_t size, off_t off, GError **err);
ssize_t core_write(Core *c, uint64_t ino, uint64_t fh, const void *buf,
                   size_t size, off_t off, GError **err);
int core_flush(Core *c, uint64_t ino, uint64_t fh, GError **err);
int core_release(Core *c, uint64_t ino, uint64_t fh, GError **err);
int core_fsync(Core *c, uint64_t ino, uint64_t fh, bool datasync,
               GError **err);

/* Directories. readdir calls `fill` for entries from position `off` on;
 * fill returns true when its buffer is full (that entry is then not
 * consumed). `next` is the offset to continue after the entry. With
 * `plus`, each consumed entry other than "." and ".." counts one lookup. */
typedef bool (*CoreDirFill)(void *ctx, const char *name,
                            const struct stat *st, off_t next);
int core_opendir(Core *c, uint64_t ino, uint64_t *fh, GError **err);
int core_readdir(Core *c, uint64_t ino, uint64_t fh, off_t off, bool plus,
                 CoreDirFill fill, void *ctx, GError **err);
int core_releasedir(Core *c, uint64_t ino, uint64_t fh, GError **err);

int core_statfs(Core *c, struct statvfs *st, GError **err);

/* Extended attributes. getxattr/listxattr with size 0 return the size
 * needed; -ERANGE when `size` is too small. Virtual read-only attributes
 * of regular files: user.tapefs.state, one of "lost" (some data was lost
 * in a recovery), "dirty" (some data only in the cache), "cached" (all on
 * tape, some or all also in the cache), "on-tape" (all on tape, nothing
 * cached); and user.tapefs.parts (the parts holding the data). */
#define CORE_XATTR_CREATE 1  /* XATTR_CREATE */
#define CORE_XATTR_REPLACE 2 /* XATTR_REPLACE */
int core_setxattr(Core *c, uint64_t ino, const char *name, const void *value,
                  size_t size, int flags, GError **err);
ssize_t core_getxattr(Core *c, uint64_t ino, const char *name, void *value,
                      size_t size, GError **err);
ssize_t core_listxattr(Core *c, uint64_t ino, char *list, size_t size,
                       GError **err);
int core_removexattr(Core *c, uint64_t ino, const char *name, GError **err);

/* ------------------------------------------------------------------ */
/* Snapshots                                                          */

typedef struct {
    char *name;
    uint64_t generation;
    int64_t ctime; /* seconds since the epoch */
} CoreSnapshotInfo;

int core_snapshot_create(Core *c, const char *name, GError **err);
int core_snapshot_delete(Core *c, const char *name, GError **err);
/* GPtrArray of CoreSnapshotInfo* in generation order (frees itself). */
GPtrArray *core_snapshot_list(Core *c, GError **err);

/* ------------------------------------------------------------------ */
/* Status, dumps, check                                               */

typedef struct {
    char store_id[40];
    uint64_t generation;        /* current catalog generation */
    uint64_t snapshots;
    uint64_t inodes;            /* live */
    uint64_t dirty_bytes;       /* in the cache, not on tape */
    uint64_t cache_bytes;       /* clean + dirty */
    uint64_t cache_size_limit;
    uint64_t cache_hits, cache_misses;
    uint64_t dumpfiles, dumpfile_bytes;
    uint64_t garbage_dumpfiles, garbage_bytes; /* on tape, unreferenced */
    uint64_t parts;
    uint64_t volumes, volumes_full;
    uint64_t volume_bytes_used, volume_bytes_total;
    uint64_t bytes_to_tape;     /* since open */
    double taper_seconds;       /* time spent writing them */
    uint64_t bytes_recalled;
    uint64_t index_sequence;    /* newest index written */
    int last_error;             /* negative errno of the last failed flush */
    char last_error_msg[256];
} CoreStatus;

int core_status(Core *c, CoreStatus *st, GError **err);

typedef struct {
    uint32_t partnum;
    uint64_t offset, length;
    char volume[32];
    uint32_t fileno;
} CorePartInfo;

typedef struct {
    uint64_t id;
    uint32_t kind;        /* CORE_DUMP_* */
    uint64_t generation;
    uint64_t length;
    uint32_t nfiles;      /* files it holds (bundles: many) */
    bool garbage;         /* nothing references it any more */
    GArray *parts;        /* CorePartInfo */
} CoreDumpInfo;

/* A manifest names the files whose data a flush round put on tape, so
 * recovery can bring them forward past the newest index. */
enum { CORE_DUMP_FILE = 1, CORE_DUMP_BUNDLE = 2, CORE_DUMP_INDEX = 3, CORE_DUMP_MANIFEST = 4 };

/* GPtrArray of CoreDumpInfo* (frees itself). */
GPtrArray *core_dumps(Core *c, GError **err);

/* Catalog consistency check; with `deep`, every part is read and
 * verified. Problems are appended to `problems` (strings) when given.
 * Returns 0 when the store is consistent, -EUCLEAN otherwise. */
int core_check(Core *c, bool deep, GPtrArray *problems, GError **err);

/* Rebuild a store in `new_store_dir` from the volumes in `library_dir`
 * alone: the newest complete index is restored and the store keeps its id;
 * then the files that manifests written after it name are brought forward
 * where their data is on tape and verifies. Paths of files whose data
 * cannot be found (only in the old cache at index time, or newer data
 * that a manifest names but that is damaged or missing) are appended to
 * `lost` (strings) when given. Files whose data never reached tape after
 * the index cannot be named. */
int core_recover(const char *library_dir, const char *new_store_dir,
                 GPtrArray *lost, GError **err);
/* The same; `notes` (strings, when given) says which indexes were damaged
 * and skipped, and which one the store was rebuilt from, which manifests
 * were skipped, why each lost file after the index is lost, which files
 * were put under /recovered-after-index/ because their path was taken,
 * and how many files were brought forward from after the index. A failed
 * recovery leaves nothing in `new_store_dir`. */
int core_recover_notes(const char *library_dir, const char *new_store_dir,
                       GPtrArray *lost, GPtrArray *notes, GError **err);

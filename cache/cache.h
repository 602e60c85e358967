/* cache.h — the public interface of the block cache.
 *
 * cache/ knows nothing of tape or FUSE. It stores the bytes of numbered
 * objects (the core uses one object per file version) in fixed-size blocks,
 * one sparse file per object under a cache directory. Each block is
 * absent, clean (a copy of bytes that are safe elsewhere; evictable) or
 * dirty (the only copy; pinned until the owner marks it clean).
 *
 * Object offsets are byte offsets; any offset and length is accepted, and
 * unaligned heads and tails are read-modify-written. A read of a block that
 * is absent calls the owner's fill function, which supplies the block's
 * bytes (from tape, or zeros for a hole). The cache never knows an object's
 * logical size: that is the owner's business.
 *
 * Errors: negative errno, with a one-line message in *err where given
 * (domain CACHE_ERROR, code = the positive errno).
 *
 * Thread safety: every function may be called from any thread, on the same
 * or different objects. Callbacks (fill, flush, need_space) are called with
 * no cache lock held, so they may call back into the cache (for example a
 * fill that reads another object).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

GQuark cache_error_quark(void);
#define CACHE_ERROR (cache_error_quark())

typedef struct Cache Cache;

typedef enum {
    CACHE_WRITEBACK,    /* fsync persists the cache only (default) */
    CACHE_WRITETHROUGH, /* fsync also calls the owner's flush (to tape) */
    CACHE_UNSAFE,       /* fsync does nothing; for bulk loads */
} CacheMode;

/* Fill `len` (= block size) bytes of object `id` at block-aligned `offset`
 * into buf. Return 0 or a negative errno (the read then fails with it). */
typedef int (*CacheFillFn)(void *owner, uint64_t id, uint64_t offset,
                           void *buf, size_t len);
/* Writethrough: put object `id`'s dirty bytes somewhere safe (tape) and
 * mark them clean before returning. */
typedef int (*CacheFlushFn)(void *owner, uint64_t id);
/* Dirty bytes reached the limit: the owner should flush soon. Must not
 * block for long; writers are waiting. */
typedef void (*CacheNeedSpaceFn)(void *owner);

typedef struct {
    const char *dir;          /* cache directory (created if missing) */
    const char *store_id;     /* the directory must belong to this store */
    uint32_t block_size;      /* power of two, >= 4096; fixed at creation
                                 (0 = the directory's, or 65536 if new) */
    uint64_t size_limit;      /* cache_size in bytes; 0 = no limit */
    unsigned hi_pct, lo_pct;  /* reclaim thresholds (default 95, 80) */
    bool cache_on_read;       /* keep filled blocks as clean blocks */
    const char *cache_on_read_path; /* if set, cache-on-read is on only
                                       while this path exists (this then
                                       decides, not cache_on_read) */
    CacheMode mode;
    unsigned dirty_wait_ms;   /* how long a writer waits for space before
                                 -ENOSPC (default 30000) */
    unsigned max_open_files;  /* object files kept open at once; idle ones
                                 are closed past this (default 256; never
                                 more than a quarter of the soft
                                 RLIMIT_NOFILE at open, and lowered if
                                 the process runs out of descriptors) */
    CacheFillFn fill;
    CacheFlushFn flush;
    CacheNeedSpaceFn need_space;
    void *owner;
} CacheConfig;

/* Refuses (NULL, one-line *err) a directory of another store
 * (-EMEDIUMTYPE), of an unknown format version (-ENOTSUP), with a damaged
 * label (-EBADMSG), with another block size (-EINVAL), a non-empty
 * directory without a label (-ENOTEMPTY), or one already open (-EBUSY).
 * Dirty blocks of every object come back; clean ones are forgotten.
 * An object whose state file is damaged (or of another version, or
 * without its data file) does not stop the open: it is quarantined (see
 * cache_damaged_objects). */
Cache *cache_open(const CacheConfig *cfg, GError **err);
/* Makes every dirty block and state durable (in every mode), then frees.
 * No other call may run on the cache during or after it. */
void cache_close(Cache *c);
uint32_t cache_block_size(Cache *c);
void cache_set_mode(Cache *c, CacheMode mode);

/* Objects. create is idempotent; delete removes the bytes and the states,
 * dirty or not (the owner decides that the data is no longer wanted).
 * Ids are > 0 (0 stands for "all" in cache_drop_clean). Reading or writing
 * an object that was not created fails with -ENOENT.
 * cache_object_exists: created and not deleted since, across restarts
 * (its data file is there). Existence is cheap: an object with no block
 * cached holds no block table and no open file, and at open only objects
 * with dirty blocks are loaded; the others are loaded on first use, with
 * nothing cached (their clean bytes were forgotten at the restart). */
int cache_object_create(Cache *c, uint64_t id, GError **err);
bool cache_object_exists(Cache *c, uint64_t id);
int cache_object_delete(Cache *c, uint64_t id, GError **err);
/* Object ids that have dirty blocks (after a restart: what is still to
 * flush). GArray of uint64_t. */
GArray *cache_dirty_objects(Cache *c);

/* Object ids quarantined at open because their state file was damaged
 * (GArray of uint64_t, ascending). Their files are set aside as
 * "<name>.damaged" with a warning naming them; the object exists, but
 * every call on it except cache_object_exists/create/delete fails with
 * -EIO (its dirty bytes are unknown, so its reads never return zeros as
 * data). cache_object_delete removes it and the set-aside files. It stays
 * quarantined across restarts until deleted. */
GArray *cache_damaged_objects(Cache *c);

ssize_t cache_read(Cache *c, uint64_t id, uint64_t offset, void *buf,
                   size_t len, GError **err);
ssize_t cache_write(Cache *c, uint64_t id, uint64_t offset, const void *buf,
                    size_t len, GError **err);
/* Forget everything at or past `size` (the partial last block is zeroed
 * past `size` and stays as it was: dirty or clean). */
int cache_truncate(Cache *c, uint64_t id, uint64_t size, GError **err);
/* Make the object's written bytes and block states durable (per mode). */
int cache_fsync(Cache *c, uint64_t id, GError **err);

/* Dirty ranges for flushing. Each slice is a run of dirty blocks; `path`
 * is the object's cache file and `offset` is both the object offset and
 * the file offset. `seq` is the object's write sequence when the list was
 * taken: pass it to cache_mark_clean so that blocks written again after
 * the list was taken stay dirty. */
typedef struct {
    char *path;
    uint64_t offset;
    uint64_t length;
} CacheSlice;

/* Returns a GArray of CacheSlice (clear func frees the paths) and sets
 * *seq; NULL with *err on failure. Only ranges within [offset, offset+len)
 * are listed (len 0 = to the end). */
GArray *cache_dirty_slices(Cache *c, uint64_t id, uint64_t offset,
                           uint64_t len, uint64_t *seq, GError **err);
/* The bytes of [offset, offset+len) are safe elsewhere: blocks in the
 * range not written after `seq` become clean (len 0 = to the end). A block
 * the range only partly covers counts as covered, so [0, size) cleans the
 * last, partial block; the owner must not pass a range that ends inside a
 * block whose other bytes are not safe yet. A `seq` larger than the
 * object's is refused (-EINVAL). */
int cache_mark_clean(Cache *c, uint64_t id, uint64_t offset, uint64_t len,
                     uint64_t seq, GError **err);
/* Path of an object's cache file (g_free). */
char *cache_object_path(Cache *c, uint64_t id);

/* Evict every clean block of an object (0 = of all objects); dirty blocks
 * stay. Used to force reads back from tape. */
int cache_drop_clean(Cache *c, uint64_t id, GError **err);

/* State of the block holding object byte `offset`: one of CacheBlockState,
 * or a negative errno (no such object). */
typedef enum {
    CACHE_BLOCK_ABSENT = 0,
    CACHE_BLOCK_CLEAN = 1,
    CACHE_BLOCK_DIRTY = 2,
} CacheBlockState;
int cache_block_state(Cache *c, uint64_t id, uint64_t offset, GError **err);
/* Bytes held for an object in dirty and in clean blocks (whole blocks):
 * both 0 when none of its blocks is present. Only asks: an object not
 * loaded since the open (nothing cached) is not loaded for it. -ENOENT
 * for no such object, -EIO if quarantined. */
int cache_object_usage(Cache *c, uint64_t id, uint64_t *dirty,
                       uint64_t *clean, GError **err);

typedef struct {
    uint64_t hits, misses;          /* block lookups on read */
    uint64_t bytes_read, bytes_written;
    uint64_t dirty_bytes, clean_bytes;
    uint64_t evictions;             /* blocks evicted */
    uint64_t waits;                 /* writers that waited for space */
    uint64_t enospc;                /* writes failed for lack of space */
    uint64_t fills;                 /* calls to the fill function */
    uint64_t size_limit;
    uint64_t fsyncs;                /* fsync/fdatasync calls made */
    uint64_t flushes;               /* calls to the flush function */
    uint64_t table_bytes;           /* RAM held by block tables */
    uint64_t objects;               /* objects held in memory */
} CacheStats;

void cache_stats(Cache *c, CacheStats *out);

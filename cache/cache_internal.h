/* cache_internal.h — private structures of the block cache, shared only by
 * the files of cache/. Nothing outside cache/ includes this header.
 *
 * Locks (the same table is repeated in each file that takes them):
 *   c->create_lock  serializes object create/delete (and file creation)
 *                   and loading an object on first use
 *   o->save_lock    serializes writes of one object's state file; held
 *                   across fdatasync/rename (per object, never cache-wide)
 *   o->lock         the object's block table (chunks, their counts,
 *                   o->dirty_chunks, o->pins): state, seq, gen, holds,
 *                   disk_dirty of every block; o->seq, o->trunc_gen,
 *                   o->ndirty, o->nclean, o->deleted, o->fd, fd_used,
 *                   fd_busy, o->state_stale; o->cond
 *   c->lock         the object table, the LRU list of clean blocks, byte
 *                   accounting (dirty, clean, reserved), the stats,
 *                   c->space_cond, c->reclaiming, the open-file queue
 *                   and budget (fd_max)
 * Lock order: c->create_lock -> o->save_lock -> o->lock -> c->lock.
 *
 * Block holds: bytes of a block are read or written with no lock held but
 * with a hold on the block, taken under o->lock: shared (readers) or
 * exclusive (writer, fill install, eviction, truncate). One operation
 * takes holds of one object only, in ascending block order, and never
 * holds a hold while calling an owner callback or waiting for space, so
 * holds cannot deadlock. A block's state changes only with an exclusive
 * hold, except DIRTY -> CLEAN (mark_clean), which leaves the bytes alone.
 */
#pragma once

#include "cache/cache.h"

#include <stdarg.h>

enum {
    BLK_ABSENT = 0,
    BLK_CLEAN = 1,
    BLK_DIRTY = 2,
};

typedef struct CacheObject CacheObject;

typedef struct CacheBlock {
    struct CacheBlock *lru_prev, *lru_next; /* c->lock; linked iff CLEAN */
    CacheObject *obj;                       /* immutable */
    uint64_t index;                         /* immutable: block number */
    uint64_t seq;          /* o->lock: object seq of the last write */
    uint32_t readers;      /* o->lock: shared holds */
    uint32_t gen;          /* o->lock: bumped on every state change, so a
                              fill can tell that the block moved on (even
                              back to ABSENT) while it was running */
    uint8_t state;         /* o->lock (and c->lock to enter/leave CLEAN) */
    bool writer;           /* o->lock: exclusive hold */
    uint16_t wwait;        /* o->lock: threads waiting for an exclusive
                              hold; new shared holds wait behind them */
    bool disk_dirty;       /* o->lock: the durable state file lists it */
} CacheBlock;

/* Block tables are two-level (a hash of small chunks of blocks, see
 * cache_chunk.c) so that block addresses never move and an object costs
 * only what it uses. */
#define CACHE_CHUNK_SHIFT 4
#define CACHE_CHUNK ((uint64_t)1 << CACHE_CHUNK_SHIFT)

typedef struct CacheChunk {
    uint64_t no;           /* immutable: chunk number (hash/tree key) */
    uint32_t ndirty;       /* o->lock: DIRTY blocks */
    uint32_t ndisk;        /* o->lock: blocks with disk_dirty */
    bool in_tree;          /* o->lock: listed in o->dirty_chunks */
    CacheBlock blocks[CACHE_CHUNK];
} CacheChunk;

/* Object offsets must stay below this (-EFBIG). */
#define CACHE_MAX_OFFSET ((uint64_t)1 << 60)

struct CacheObject {
    Cache *cache;
    uint64_t id;
    gint refs;             /* atomic */
    char *path;            /* data file */
    char *state_path;      /* state file */
    GMutex save_lock;
    GMutex lock;
    GCond cond;            /* a hold was released */
    int fd;                /* o->lock; -1 while closed (cache_fds.c) */
    bool fd_used;          /* o->lock: used since the last trim pass */
    uint32_t fd_busy;      /* o->lock: fd in use outside o->lock without
                              a block hold (state saves) */
    GList *fd_link;        /* c->lock: node in c->fd_lru, if queued */
    bool fd_listed;        /* c->lock: the fd list holds a ref */
    GHashTable *chunks;    /* o->lock: chunk number (uint64_t*) ->
                              CacheChunk* */
    GTree *dirty_chunks;   /* o->lock: chunks with ndirty or ndisk, by
                              number */
    uint64_t last_chunk_no; /* o->lock: one-entry lookup cache */
    CacheChunk *last_chunk;
    uint32_t pins;         /* o->lock: fills in flight and readers waiting
                              for a hold; no chunk is freed while any */
    uint64_t seq;          /* write sequence */
    uint64_t trunc_gen;    /* truncations and chunk frees so far: a fill
                              that ran across one may hold bytes from
                              before it */
    uint64_t ndirty;       /* dirty blocks */
    uint64_t nclean;       /* clean blocks */
    uint64_t nholds;       /* blocks held */
    uint32_t waiters;      /* threads waiting on o->cond */
    bool deleted;
    bool damaged;          /* immutable: quarantined at open (no blocks) */
    bool state_stale;      /* the dirty set differs from the state file */
};

struct Cache {
    char *dir;
    char *store_id;
    uint32_t block_size;
    unsigned block_shift;
    uint64_t size_limit, hi_bytes, lo_bytes;
    unsigned dirty_wait_ms;
    bool cache_on_read;
    char *cache_on_read_path;
    CacheFillFn fill;
    CacheFlushFn flush;
    CacheNeedSpaceFn need_space;
    void *owner;
    gint mode;             /* atomic CacheMode */
    int dir_fd;            /* for fsync of the directory; immutable */
    int lock_fd;           /* flock held while open; immutable */

    GMutex create_lock;
    GMutex lock;
    GCond space_cond;      /* dirty or reserved bytes went down */
    GHashTable *objects;   /* uint64_t* id -> CacheObject* (one ref) */
    CacheBlock *lru_head, *lru_tail; /* head = least recently used */
    GQueue fd_lru;         /* objects with an open fd (one ref each) */
    unsigned fd_open, fd_max; /* fd_max: the budget (cache_fds.c) */
    bool fd_trimming;
    uint64_t dirty_bytes, clean_bytes, reserved_bytes;
    uint64_t table_bytes;  /* atomic: bytes of block-table chunks */
    bool reclaiming;
    CacheStats st;         /* counters; dirty/clean filled in on read */
};

/* cache_error.c */
int cache_fail(GError **err, int code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* cache_label.c: the directory label and lock. */
/* Checks the label; *missing if there is none and the directory is empty
 * (then lock and create). *block_size: wanted (0 = any) in, actual out. */
int cache_label_check(Cache *c, uint32_t *block_size, bool *missing,
                      GError **err);
int cache_label_create(Cache *c, uint32_t *block_size, GError **err);
int cache_dir_lock(Cache *c, GError **err);

/* cache_statefile.c: encode/decode one object's state file. A run is two
 * uint64_t: first block, number of blocks. */
int cache_statefile_write(Cache *c, const char *path, uint64_t id,
                          uint64_t seq, const GArray *runs, GError **err);
int cache_statefile_read(Cache *c, const char *path, uint64_t id,
                         uint64_t *seq, GArray **runs, GError **err);

/* cache_chunk.c: block tables. All need o->lock held. */
void obj_chunks_init(CacheObject *o);
void obj_chunks_clear(CacheObject *o);
void obj_chunk_destroy(gpointer chunk);
CacheChunk *block_chunk(CacheBlock *b);
CacheBlock *obj_block(CacheObject *o, uint64_t idx, bool create);
/* Lists the chunk in o->dirty_chunks iff it has dirty or disk_dirty
 * blocks; call after changing its counts. */
void obj_chunk_dirty_update(CacheObject *o, CacheChunk *ch);
/* Frees the chunk of block idx if nothing in it is in use. */
void obj_chunk_trim(CacheObject *o, uint64_t idx);
/* Sorted chunk numbers of the object (GArray of uint64_t). */
GArray *obj_chunk_list(CacheObject *o);
/* The chunks of o->dirty_chunks in ascending order (GPtrArray of
 * CacheChunk*, valid while o->lock stays held). */
GPtrArray *obj_dirty_chunks(CacheObject *o);

/* cache_object.c: objects, holds, state saving. */
/* The object, with a ref; NULL and *rc = -ENOENT (no such object) or
 * -EIO (quarantined: its state file was damaged) with *err set. */
CacheObject *cache_object_lookup(Cache *c, uint64_t id, int *rc,
                                 GError **err);
void cache_object_unref(CacheObject *o);
CacheObject *cache_object_ref(CacheObject *o);
/* Drops a ref taken by cache_object_lookup; if the object has no block
 * left (all absent, nothing held), first closes its file: an idle object
 * costs only its small in-memory record. No lock held. */
void obj_put(CacheObject *o);
/* cache_fds.c: at most fd_max object files open. obj_fd_locked opens on
 * demand (o->lock held); the fd may be used while o->lock is held, or
 * under a block hold, or with fd_busy raised. */
int obj_fd_locked(CacheObject *o, GError **err);
/* Closes the object's fd (o->lock held); true if the caller must drop one
 * ref (the fd list's) after unlocking. */
bool obj_fd_close_locked(CacheObject *o);
void cache_fds_trim(Cache *c);
void cache_fds_close_all(Cache *c);
/* The budget for a configured max_open_files (0 = the default, 256):
 * at most a quarter of the soft RLIMIT_NOFILE, and at least 4 files. */
unsigned cache_fds_budget(unsigned want);
/* The process ran out of descriptors (EMFILE/ENFILE): lower the budget to
 * half of the object files open and close idle ones down to it now. May
 * be called with `self`'s o->lock held (self may be NULL) and no other
 * object lock; other objects are only trylocked, busy ones skipped. */
void cache_fds_shed(Cache *c, CacheObject *self);
/* open(path, flags | O_CLOEXEC, 0600); on EMFILE/ENFILE sheds (as above)
 * and tries once more. The fd or -1 with errno set. */
int cache_fds_open(Cache *c, CacheObject *self, const char *path, int flags);
/* Take a hold, waiting as needed; false (no hold) if the object is
 * deleted meanwhile. o->lock held. */
bool obj_hold_shared(CacheObject *o, CacheBlock *b);
bool obj_hold_excl(CacheObject *o, CacheBlock *b);
void obj_release(CacheObject *o, CacheBlock *b);
void obj_wake(CacheObject *o);
int obj_save_state(CacheObject *o, GError **err);
int cache_objects_load(Cache *c, GError **err);
void cache_objects_close(Cache *c);

/* cache_space.c: LRU, accounting, reclaim, waiting for dirty space.
 * Functions named *_locked need c->lock held. */
void lru_append_locked(Cache *c, CacheBlock *b);
void lru_unlink_locked(Cache *c, CacheBlock *b);
void lru_touch_locked(Cache *c, CacheBlock *b);
/* Moves a block between states, fixing LRU and accounting; needs o->lock
 * held (takes c->lock). */
void block_set_state(CacheObject *o, CacheBlock *b, uint8_t state);
int space_reserve(Cache *c, uint64_t need, GError **err);
void space_unreserve(Cache *c, uint64_t need);
void space_reclaim(Cache *c);
/* Needs o->lock held; may drop and retake it. 1 evicted, 0 skipped. */
int space_evict_locked(CacheObject *o, CacheBlock *b, GError **err);
void space_punch(CacheObject *o, int fd, uint64_t off, uint64_t len);

/* cache_fileio.c: whole-buffer pread/pwrite with EINTR and short counts. */
int cache_pread_full(int fd, void *buf, size_t len, uint64_t off);
int cache_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int cache_fsync_fd(Cache *c, int fd, bool data_only);
/* Atomically replaces `path` (in the cache directory) with buf: writes
 * path.tmp, fsyncs it (fdatasync if data_only), renames it over path and
 * fsyncs the directory; on failure removes path.tmp. `what` names the
 * file in the error ("cannot write <what> <path>: ..."). 0 or -errno. */
int cache_replace_file(Cache *c, const char *path, const void *buf,
                       size_t len, bool data_only, const char *what,
                       GError **err);

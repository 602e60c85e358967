/* flusher_private.h — what the files of the flusher share: the Flusher
 * structure, the queue of ranges to mark clean after a commit, and the
 * helpers both the batch flushes (flusher.c) and the streaming of files
 * still being written (flusher_stream.c) use. Internal to core/. Locks as
 * described in flusher.c: Flusher.lock guards the request queue and flags,
 * Flusher.plock the parts reported by the taper's device thread; every
 * other field is the flusher thread's own. */
#pragma once

#include "core/core_private.h"

#define PUSH_CHUNK (1u << 20)
#define RETRY_BACKOFF_US (2 * G_USEC_PER_SEC)

typedef struct {
    GArray *objs;   /* NULL = everything */
    bool index;
    bool done;
    int result;
    GError *err;
} FlushReq;

struct Flusher {
    Core *c;
    GMutex lock;
    GCond cond;
    GThread *thread;
    bool stop, kick, urgent;
    GQueue reqs;
    gint64 retry_after;
    gint64 last_scan;
    gint64 last_index;
    TapeTaper *taper;
    GArray *cleans;  /* PendingClean; flusher thread only */
    GMutex plock;
    GArray *parts;   /* TapePartDone, successful ones */
    guint8 *buf;
};

/* Flushed bytes become clean only after the commit that points their
 * extents at tape: ranges wait here for the next commit. */
typedef struct {
    uint64_t obj, off, end, seq;
    uint64_t after;  /* Core.commits when the extents were rewritten */
} PendingClean;

/* Taper part-done callback: successful parts go to fl->parts. */
void part_done(const TapePartDone *p, void *user);
/* Mark clean what a commit has made safe; drop cache objects nothing
 * references any more. Flusher thread; takes Core.lock briefly. */
void apply_cleans(Flusher *fl);
/* Commit now and clean what it made safe. Flusher thread, no lock held
 * (db_group_commit: the cache fsyncs run without Core.lock). */
int commit_and_clean(Flusher *fl, GError **err);
/* A group commit is due and enough closed small files wait that bundling
 * them first beats fsyncing each in the cache. Takes Core.lock. */
bool commit_wants_bundle(Flusher *fl);
/* Group commit if commit_interval_ms has passed (db_group_commit, as
 * above), then apply cleans. Flusher thread, no lock held. */
void commit_if_due(Flusher *fl);

/* Stream the open file whose cache object is `obj` while it is being
 * written (flusher_stream.c): one dumpfile fed as bytes are recorded,
 * parts recorded and their ranges cleaned as they complete. Returns when
 * the writer closed it and everything is on tape, when a request or stop
 * is pending, when the writer paused, or on error (-errno, the rest stays
 * dirty). Flusher thread, no lock held. */
int stream_file(Flusher *fl, uint64_t obj, GError **err);

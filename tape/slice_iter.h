/* slice_iter.h — the caller's slices of a dumpfile (file, offset, length:
 * where the dumpfile's bytes can be read again) and an iterator that reads
 * a range of the dumpfile back from them, for part retry. Internal to
 * tape/.
 *
 * Locks: a SliceList has no lock of its own; its owner (the taper) guards
 * it with its state lock, and the iterator takes that lock only to look a
 * slice up, never while reading a file. */
#pragma once

#include <glib.h>
#include <stdint.h>

typedef struct SliceList SliceList;

SliceList *slice_list_new(void);
void slice_list_free(SliceList *l);
void slice_list_clear(SliceList *l);
/* The next `length` bytes of the dumpfile are in `path` at `offset`. */
void slice_list_append(SliceList *l, const char *path, uint64_t offset,
                       uint64_t length);
/* Dumpfile bytes covered by the slices added so far (from offset 0). */
uint64_t slice_list_end(const SliceList *l);
/* Release every slice that ends at or before dumpfile offset `pos`. */
void slice_list_release_before(SliceList *l, uint64_t pos);

typedef struct SliceIter SliceIter;

/* Read the dumpfile sequentially from `pos`, looking slices up in `l`
 * under `lock`. */
SliceIter *slice_iter_new(SliceList *l, GMutex *lock, uint64_t pos);
/* Read the next `len` bytes. -EIO (with a message) when a byte is in no
 * slice or its file is short or unreadable. */
int slice_iter_read(SliceIter *it, void *buf, size_t len, GError **err);
void slice_iter_free(SliceIter *it);

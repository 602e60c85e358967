/* tape_testlib.h — helpers shared by the tape/ test programs and the demo:
 * scratch directories, deterministic pseudo-random data, damaging a byte
 * of a file, writing a dumpfile through the taper while collecting its
 * part-done events, and reading every part back byte for byte.
 *
 * Locks: a TTParts log has a mutex because the taper's device thread
 * appends to it while the test thread may read it. */
#pragma once

#include "tape/tape.h"

#include <glib.h>
#include <stdint.h>

/* A fresh directory under the system temp dir (g_free); tt_rmtree it. */
char *tt_tmpdir(void);
void tt_rmtree(const char *dir);

/* Fill buf with the pseudo-random bytes at [offset, offset+len) of the
 * stream numbered `seed`; any split of the stream gives the same bytes. */
void tt_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset);
uint8_t *tt_random_data(size_t len, uint64_t seed);
/* Write data to `dir`/name; returns the path (g_free). */
char *tt_write_file(const char *dir, const char *name, const uint8_t *data,
                    size_t len);

/* Part-done events of one or more dumpfiles. */
typedef struct {
    GMutex lock;
    GArray *parts;     /* TapePartDone, successful and failed */
} TTParts;
void tt_parts_init(TTParts *p);
void tt_parts_clear(TTParts *p);
void tt_parts_record(const TapePartDone *d, void *user);
unsigned tt_parts_count(TTParts *p, bool successful);

typedef struct {
    uint64_t part_size;
    size_t ring_size;
    size_t push_size;       /* bytes per push; 0 = one push of everything */
    bool odd_pushes;        /* push sizes cycling through odd numbers */
    bool slices_per_push;   /* add a slice just before each push (else one
                               slice for the whole file before the first) */
} TTWrite;

/* Start dumpfile `id`, push `data` as configured (slices from
 * slice_path, which holds the same bytes), finish. Returns finish's
 * result (or push's first failure). */
int tt_write_dumpfile(TapeTaper *t, const TTWrite *w, uint64_t id,
                      const uint8_t *data, size_t len, const char *slice_path,
                      TTParts *parts, GError **err);

/* Check that the successful parts of dumpfile `id` in `parts` tile
 * [0, len) in order with one eof at the end, then open every part on tape,
 * verify it, and compare every byte with data. Asserts on mismatch. */
void tt_check_readback(TapeLibrary *lib, TTParts *parts, uint64_t id,
                       const uint8_t *data, size_t len);

/* XOR the byte at `off` of an existing file with mask (damaging it; the
 * same call again repairs it). */
void tt_xor_byte(const char *path, long off, uint8_t mask);

/* Write a volume's faults file (text as given). */
void tt_write_faults(const char *libdir, const char *volume, const char *text);
/* Number of distinct volumes holding successful parts of dumpfile id. */
unsigned tt_volumes_used(TTParts *parts, uint64_t id);

/* cache_statefile.c — one object's state file: which blocks are dirty.
 *
 * Layout (little-endian):
 *     0  magic "TFSCSTAT"          8 bytes
 *     8  version (1)               u32
 *    12  block size                u32
 *    16  object id                 u64
 *    24  write sequence            u64
 *    32  number of runs n          u64
 *    40  n runs: first block u64, number of blocks u64 (ascending,
 *        non-empty, non-overlapping)
 * 40+16n XXH3-64 of bytes [0, 40+16n) u64
 *
 * The file is written whole to "<name>.tmp", fsync'ed and renamed over the
 * old one, then the directory is fsync'ed (cache_replace_file), so after a
 * crash it is the old or the new version, never a mix. A reader checks the
 * length, magic, version, checksum, block size, object id and the runs;
 * anything wrong is -EBADMSG with a one-line message naming the file.
 *
 * Locks: none; the caller holds the object's save_lock when writing.
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define STATE_MAGIC "TFSCSTAT"
#define STATE_VERSION 1
#define STATE_HEADER 40
#define STATE_MAX_RUNS ((uint64_t)1 << 32)

static void put32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return GUINT32_FROM_LE(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return GUINT64_FROM_LE(v);
}

int cache_statefile_write(Cache *c, const char *path, uint64_t id,
                          uint64_t seq, const GArray *runs, GError **err)
{
    size_t n = runs->len / 2;
    size_t size = STATE_HEADER + 16 * n + 8;
    g_autofree uint8_t *buf = g_malloc(size);
    memcpy(buf, STATE_MAGIC, 8);
    put32(buf + 8, STATE_VERSION);
    put32(buf + 12, c->block_size);
    put64(buf + 16, id);
    put64(buf + 24, seq);
    put64(buf + 32, n);
    for (size_t i = 0; i < n; i++) {
        const uint64_t *run = &g_array_index(runs, uint64_t, 0) + 2 * i;
        put64(buf + STATE_HEADER + 16 * i, run[0]);
        put64(buf + STATE_HEADER + 16 * i + 8, run[1]);
    }
    put64(buf + size - 8, XXH3_64bits(buf, size - 8));

    return cache_replace_file(c, path, buf, size, true, "cache state file",
                              err);
}

static int damaged(GError **err, const char *path, const char *why)
{
    return cache_fail(err, EBADMSG, "cache state file %s is damaged (%s)",
                      path, why);
}

int cache_statefile_read(Cache *c, const char *path, uint64_t id,
                         uint64_t *seq, GArray **runs, GError **err)
{
    g_autofree char *text = NULL;
    gsize size = 0;
    GError *e = NULL;
    if (!g_file_get_contents(path, &text, &size, &e)) {
        int r = cache_fail(err, EIO, "cannot read cache state file: %s",
                           e->message);
        g_error_free(e);
        return r;
    }
    const uint8_t *buf = (const uint8_t *)text;
    if (size < STATE_HEADER + 8)
        return damaged(err, path, "too short");
    if (memcmp(buf, STATE_MAGIC, 8) != 0)
        return damaged(err, path, "bad magic");
    if (get32(buf + 8) != STATE_VERSION)
        return cache_fail(err, ENOTSUP, "cache state file %s has version "
                          "%" PRIu32 "; this tapefs reads version %d", path,
                          get32(buf + 8), STATE_VERSION);
    uint64_t n = get64(buf + 32);
    if (n > STATE_MAX_RUNS || size != STATE_HEADER + 16 * n + 8)
        return damaged(err, path, "length does not match its run count");
    if (get64(buf + size - 8) != XXH3_64bits(buf, size - 8))
        return damaged(err, path, "checksum mismatch");
    if (get32(buf + 12) != c->block_size)
        return damaged(err, path, "block size differs from the label");
    if (get64(buf + 16) != id)
        return damaged(err, path, "object id differs from its name");
    GArray *a = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), 2 * n);
    uint64_t next = 0;
    uint64_t max_block = UINT64_MAX >> c->block_shift;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t first = get64(buf + STATE_HEADER + 16 * i);
        uint64_t count = get64(buf + STATE_HEADER + 16 * i + 8);
        if (count == 0 || first < next || first > max_block ||
            count > max_block - first) {
            g_array_unref(a);
            return damaged(err, path, "bad block run");
        }
        next = first + count;
        g_array_append_val(a, first);
        g_array_append_val(a, count);
    }
    *seq = get64(buf + 24);
    *runs = a;
    return 0;
}

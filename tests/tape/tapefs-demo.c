/* tapefs-demo.c — the main job until the filesystem exists: format a fresh
 * virtual library in DIR, write a ~100 MiB dumpfile of pseudo-random bytes
 * through the taper (with slices from a temporary file holding the same
 * bytes), print where each part went, read every part back and verify it.
 * Single-threaded driver (the taper's device thread runs the part-done
 * callback, which only appends to a mutex-guarded log). */
#include "tape_testlib.h"

#include "tape/tape.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((uint64_t)1024 * 1024)

static int fail(const char *what, GError *err)
{
    fprintf(stderr, "tapefs-demo: %s: %s\n", what,
            err ? err->message : "failed");
    g_clear_error(&err);
    return 1;
}

static int read_back(TapeLibrary *lib, const TapePartDone *d,
                     const uint8_t *data, uint8_t *buf)
{
    GError *err = NULL;
    TapePart *p = tape_part_open(lib, d->volume, d->fileno, &err);
    if (!p)
        return fail("open part", err);
    int rc = tape_part_verify(p, &err);
    if (rc == 0)
        rc = tape_part_read(p, 0, buf, d->size, &err);
    tape_part_close(p);
    if (rc < 0)
        return fail("read part", err);
    if (memcmp(buf, data + d->offset, d->size) != 0) {
        fprintf(stderr, "tapefs-demo: part %u read back differs\n",
                d->partnum);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tapefs-demo DIR  (DIR must not hold a "
                        "library yet)\n");
        return 2;
    }
    const char *dir = argv[1];
    const unsigned nvolumes = 4;
    const uint64_t volume_size = 64 * MiB, part_size = 16 * MiB;
    const uint32_t block_size = 256 * 1024;
    const size_t len = 100 * MiB + 12345; /* ends in a short block */

    GError *err = NULL;
    g_autofree char *store_id = g_uuid_string_random();
    if (tape_library_format(dir, store_id, nvolumes, volume_size, block_size,
                            &err) < 0)
        return fail("format", err);
    printf("formatted %s: %u volumes of %" G_GUINT64_FORMAT " MiB, block "
           "size %u KiB, store %s\n", dir, nvolumes, volume_size / MiB,
           block_size / 1024, store_id);
    TapeLibrary *lib = tape_library_open(dir, store_id, &err);
    if (!lib)
        return fail("open library", err);

    uint8_t *data = tt_random_data(len, 2026);
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *slice = tt_write_file(tmp, "dumpfile", data, len);

    TTParts parts;
    tt_parts_init(&parts);
    TapeTaperConfig cfg = {.part_size = part_size, .ring_size = 8 * MiB};
    TapeTaper *t = tape_taper_new(lib, &cfg);
    TTWrite w = {.push_size = 1000 * 1000, .slices_per_push = true};
    double t0 = g_get_monotonic_time() / 1e6;
    int rc = tt_write_dumpfile(t, &w, 1, data, len, slice, &parts, &err);
    double secs = g_get_monotonic_time() / 1e6 - t0;
    tape_taper_free(t);
    int status = 0;
    if (rc < 0) {
        status = fail("write dumpfile", err);
    } else {
        printf("wrote dumpfile 1: %zu bytes in %.2f s (%.0f MiB/s)\n", len,
               secs, (double)len / MiB / secs);
        printf("%-5s %-8s %6s %12s %12s  %s\n", "part", "volume", "file",
               "offset", "size", "read back");
        uint8_t *buf = g_malloc(part_size);
        for (unsigned i = 0; i < parts.parts->len; i++) {
            TapePartDone *d = &g_array_index(parts.parts, TapePartDone, i);
            bool ok = d->successful && read_back(lib, d, data, buf) == 0;
            printf("%-5u %-8s %6u %12" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT
                   "  %s%s%s\n", d->partnum, d->volume, d->fileno, d->offset,
                   d->size, !d->successful ? "failed part" : ok ? "ok" : "BAD",
                   d->eom ? " (end of volume)" : "", d->eof ? " (last)" : "");
            if (d->successful && !ok)
                status = 1;
        }
        g_free(buf);
        GArray *vols = tape_library_volumes(lib);
        for (unsigned i = 0; i < vols->len; i++) {
            TapeVolumeInfo *v = &g_array_index(vols, TapeVolumeInfo, i);
            printf("%s: %u tape files, %" G_GUINT64_FORMAT " of %"
                   G_GUINT64_FORMAT " bytes used%s\n", v->name, v->nfiles,
                   v->used, v->capacity, v->full ? ", full" : "");
        }
        g_array_unref(vols);
        printf(status ? "verification FAILED\n"
                      : "every part read back and verified\n");
    }
    tt_parts_clear(&parts);
    tape_library_close(lib);
    g_free(data);
    tt_rmtree(tmp);
    return status;
}

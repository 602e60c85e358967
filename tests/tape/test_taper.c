/* test_taper.c — the taper end to end on real virtual libraries in
 * temporary directories: dumpfiles of tens of MiB on small volumes (every
 * case spans volumes), part retry after PEOM and write errors, failure on
 * the fresh volume too, LEOM, part_size 0, ring sizes, push sizes,
 * prebuffering, cancel, a full library. Every written dumpfile is read back
 * and compared byte for byte. */
#include "tape_testlib.h"

#include <errno.h>
#include <string.h>

#define KiB ((uint64_t)1024)
#define MiB (KiB * 1024)
#define BS ((uint32_t)(64 * KiB))
#define VOL (8 * MiB)
#define PART (2 * MiB)
#define DUMP (24 * MiB + 777) /* spans 3-4 volumes, ends in a short block */

typedef struct {
    char *tmp;
    char *libdir;
    TapeLibrary *lib;
    uint8_t *data;
    size_t len;
    char *slice;
    TTParts parts;
} Fx;

static void fx_init(Fx *f, unsigned nvolumes, size_t len, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->tmp = tt_tmpdir();
    f->libdir = g_build_filename(f->tmp, "library", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(f->libdir, "test-store", nvolumes,
                                        VOL, BS, &err), ==, 0);
    g_assert_no_error(err);
    f->len = len;
    f->data = tt_random_data(len, seed);
    f->slice = tt_write_file(f->tmp, "slice", f->data, len);
    tt_parts_init(&f->parts);
}

static void fx_open(Fx *f)
{
    GError *err = NULL;
    f->lib = tape_library_open(f->libdir, "test-store", &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->lib);
}

static void fx_clear(Fx *f)
{
    tape_library_close(f->lib);
    tt_parts_clear(&f->parts);
    tt_rmtree(f->tmp);
    g_free(f->tmp);
    g_free(f->libdir);
    g_free(f->slice);
    g_free(f->data);
}

static const TapePartDone *part_at(Fx *f, unsigned i)
{
    return &g_array_index(f->parts.parts, TapePartDone, i);
}

/* Write the fixture's dumpfile with `w`; expect success and read it back. */
static void write_ok(Fx *f, TapeTaper *t, const TTWrite *w, uint64_t id)
{
    GError *err = NULL;
    int rc = tt_write_dumpfile(t, w, id, f->data, f->len, f->slice, &f->parts,
                               &err);
    g_assert_no_error(err);
    g_assert_cmpint(rc, ==, 0);
    tt_check_readback(f->lib, &f->parts, id, f->data, f->len);
}

static TapeTaper *new_taper(Fx *f, uint64_t part_size, size_t ring)
{
    TapeTaperConfig cfg = {.part_size = part_size, .ring_size = ring};
    return tape_taper_new(f->lib, &cfg);
}

static void test_success(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 1);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 1 * MiB);
    TTWrite w = {.push_size = 1 * MiB};
    write_ok(&f, t, &w, 100);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 0);
    g_assert_cmpuint(tt_volumes_used(&f.parts, 100), >=, 3);
    /* every part but the LEOM-shortened ones and the last is part_size */
    for (unsigned i = 0; i < f.parts.parts->len; i++) {
        const TapePartDone *d = part_at(&f, i);
        if (!d->eom && !d->eof)
            g_assert_cmpuint(d->size, ==, PART);
        g_assert_cmpuint(d->size, <=, PART);
        g_assert_cmpuint(d->size % BS, ==, d->eof ? f.len % BS : 0);
        g_assert_cmpfloat(d->duration, >=, 0);
    }
    fx_clear(&f);
}

/* The volume ends physically in the middle of a part: the part is failed,
 * the next volume gets the whole part again, part of it from slices. */
static void test_peom_mid_part(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 2);
    tt_write_faults(f.libdir, "vol001", "# end the tape early\npeom 5000000\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 256 * KiB);
    TTWrite w = {.push_size = 100000};
    write_ok(&f, t, &w, 101);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    const TapePartDone *failed = NULL;
    for (unsigned i = 0; i < f.parts.parts->len; i++)
        if (!part_at(&f, i)->successful)
            failed = part_at(&f, i);
    g_assert_nonnull(failed);
    g_assert_cmpstr(failed->volume, ==, "vol001");
    g_assert_true(failed->eom);
    g_assert_false(failed->eof);
    g_assert_cmpfloat(failed->duration, >, 0);
    g_assert_cmpuint(failed->partnum, ==, 3);
    g_assert_cmpuint(failed->size, >, 256 * KiB); /* beyond what the ring held */
    g_assert_cmpuint(failed->size, <, PART);
    /* the retried part 3 is the first file of vol002 */
    for (unsigned i = 0; i < f.parts.parts->len; i++) {
        const TapePartDone *d = part_at(&f, i);
        if (d->successful && d->partnum == 3) {
            g_assert_cmpstr(d->volume, ==, "vol002");
            g_assert_cmpuint(d->fileno, ==, 0);
            g_assert_cmpuint(d->size, ==, PART);
        }
    }
    GArray *vols = tape_library_volumes(f.lib);
    TapeVolumeInfo *v1 = &g_array_index(vols, TapeVolumeInfo, 0);
    g_assert_true(v1->full);
    g_assert_cmpuint(v1->nfiles, ==, 3); /* two good parts, one failed */
    g_assert_cmpuint(v1->used, <=, 5000000);
    g_array_unref(vols);
    /* the failed tape file is refused on read */
    GError *err = NULL;
    TapePart *p = tape_part_open(f.lib, "vol001", 2, &err);
    g_assert_null(p);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    fx_clear(&f);
}

static void test_write_error(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 3);
    tt_write_faults(f.libdir, "vol002", "fail-write 10\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 512 * KiB);
    TTWrite w = {.push_size = 3 * MiB, .slices_per_push = true};
    write_ok(&f, t, &w, 102);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    for (unsigned i = 0; i < f.parts.parts->len; i++) {
        const TapePartDone *d = part_at(&f, i);
        if (!d->successful) {
            g_assert_cmpstr(d->volume, ==, "vol002");
            g_assert_false(d->eom);
            g_assert_cmpuint(d->size, ==, 9 * BS);
        }
    }
    g_assert_cmpuint(tt_volumes_used(&f.parts, 102), >=, 3);
    fx_clear(&f);
}

/* The part fails on vol001 and again on the fresh vol002: the dumpfile
 * fails, the caller sees it, and no attempt of that part succeeded. The
 * taper then writes the next dumpfile normally. */
static void test_fail_fresh_volume_too(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 4);
    tt_write_faults(f.libdir, "vol001", "fail-write 20\n");
    tt_write_faults(f.libdir, "vol002", "fail-write 3\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, 4 * MiB, 1 * MiB);
    TTWrite w = {.push_size = 1 * MiB, .slices_per_push = true};
    GError *err = NULL;
    int rc = tt_write_dumpfile(t, &w, 103, f.data, f.len, f.slice, &f.parts,
                               &err);
    g_assert_cmpint(rc, ==, -EIO);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "vol001"));
    g_assert_nonnull(strstr(err->message, "vol002"));
    g_assert_null(strchr(err->message, '\n'));
    g_clear_error(&err);
    g_assert_cmpuint(tt_parts_count(&f.parts, true), ==, 0);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 2);
    /* push and finish keep reporting the failure */
    g_assert_cmpint(tape_taper_push(t, "x", 1, &err), ==, -EIO);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    g_assert_cmpint(tape_taper_finish(t, &err), ==, -EIO);
    g_clear_error(&err);
    GArray *vols = tape_library_volumes(f.lib);
    g_assert_true(g_array_index(vols, TapeVolumeInfo, 0).full);
    g_assert_true(g_array_index(vols, TapeVolumeInfo, 1).full);
    g_array_unref(vols);

    /* the same taper goes on with the next dumpfile on vol003 */
    tt_parts_clear(&f.parts);
    tt_parts_init(&f.parts);
    write_ok(&f, t, &w, 104);
    g_assert_cmpstr(part_at(&f, 0)->volume, ==, "vol003");
    tape_taper_free(t);
    fx_clear(&f);
}

/* LEOM ends a part early and cleanly; the next part starts on the next
 * volume without any failed attempt. */
static void test_leom(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 5);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, 3 * MiB, 2 * MiB);
    TTWrite w = {.push_size = 64 * KiB};
    write_ok(&f, t, &w, 105);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 0);
    unsigned eoms = 0;
    for (unsigned i = 0; i < f.parts.parts->len; i++) {
        const TapePartDone *d = part_at(&f, i);
        if (!d->eom)
            continue;
        eoms++;
        g_assert_cmpuint(d->size, <, 3 * MiB);
        g_assert_false(d->eof);
        const TapePartDone *next = part_at(&f, i + 1);
        g_assert_cmpstr(next->volume, !=, d->volume);
        g_assert_cmpuint(next->fileno, ==, 0);
    }
    g_assert_cmpuint(eoms, >=, 2);
    GArray *vols = tape_library_volumes(f.lib);
    for (unsigned i = 0; i < eoms; i++) {
        TapeVolumeInfo *v = &g_array_index(vols, TapeVolumeInfo, i);
        g_assert_true(v->full);
        g_assert_cmpuint(v->used, <=, v->capacity);
        g_assert_cmpuint(v->used, >, v->capacity / 2);
    }
    g_array_unref(vols);
    fx_clear(&f);
}

/* part_size 0: no splitting, a part ends only at LEOM or at the end. */
static void test_part_size_zero(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 6);
    tt_write_faults(f.libdir, "vol002", "peom 6000000\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, 0, 1 * MiB);
    TTWrite w = {.push_size = 5 * MiB + 3};
    write_ok(&f, t, &w, 106);
    tape_taper_free(t);
    /* vol001 whole, vol002 failed (PEOM), retried on vol003, then vol004 */
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    unsigned ok = 0;
    for (unsigned i = 0; i < f.parts.parts->len; i++) {
        const TapePartDone *d = part_at(&f, i);
        if (!d->successful)
            continue;
        ok++;
        g_assert_true(d->eom || d->eof);
        if (!d->eof)
            g_assert_cmpuint(d->size, >, 4 * MiB); /* a whole volume */
    }
    g_assert_cmpuint(ok, ==, tt_volumes_used(&f.parts, 106));
    g_assert_cmpuint(ok, >=, 3);
    fx_clear(&f);
}

/* Ring smaller than, equal to and much larger than a part, each with a
 * PEOM retry so that the replay from slices meets each ring size. */
static void ring_case(size_t ring, uint64_t seed)
{
    Fx f;
    fx_init(&f, 6, DUMP, seed);
    tt_write_faults(f.libdir, "vol002", "peom 3500000\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, ring);
    TTWrite w = {.push_size = 777 * KiB};
    write_ok(&f, t, &w, 200 + seed);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    g_assert_cmpuint(tt_volumes_used(&f.parts, 200 + seed), >=, 3);
    fx_clear(&f);
}

static void test_ring_smaller(void)
{
    ring_case(BS, 11); /* one block */
}

static void test_ring_equal(void)
{
    ring_case(PART, 12);
}

static void test_ring_larger(void)
{
    ring_case(16 * MiB + 1, 13); /* rounded up to blocks */
}

static void test_push_one_byte(void)
{
    Fx f;
    fx_init(&f, 4, 1 * MiB + 333, 14);
    tt_write_faults(f.libdir, "vol001", "peom 700000\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, 256 * KiB, 128 * KiB);
    TTWrite w = {.push_size = 1};
    write_ok(&f, t, &w, 107);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    g_assert_cmpuint(tt_volumes_used(&f.parts, 107), ==, 2);
    fx_clear(&f);
}

static void test_push_odd_sizes(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 15);
    tt_write_faults(f.libdir, "vol001", "fail-write 50\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 300 * KiB);
    TTWrite w = {.odd_pushes = true, .slices_per_push = true};
    write_ok(&f, t, &w, 108);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    fx_clear(&f);
}

static void test_push_many_mib(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 16);
    tt_write_faults(f.libdir, "vol003", "peom 4000000\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 1 * MiB);
    TTWrite w = {.push_size = 0}; /* one push of everything */
    write_ok(&f, t, &w, 109);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    fx_clear(&f);
}

/* Streaming devices get a full ring before each part starts. */
static void test_streaming_prebuffer(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 17);
    for (int i = 1; i <= 6; i++) {
        g_autofree char *v = g_strdup_printf("vol%03d", i);
        tt_write_faults(f.libdir, v, i == 2 ? "streaming required\npeom 3000000\n"
                                            : "streaming desired\n");
    }
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 3 * MiB);
    TTWrite w = {.push_size = 100 * KiB + 1};
    write_ok(&f, t, &w, 110);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 1);
    fx_clear(&f);
}

/* An empty dumpfile is one empty last part. */
static void test_empty_dumpfile(void)
{
    Fx f;
    fx_init(&f, 2, 0, 18);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 1 * MiB);
    TTWrite w = {0};
    write_ok(&f, t, &w, 111);
    tape_taper_free(t);
    g_assert_cmpuint(f.parts.parts->len, ==, 1);
    g_assert_cmpuint(part_at(&f, 0)->size, ==, 0);
    g_assert_true(part_at(&f, 0)->eof);
    fx_clear(&f);
}

/* Without slices a failed part cannot be written again: a clear error. */
static void test_retry_without_slices(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 19);
    tt_write_faults(f.libdir, "vol001", "peom 3000000\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 128 * KiB);
    TTWrite w = {.push_size = 1 * MiB};
    GError *err = NULL;
    int rc = tt_write_dumpfile(t, &w, 112, f.data, f.len, NULL, &f.parts,
                               &err);
    g_assert_cmpint(rc, ==, -EIO);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "slice"));
    g_clear_error(&err);
    /* part 2 failed once and never succeeded */
    for (unsigned i = 0; i < f.parts.parts->len; i++)
        if (part_at(&f, i)->partnum >= 2)
            g_assert_false(part_at(&f, i)->successful);
    tape_taper_free(t);
    fx_clear(&f);
}

static void test_library_full(void)
{
    Fx f;
    fx_init(&f, 2, DUMP, 20);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 1 * MiB);
    TTWrite w = {.push_size = 1 * MiB};
    GError *err = NULL;
    int rc = tt_write_dumpfile(t, &w, 113, f.data, f.len, f.slice, &f.parts,
                               &err);
    g_assert_cmpint(rc, ==, -ENOSPC);
    g_assert_error(err, TAPE_ERROR, ENOSPC);
    g_clear_error(&err);
    g_assert_cmpuint(tt_parts_count(&f.parts, true), >=, 6);
    tape_taper_free(t);
    /* nothing is writable any more */
    g_assert_null(tape_library_load_writable(f.lib, &err));
    g_assert_error(err, TAPE_ERROR, ENOSPC);
    g_clear_error(&err);
    fx_clear(&f);
}

/* Consecutive dumpfiles share the loaded volume. */
static void test_two_dumpfiles(void)
{
    Fx f;
    fx_init(&f, 6, 5 * MiB + 5, 21);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 1 * MiB);
    TTWrite w = {.push_size = 1 * MiB};
    write_ok(&f, t, &w, 114);
    unsigned first = f.parts.parts->len;
    write_ok(&f, t, &w, 115);
    write_ok(&f, t, &w, 116);
    tape_taper_free(t);
    g_assert_cmpuint(first, ==, 3);
    g_assert_cmpstr(part_at(&f, first)->volume, ==, "vol001");
    g_assert_cmpuint(part_at(&f, first)->fileno, ==, 3);
    g_assert_cmpuint(tt_volumes_used(&f.parts, 116), >=, 1);
    fx_clear(&f);
}

/* Slices spread over several files of odd sizes; retries re-read across
 * file boundaries. */
static void test_slices_in_many_files(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 25);
    tt_write_faults(f.libdir, "vol001", "peom 5100000\n");
    tt_write_faults(f.libdir, "vol003", "fail-write 7\n");
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 192 * KiB);
    GError *err = NULL;
    g_assert_cmpint(tape_taper_start(t, 123, 7, 42, tt_parts_record, &f.parts,
                                     &err), ==, 0);
    /* pieces of 333 333 bytes, each in its own file at offset 1000 */
    size_t piece = 333333;
    uint8_t *pad = g_malloc0(1000 + piece);
    unsigned k = 0;
    for (size_t pos = 0; pos < f.len; pos += piece, k++) {
        size_t n = MIN(piece, f.len - pos);
        memcpy(pad + 1000, f.data + pos, n);
        g_autofree char *name = g_strdup_printf("piece%u", k);
        g_autofree char *path = tt_write_file(f.tmp, name, pad, 1000 + n);
        tape_taper_add_slice(t, path, 1000, n);
    }
    g_free(pad);
    for (size_t pos = 0; pos < f.len; pos += 2 * MiB + 1)
        g_assert_cmpint(tape_taper_push(t, f.data + pos,
                                        MIN(2 * MiB + 1, f.len - pos), &err),
                        ==, 0);
    g_assert_cmpint(tape_taper_finish(t, &err), ==, 0);
    g_assert_no_error(err);
    tape_taper_free(t);
    g_assert_cmpuint(tt_parts_count(&f.parts, false), ==, 2);
    tt_check_readback(f.lib, &f.parts, 123, f.data, f.len);
    fx_clear(&f);
}

/* ---- cancel ---- */

typedef struct {
    TapeTaper *t;
    const uint8_t *data;
    size_t len;
    int rc;
    GError *err;
    uint64_t pushed;
} Producer;

static gpointer produce_forever(gpointer p)
{
    Producer *pr = p;
    for (;;) {
        /* a fresh buffer freed as soon as push returns: the sanitizer
         * catches the device thread reading a lent buffer too late */
        uint8_t *copy = g_malloc(pr->len);
        memcpy(copy, pr->data, pr->len);
        int rc = tape_taper_push(pr->t, copy, pr->len, &pr->err);
        g_free(copy);
        if (rc < 0) {
            pr->rc = rc;
            return NULL;
        }
        pr->pushed += pr->len;
    }
}

static void wait_parts(TTParts *parts, unsigned n)
{
    for (int i = 0; i < 30000 && tt_parts_count(parts, true) < n; i++)
        g_usleep(1000);
    g_assert_cmpuint(tt_parts_count(parts, true), >=, n);
}

static void test_cancel_mid_stream(void)
{
    Fx f;
    fx_init(&f, 6, 1 * MiB, 22);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 512 * KiB);
    GError *err = NULL;
    g_assert_cmpint(tape_taper_start(t, 117, 0, 0, tt_parts_record, &f.parts,
                                     &err), ==, 0);
    Producer pr = {.t = t, .data = f.data, .len = f.len};
    GThread *th = g_thread_new("producer", produce_forever, &pr);
    wait_parts(&f.parts, 4); /* beyond the first volume's LEOM */
    tape_taper_cancel(t);
    g_thread_join(th);
    g_assert_cmpint(pr.rc, ==, -ECANCELED);
    g_assert_error(pr.err, TAPE_ERROR, ECANCELED);
    g_clear_error(&pr.err);
    g_assert_cmpint(tape_taper_finish(t, &err), ==, -ECANCELED);
    g_clear_error(&err);
    g_assert_cmpint(tape_taper_push(t, "x", 1, &err), ==, -ECANCELED);
    g_clear_error(&err);
    tape_taper_cancel(t); /* twice is harmless */

    /* the taper is usable again, after the abandoned tape file */
    tt_parts_clear(&f.parts);
    tt_parts_init(&f.parts);
    TTWrite w = {.push_size = 100 * KiB};
    write_ok(&f, t, &w, 118);
    tape_taper_free(t);
    fx_clear(&f);
}

static TapeTaper *callback_taper; /* for cancel_in_callback only */

static void cancel_in_callback(const TapePartDone *d, void *user)
{
    Fx *f = user;
    tt_parts_record(d, &f->parts);
    if (d->partnum == 2)
        tape_taper_cancel(callback_taper);
}

static void test_cancel_from_part_done(void)
{
    Fx f;
    fx_init(&f, 6, DUMP, 23);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 256 * KiB);
    callback_taper = t;
    GError *err = NULL;
    g_assert_cmpint(tape_taper_start(t, 119, 0, 0, cancel_in_callback, &f,
                                     &err), ==, 0);
    int rc = 0;
    for (size_t pos = 0; pos < f.len && rc == 0; pos += 64 * KiB)
        rc = tape_taper_push(t, f.data + pos, MIN(64 * KiB, f.len - pos),
                             &err);
    g_assert_cmpint(rc, ==, -ECANCELED);
    g_clear_error(&err);
    g_assert_cmpint(tape_taper_finish(t, &err), ==, -ECANCELED);
    g_clear_error(&err);
    g_assert_cmpuint(tt_parts_count(&f.parts, true), ==, 2);
    tape_taper_free(t);
    fx_clear(&f);
}

/* Cancel before anything is pushed, and free with a dumpfile running. */
static void test_cancel_early_and_free_running(void)
{
    Fx f;
    fx_init(&f, 2, 3 * MiB, 24);
    fx_open(&f);
    TapeTaper *t = new_taper(&f, PART, 1 * MiB);
    GError *err = NULL;
    g_assert_cmpint(tape_taper_start(t, 120, 0, 0, tt_parts_record, &f.parts,
                                     &err), ==, 0);
    tape_taper_cancel(t);
    g_assert_cmpint(tape_taper_push(t, f.data, 10, &err), ==, -ECANCELED);
    g_clear_error(&err);
    g_assert_cmpint(tape_taper_start(t, 121, 0, 0, tt_parts_record, &f.parts,
                                     &err), ==, 0);
    g_assert_cmpint(tape_taper_start(t, 122, 0, 0, NULL, NULL, &err), ==,
                    -EBUSY);
    g_clear_error(&err);
    g_assert_cmpint(tape_taper_push(t, NULL, 5, &err), ==, -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(tape_taper_push(t, f.data, f.len, &err), ==, 0);
    tape_taper_free(t); /* cancels the running dumpfile */
    g_assert_cmpuint(tt_parts_count(&f.parts, true), <=, 1);
    fx_clear(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/taper/success", test_success);
    g_test_add_func("/taper/peom-mid-part", test_peom_mid_part);
    g_test_add_func("/taper/write-error", test_write_error);
    g_test_add_func("/taper/fail-on-fresh-volume-too",
                    test_fail_fresh_volume_too);
    g_test_add_func("/taper/leom", test_leom);
    g_test_add_func("/taper/part-size-zero", test_part_size_zero);
    g_test_add_func("/taper/ring-smaller-than-part", test_ring_smaller);
    g_test_add_func("/taper/ring-equal-to-part", test_ring_equal);
    g_test_add_func("/taper/ring-larger-than-part", test_ring_larger);
    g_test_add_func("/taper/push-one-byte", test_push_one_byte);
    g_test_add_func("/taper/push-odd-sizes", test_push_odd_sizes);
    g_test_add_func("/taper/push-many-mib", test_push_many_mib);
    g_test_add_func("/taper/streaming-prebuffer", test_streaming_prebuffer);
    g_test_add_func("/taper/empty-dumpfile", test_empty_dumpfile);
    g_test_add_func("/taper/retry-without-slices", test_retry_without_slices);
    g_test_add_func("/taper/library-full", test_library_full);
    g_test_add_func("/taper/two-dumpfiles", test_two_dumpfiles);
    g_test_add_func("/taper/slices-in-many-files", test_slices_in_many_files);
    g_test_add_func("/taper/cancel-mid-stream", test_cancel_mid_stream);
    g_test_add_func("/taper/cancel-from-part-done",
                    test_cancel_from_part_done);
    g_test_add_func("/taper/cancel-early-and-free-running",
                    test_cancel_early_and_free_running);
    return g_test_run();
}

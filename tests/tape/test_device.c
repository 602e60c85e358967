/* test_device.c — the virtual tape device and the part reader on real
 * volumes: write and read back tape files, random access reads, LEOM and
 * PEOM, the fault rules (fail-write, peom, fail-read, streaming, malformed
 * files), corrupted blocks, headers and trailers detected on read, and bad
 * calls refused without changing anything. */
#include "tape_testlib.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define KiB ((uint64_t)1024)
#define MiB (KiB * 1024)
#define BS ((uint32_t)(64 * KiB))

typedef struct {
    char *tmp;
    char *dir;
    TapeLibrary *lib;
} Lib;

static void lib_init(Lib *l, unsigned n, uint64_t size)
{
    l->tmp = tt_tmpdir();
    l->dir = g_build_filename(l->tmp, "library", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(l->dir, "dev-store", n, size, BS,
                                        &err), ==, 0);
    l->lib = NULL;
}

static void lib_open(Lib *l)
{
    GError *err = NULL;
    l->lib = tape_library_open(l->dir, "dev-store", &err);
    g_assert_no_error(err);
}

static void lib_clear(Lib *l)
{
    tape_library_close(l->lib);
    tt_rmtree(l->tmp);
    g_free(l->tmp);
    g_free(l->dir);
}

static TapeDevice *load_writable(Lib *l)
{
    GError *err = NULL;
    TapeDevice *d = tape_library_load_writable(l->lib, &err);
    g_assert_no_error(err);
    return d;
}

/* Write one whole tape file; returns its number. */
static int put_file(TapeDevice *dev, uint64_t id, uint32_t partnum,
                    const uint8_t *data, size_t len)
{
    GError *err = NULL;
    TapePartHeader h = {.dumpfile_id = id, .partnum = partnum,
                        .offset = 1000 * id, .kind = 3, .generation = 9};
    int fileno = tape_device_start_file(dev, &h, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fileno, >=, 0);
    for (size_t pos = 0; pos < len; pos += BS)
        g_assert_cmpint(tape_device_write_block(dev, data + pos,
                                                MIN((size_t)BS, len - pos),
                                                &err), ==, 0);
    TapePartTrailer t = {.length = len, .nblocks = (len + BS - 1) / BS,
                         .last = partnum == 2};
    tape_device_payload_xxh128(dev, t.payload_xxh128);
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, 0);
    g_assert_no_error(err);
    return fileno;
}

static char *file_path(Lib *l, const char *vol, unsigned fileno)
{
    g_autofree char *name = g_strdup_printf("file%06u", fileno);
    return g_build_filename(l->dir, vol, name, NULL);
}

static void test_write_read(void)
{
    Lib l;
    lib_init(&l, 2, 16 * MiB);
    lib_open(&l);
    size_t lens[] = {5 * BS, 3 * BS + 12345, 1, 0, 2 * MiB + 7};
    uint8_t *data[G_N_ELEMENTS(lens)];
    TapeDevice *dev = load_writable(&l);
    g_assert_cmpuint(tape_device_block_size(dev), ==, BS);
    g_assert_cmpint(tape_device_streaming(dev), ==, TAPE_STREAMING_NONE);
    g_assert_false(tape_device_is_eom(dev));
    for (unsigned i = 0; i < G_N_ELEMENTS(lens); i++) {
        data[i] = tt_random_data(lens[i], 100 + i);
        g_assert_cmpint(put_file(dev, i + 1, 1 + i % 2, data[i], lens[i]), ==,
                        (int)i);
    }
    tape_device_unload(dev);

    /* device read side */
    GError *err = NULL;
    TapeDevice *rd = tape_library_load(l.lib, "vol001", &err);
    g_assert_no_error(err);
    uint8_t *buf = g_malloc(BS);
    TapePartHeader h;
    g_assert_cmpint(tape_device_seek_file(rd, 1, &h, &err), ==, 0);
    g_assert_cmpuint(h.dumpfile_id, ==, 2);
    g_assert_cmpuint(h.partnum, ==, 2);
    g_assert_cmpuint(h.offset, ==, 2000);
    g_assert_cmpuint(h.kind, ==, 3);
    g_assert_cmpuint(h.generation, ==, 9);
    g_assert_cmpuint(h.block_size, ==, BS);
    g_assert_cmpstr(h.volume, ==, "vol001");
    g_assert_cmpstr(h.store_id, ==, "dev-store");
    for (int b = 3; b >= 0; b--) { /* any order */
        ssize_t n = tape_device_read_block(rd, (uint64_t)b, buf, &err);
        g_assert_no_error(err);
        g_assert_cmpint(n, ==, b == 3 ? 12345 : (int)BS);
        g_assert_cmpmem(buf, (size_t)n, data[1] + (size_t)b * BS, (size_t)n);
    }
    g_assert_cmpint(tape_device_read_block(rd, 4, buf, &err), ==, -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(tape_device_seek_file(rd, 99, &h, &err), ==, -ENOENT);
    g_assert_error(err, TAPE_ERROR, ENOENT);
    g_clear_error(&err);
    g_assert_cmpint(tape_device_read_block(rd, 0, buf, &err), ==, -EBADF);
    g_clear_error(&err);
    tape_device_unload(rd);

    /* part reader: random ranges */
    for (unsigned i = 0; i < G_N_ELEMENTS(lens); i++) {
        TapePart *p = tape_part_open(l.lib, "vol001", i, &err);
        g_assert_no_error(err);
        const TapePartTrailer *t = tape_part_trailer(p);
        g_assert_cmpuint(t->length, ==, lens[i]);
        g_assert_cmpuint(t->nblocks, ==, (lens[i] + BS - 1) / BS);
        g_assert_cmpint(t->last, ==, i % 2 == 1);
        g_assert_cmpint(tape_part_verify(p, &err), ==, 0);
        uint8_t *got = g_malloc(lens[i] + 1);
        for (int k = 0; k < 50; k++) {
            uint64_t off = lens[i] ? g_test_rand_int_range(0, (gint32)lens[i])
                                   : 0;
            size_t len = (size_t)g_test_rand_int_range(
                0, (gint32)MIN(lens[i] - off, 3 * BS) + 1);
            g_assert_cmpint(tape_part_read(p, off, got, len, &err), ==, 0);
            g_assert_no_error(err);
            g_assert_cmpmem(got, len, data[i] + off, len);
        }
        g_assert_cmpint(tape_part_read(p, 0, got, lens[i], &err), ==, 0);
        g_assert_cmpmem(got, lens[i], data[i], lens[i]);
        g_assert_cmpint(tape_part_read(p, lens[i], got, 1, &err), ==, -EINVAL);
        g_assert_error(err, TAPE_ERROR, EINVAL);
        g_clear_error(&err);
        g_free(got);
        tape_part_close(p);
        g_free(data[i]);
    }
    g_assert_null(tape_part_open(l.lib, "vol001", 5, &err));
    g_assert_error(err, TAPE_ERROR, ENOENT);
    g_clear_error(&err);
    g_free(buf);
    lib_clear(&l);
}

static void test_bad_calls(void)
{
    Lib l;
    lib_init(&l, 1, 4 * MiB);
    lib_open(&l);
    TapeDevice *dev = load_writable(&l);
    GError *err = NULL;
    uint8_t *block = tt_random_data(BS + 1, 5);
    g_assert_cmpint(tape_device_write_block(dev, block, BS, &err), ==, -EBADF);
    g_clear_error(&err);
    TapePartTrailer t = {0};
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, -EBADF);
    g_clear_error(&err);
    TapePartHeader h = {.dumpfile_id = 1};
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, 0);
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, -EBUSY);
    g_clear_error(&err);
    g_assert_cmpint(tape_device_write_block(dev, block, BS + 1, &err), ==,
                    -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(tape_device_write_block(dev, block, 0, &err), ==, -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(tape_device_write_block(dev, NULL, BS, &err), ==, -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(tape_device_write_block(dev, block, 100, &err), ==, 0);
    /* nothing after a short block */
    g_assert_cmpint(tape_device_write_block(dev, block, BS, &err), ==, -EINVAL);
    g_clear_error(&err);
    /* a trailer that does not match what was written */
    t.length = 101;
    t.nblocks = 1;
    tape_device_payload_xxh128(dev, t.payload_xxh128);
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, -EINVAL);
    g_assert_error(err, TAPE_ERROR, EINVAL);
    g_clear_error(&err);
    t.length = 100;
    t.payload_xxh128[3] ^= 1;
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, -EINVAL);
    g_clear_error(&err);
    t.payload_xxh128[3] ^= 1;
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, 0);
    g_assert_no_error(err);
    tape_device_unload(dev);
    TapePart *p = tape_part_open(l.lib, "vol001", 0, &err);
    g_assert_no_error(err);
    uint8_t got[100];
    g_assert_cmpint(tape_part_read(p, 0, got, 100, &err), ==, 0);
    g_assert_cmpmem(got, 100, block, 100);
    tape_part_close(p);
    g_free(block);
    lib_clear(&l);
}

/* LEOM comes a margin before capacity, early enough that a trailer fits. */
static void test_leom(void)
{
    Lib l;
    lib_init(&l, 1, 4 * MiB);
    lib_open(&l);
    TapeDevice *dev = load_writable(&l);
    GError *err = NULL;
    uint8_t *block = tt_random_data(BS, 6);
    TapePartHeader h = {.dumpfile_id = 1};
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, 0);
    uint64_t n = 0;
    while (!tape_device_is_eom(dev)) {
        g_assert_cmpint(tape_device_write_block(dev, block, BS, &err), ==, 0);
        n++;
        g_assert_cmpuint(n, <, 64);
    }
    GArray *v = tape_library_volumes(l.lib);
    uint64_t used = g_array_index(v, TapeVolumeInfo, 0).used;
    g_array_unref(v);
    g_assert_cmpuint(used, <, 4 * MiB);
    g_assert_cmpuint(used, >, 3 * MiB);
    TapePartTrailer t = {.length = n * BS, .nblocks = n};
    tape_device_payload_xxh128(dev, t.payload_xxh128);
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, 0);
    g_assert_no_error(err);
    tape_device_unload(dev);
    /* past LEOM the changer has nothing writable */
    g_assert_null(tape_library_load_writable(l.lib, &err));
    g_assert_error(err, TAPE_ERROR, ENOSPC);
    g_clear_error(&err);
    g_free(block);
    lib_clear(&l);
}

/* PEOM at capacity (with a margin of zero blocks past LEOM ignored) and
 * through the `peom` rule, with no LEOM warning first. */
static void test_peom(void)
{
    Lib l;
    lib_init(&l, 2, 4 * MiB);
    tt_write_faults(l.dir, "vol001", "peom 600000   # bytes\n");
    lib_open(&l);
    TapeDevice *dev = load_writable(&l);
    GError *err = NULL;
    uint8_t *block = tt_random_data(BS, 7);
    TapePartHeader h = {.dumpfile_id = 1};
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, 0);
    int rc = 0;
    unsigned n = 0;
    while (rc == 0) {
        g_assert_false(tape_device_is_eom(dev));
        rc = tape_device_write_block(dev, block, BS, &err);
        n += rc == 0;
    }
    g_assert_cmpint(rc, ==, -ENOSPC);
    g_assert_error(err, TAPE_ERROR, ENOSPC);
    g_assert_nonnull(strstr(err->message, "vol001"));
    g_clear_error(&err);
    g_assert_cmpuint(n, ==, 600000 / BS - 1); /* the header took a block */
    /* the file is unusable */
    g_assert_cmpint(tape_device_write_block(dev, block, BS, &err), ==, -EIO);
    g_clear_error(&err);
    TapePartTrailer t = {.length = n * (uint64_t)BS, .nblocks = n};
    tape_device_payload_xxh128(dev, t.payload_xxh128);
    g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, -EIO);
    g_clear_error(&err);
    /* a new file fails at once: the medium has ended */
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, -ENOSPC);
    g_clear_error(&err);
    tape_library_mark_full(l.lib, dev);
    tape_device_unload(dev);
    g_assert_null(tape_part_open(l.lib, "vol001", 0, &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    GArray *v = tape_library_volumes(l.lib);
    g_assert_cmpuint(g_array_index(v, TapeVolumeInfo, 0).nfiles, ==, 2);
    g_assert_true(g_array_index(v, TapeVolumeInfo, 0).full);
    g_array_unref(v);
    dev = load_writable(&l);
    g_assert_cmpstr(tape_device_volume(dev), ==, "vol002");
    tape_device_unload(dev);
    g_free(block);
    lib_clear(&l);
}

static void test_fault_rules(void)
{
    Lib l;
    lib_init(&l, 1, 8 * MiB);
    tt_write_faults(l.dir, "vol001",
                    "# test rules\n\n  fail-write 3\nfail-read 1 2\n"
                    "fail-write 8 # again\nstreaming desired\n");
    lib_open(&l);
    TapeDevice *dev = load_writable(&l);
    g_assert_cmpint(tape_device_streaming(dev), ==, TAPE_STREAMING_DESIRED);
    GError *err = NULL;
    uint8_t *data = tt_random_data(4 * BS, 8);
    TapePartHeader h = {.dumpfile_id = 1};
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, 0);
    g_assert_cmpint(tape_device_write_block(dev, data, BS, &err), ==, 0);
    g_assert_cmpint(tape_device_write_block(dev, data, BS, &err), ==, 0);
    g_assert_cmpint(tape_device_write_block(dev, data, BS, &err), ==, -EIO);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "injected"));
    g_clear_error(&err);
    /* block writes 4..7 work, the 8th fails */
    g_assert_cmpint(put_file(dev, 2, 1, data, 4 * BS), ==, 1);
    g_assert_cmpint(tape_device_start_file(dev, &h, &err), ==, 2);
    g_assert_cmpint(tape_device_write_block(dev, data, BS, &err), ==, -EIO);
    g_clear_error(&err);
    tape_device_unload(dev);

    TapePart *p = tape_part_open(l.lib, "vol001", 1, &err);
    g_assert_no_error(err);
    uint8_t *buf = g_malloc(4 * BS);
    g_assert_cmpint(tape_part_read(p, 0, buf, 2 * BS, &err), ==, 0);
    g_assert_cmpint(tape_part_read(p, 3 * BS, buf, BS, &err), ==, 0);
    g_assert_cmpint(tape_part_read(p, BS, buf, 2 * BS, &err), ==, -EIO);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "vol001 file 1 block 2"));
    g_clear_error(&err);
    g_assert_cmpint(tape_part_verify(p, &err), ==, -EIO);
    g_clear_error(&err);
    tape_part_close(p);

    /* malformed rule files are refused with the line named */
    const char *bad[] = {"fail-write\n", "fail-write 0\n", "peom x\n",
                         "fail-read 1\n", "explode 3\n", "fail-write 1 2\n",
                         "streaming sometimes\n", "fail-read 1 2 3 4\n"};
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *text = g_strdup_printf("# fine\n%s", bad[i]);
        tt_write_faults(l.dir, "vol001", text);
        g_assert_null(tape_library_load(l.lib, "vol001", &err));
        g_assert_error(err, TAPE_ERROR, EINVAL);
        g_assert_nonnull(strstr(err->message, "line 2"));
        g_clear_error(&err);
        g_assert_null(tape_library_load_writable(l.lib, &err));
        g_assert_error(err, TAPE_ERROR, EINVAL);
        g_clear_error(&err);
    }
    tt_write_faults(l.dir, "vol001", "streaming required\n");
    dev = load_writable(&l);
    g_assert_cmpint(tape_device_streaming(dev), ==, TAPE_STREAMING_REQUIRED);
    tape_device_unload(dev);
    g_free(buf);
    g_free(data);
    lib_clear(&l);
}

/* A flipped bit anywhere in a stored part is found on read: -EIO naming
 * volume, file and block, and never the wrong bytes. */
static void test_corruption_detected(void)
{
    Lib l;
    lib_init(&l, 1, 8 * MiB);
    lib_open(&l);
    size_t len = 5 * BS + 999;
    uint8_t *data = tt_random_data(len, 9);
    TapeDevice *dev = load_writable(&l);
    for (unsigned i = 0; i < 4; i++)
        put_file(dev, 1, 1, data, len);
    tape_device_unload(dev);
    GError *err = NULL;
    uint8_t *buf = g_malloc(len);

    /* file 0: a data bit in block 3 */
    g_autofree char *f0 = file_path(&l, "vol001", 0);
    tt_xor_byte(f0, (long)(BS * 4 + 1234), 0x01);
    TapePart *p = tape_part_open(l.lib, "vol001", 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(tape_part_read(p, 0, buf, 3 * BS, &err), ==, 0);
    g_assert_cmpmem(buf, 3 * BS, data, 3 * BS);
    memset(buf, 0xAA, len);
    g_assert_cmpint(tape_part_read(p, 3 * BS + 1000, buf, 300, &err), ==, -EIO);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "vol001 file 0 block 3"));
    g_assert_nonnull(strstr(err->message, "checksum"));
    g_clear_error(&err);
    for (unsigned i = 0; i < 300; i++) /* nothing was copied out */
        g_assert_cmpuint(buf[i], ==, 0xAA);
    g_assert_cmpint(tape_part_verify(p, &err), ==, -EIO);
    g_clear_error(&err);
    tape_part_close(p);
    /* the device read side says the same, with a wiped buffer */
    dev = tape_library_load(l.lib, "vol001", &err);
    g_assert_cmpint(tape_device_seek_file(dev, 0, NULL, &err), ==, 0);
    g_assert_cmpint(tape_device_read_block(dev, 3, buf, &err), ==, -EIO);
    g_clear_error(&err);
    g_assert_false(memcmp(buf, data + 3 * BS, BS) == 0);
    tape_device_unload(dev);

    /* file 1: the short last block, in its payload */
    g_autofree char *f1 = file_path(&l, "vol001", 1);
    tt_xor_byte(f1, (long)(BS * 6 + 5), 0x01);
    p = tape_part_open(l.lib, "vol001", 1, &err);
    g_assert_cmpint(tape_part_read(p, 5 * BS, buf, 999, &err), ==, -EIO);
    g_assert_nonnull(strstr(err->message, "block 5"));
    g_clear_error(&err);
    tape_part_close(p);

    /* file 2: the header; file 3: the trailer */
    g_autofree char *f2 = file_path(&l, "vol001", 2);
    tt_xor_byte(f2, 30, 0x01);
    g_assert_null(tape_part_open(l.lib, "vol001", 2, &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "vol001 file 2"));
    g_clear_error(&err);
    g_autofree char *f3 = file_path(&l, "vol001", 3);
    struct stat st;
    g_assert_cmpint(stat(f3, &st), ==, 0);
    tt_xor_byte(f3, (long)(BS * 7 + 16), 0x01); /* a block hash */
    g_assert_null(tape_part_open(l.lib, "vol001", 3, &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    tt_xor_byte(f3, (long)(BS * 7 + 16), 0x01);
    tt_xor_byte(f3, (long)st.st_size - 60, 0x01); /* the footer */
    g_assert_null(tape_part_open(l.lib, "vol001", 3, &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    tt_xor_byte(f3, (long)st.st_size - 60, 0x01);
    p = tape_part_open(l.lib, "vol001", 3, &err); /* repaired */
    g_assert_no_error(err);
    g_assert_cmpint(tape_part_verify(p, &err), ==, 0);
    tape_part_close(p);
    /* a part renamed to another file number is refused */
    g_autofree char *f9 = file_path(&l, "vol001", 9);
    g_assert_cmpint(g_rename(f3, f9), ==, 0);
    g_assert_null(tape_part_open(l.lib, "vol001", 9, &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    /* a truncated part */
    g_assert_cmpint(truncate(f9, st.st_size - BS), ==, 0);
    g_assert_cmpint(g_rename(f9, f3), ==, 0);
    g_assert_null(tape_part_open(l.lib, "vol001", 3, &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    g_free(buf);
    g_free(data);
    lib_clear(&l);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/device/write-read", test_write_read);
    g_test_add_func("/device/bad-calls", test_bad_calls);
    g_test_add_func("/device/leom", test_leom);
    g_test_add_func("/device/peom", test_peom);
    g_test_add_func("/device/fault-rules", test_fault_rules);
    g_test_add_func("/device/corruption-detected", test_corruption_detected);
    return g_test_run();
}

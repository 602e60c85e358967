/* test_library.c — libraries of virtual volumes on real directories:
 * format and reopen, bad input refused without changes, foreign volumes
 * refused and never written, damaged labels detected, volume state kept
 * across a restart and a crash, adding volumes, the changer. */
#include "tape_testlib.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#define KiB ((uint64_t)1024)
#define MiB (KiB * 1024)
#define BS ((uint32_t)(64 * KiB))

static char *read_all(const char *path, size_t *len)
{
    char *text = NULL;
    gsize n = 0;
    GError *err = NULL;
    g_file_get_contents(path, &text, &n, &err);
    g_assert_no_error(err);
    if (len)
        *len = n;
    return text;
}

static unsigned count_entries(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return 0;
    unsigned n = 0;
    while (g_dir_read_name(d))
        n++;
    g_dir_close(d);
    return n;
}

static void assert_one_line(const GError *err)
{
    g_assert_nonnull(err);
    g_assert_cmpuint(strlen(err->message), >, 0);
    g_assert_null(strchr(err->message, '\n'));
}

static void test_format_and_open(void)
{
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *dir = g_build_filename(tmp, "a", "b", "library", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(dir, "store-1", 3, 4 * MiB, BS, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(count_entries(dir), ==, 3);
    TapeLibrary *lib = tape_library_open(dir, "store-1", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(tape_library_store_id(lib), ==, "store-1");
    g_assert_cmpuint(tape_library_block_size(lib), ==, BS);
    GArray *v = tape_library_volumes(lib);
    g_assert_cmpuint(v->len, ==, 3);
    for (unsigned i = 0; i < 3; i++) {
        TapeVolumeInfo *info = &g_array_index(v, TapeVolumeInfo, i);
        g_autofree char *name = g_strdup_printf("vol%03u", i + 1);
        g_assert_cmpstr(info->name, ==, name);
        g_assert_cmpuint(info->capacity, ==, 4 * MiB);
        g_assert_cmpuint(info->used, ==, 0);
        g_assert_cmpuint(info->nfiles, ==, 0);
        g_assert_false(info->full);
    }
    g_array_unref(v);
    tape_library_close(lib);

    /* recovery: the store id comes from the labels */
    lib = tape_library_open(dir, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(tape_library_store_id(lib), ==, "store-1");
    tape_library_close(lib);
    tt_rmtree(tmp);
}

static void test_bad_input(void)
{
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *dir = g_build_filename(tmp, "library", NULL);
    GError *err = NULL;
    struct {
        const char *store;
        unsigned n;
        uint64_t size;
        uint32_t bs;
        uint64_t margin;
    } bad[] = {
        {"s", 0, 4 * MiB, BS, 0},          /* no volumes */
        {"s", 1, 4 * MiB, 1000, 0},        /* block size */
        {"s", 1, 4 * MiB, 0, 0},           /* block size */
        {"s", 1, 64 * KiB, BS, 0},         /* volume too small */
        {"s", 1, 4 * MiB, BS, 1000},       /* margin below a trailer */
        {"", 1, 4 * MiB, BS, 0},           /* empty store id */
        {"a/b", 1, 4 * MiB, BS, 0},        /* '/' in the store id */
        {"0123456789012345678901234567890123456789", 1, 4 * MiB, BS, 0},
        {"s", 1000, 4 * MiB, BS, 0},       /* too many volumes */
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        int rc = tape_library_format_with_margin(dir, bad[i].store, bad[i].n,
                                                 bad[i].size, bad[i].bs,
                                                 bad[i].margin, &err);
        g_assert_cmpint(rc, ==, -EINVAL);
        g_assert_error(err, TAPE_ERROR, EINVAL);
        assert_one_line(err);
        g_clear_error(&err);
        g_assert_cmpuint(count_entries(dir), ==, 0); /* nothing created */
    }
    /* a library is never formatted twice */
    g_assert_cmpint(tape_library_format(dir, "s", 2, 4 * MiB, BS, &err), ==, 0);
    g_autofree char *label = g_build_filename(dir, "vol001", "label", NULL);
    size_t before_len;
    g_autofree char *before = read_all(label, &before_len);
    g_assert_cmpint(tape_library_format(dir, "other", 2, 4 * MiB, BS, &err),
                    ==, -EEXIST);
    g_assert_error(err, TAPE_ERROR, EEXIST);
    g_clear_error(&err);
    size_t after_len;
    g_autofree char *after = read_all(label, &after_len);
    g_assert_cmpmem(before, before_len, after, after_len);
    g_assert_cmpuint(count_entries(dir), ==, 2);

    /* opening what is not a library */
    g_autofree char *missing = g_build_filename(tmp, "nope", NULL);
    g_assert_null(tape_library_open(missing, "s", &err));
    g_assert_error(err, TAPE_ERROR, ENOENT);
    g_clear_error(&err);
    g_assert_null(tape_library_open(tmp, "s", &err)); /* 'library' has no label */
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    g_autofree char *empty = g_build_filename(tmp, "empty", NULL);
    g_mkdir(empty, 0755);
    g_assert_null(tape_library_open(empty, "s", &err));
    g_assert_error(err, TAPE_ERROR, ENOENT);
    g_clear_error(&err);

    TapeLibrary *lib = tape_library_open(dir, "s", &err);
    g_assert_no_error(err);
    g_assert_null(tape_library_load(lib, "vol999", &err));
    g_assert_error(err, TAPE_ERROR, ENOENT);
    g_clear_error(&err);
    g_assert_cmpint(tape_library_add_volumes(lib, 0, 4 * MiB, &err), ==,
                    -EINVAL);
    g_clear_error(&err);
    g_assert_cmpint(tape_library_add_volumes(lib, 1, 256 * KiB, &err), ==,
                    -EINVAL);
    g_clear_error(&err);
    tape_library_close(lib);
    tt_rmtree(tmp);
}

/* Snapshot of every file under a volume directory: name -> contents. */
static GHashTable *snapshot_dir(const char *dir)
{
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          g_free);
    GDir *d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        size_t len;
        char *text = read_all(path, &len);
        g_autofree char *sum = g_compute_checksum_for_data(
            G_CHECKSUM_SHA256, (guchar *)text, len);
        char *entry = g_strdup_printf("%zu:%s", len, sum);
        g_free(text);
        g_hash_table_insert(h, g_strdup(name), entry);
    }
    g_dir_close(d);
    return h;
}

static void assert_same_dir(GHashTable *a, GHashTable *b)
{
    g_assert_cmpuint(g_hash_table_size(a), ==, g_hash_table_size(b));
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, a);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_assert_cmpstr(v, ==, g_hash_table_lookup(b, k));
}

static void test_foreign_volume_refused(void)
{
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *mine = g_build_filename(tmp, "mine", NULL);
    g_autofree char *theirs = g_build_filename(tmp, "theirs", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(mine, "store-mine", 2, 4 * MiB, BS,
                                        &err), ==, 0);
    g_assert_cmpint(tape_library_format(theirs, "store-theirs", 3, 4 * MiB,
                                        BS, &err), ==, 0);
    /* a volume of the other store shows up in our library as vol003 */
    g_autofree char *src = g_build_filename(theirs, "vol003", NULL);
    g_autofree char *dst = g_build_filename(mine, "vol003", NULL);
    g_assert_cmpint(g_rename(src, dst), ==, 0);
    GHashTable *before = snapshot_dir(dst);

    TapeLibrary *lib = tape_library_open(mine, "store-mine", &err);
    g_assert_null(lib);
    g_assert_error(err, TAPE_ERROR, EMEDIUMTYPE);
    assert_one_line(err);
    g_assert_nonnull(strstr(err->message, "vol003"));
    g_assert_nonnull(strstr(err->message, "store-theirs"));
    g_clear_error(&err);
    /* recovery mode: the labels disagree */
    g_assert_null(tape_library_open(mine, NULL, &err));
    g_assert_error(err, TAPE_ERROR, EMEDIUMTYPE);
    g_clear_error(&err);
    /* the whole other library opened with our store id */
    g_assert_null(tape_library_open(theirs, "store-mine", &err));
    g_assert_error(err, TAPE_ERROR, EMEDIUMTYPE);
    g_clear_error(&err);

    GHashTable *after = snapshot_dir(dst);
    assert_same_dir(before, after);
    g_hash_table_unref(before);
    g_hash_table_unref(after);
    tt_rmtree(tmp);
}

static void test_label_damage(void)
{
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *dir = g_build_filename(tmp, "library", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(dir, "store-1", 3, 4 * MiB, BS, &err),
                    ==, 0);
    g_autofree char *label = g_build_filename(dir, "vol002", "label", NULL);
    long offsets[] = {0, 20, 40, 80, 125};
    for (unsigned i = 0; i < G_N_ELEMENTS(offsets); i++) {
        tt_xor_byte(label, offsets[i], 0x10);
        g_assert_null(tape_library_open(dir, "store-1", &err));
        g_assert_error(err, TAPE_ERROR, EIO);
        assert_one_line(err);
        g_assert_nonnull(strstr(err->message, "vol002"));
        g_clear_error(&err);
        tt_xor_byte(label, offsets[i], 0x10); /* repair */
        TapeLibrary *lib = tape_library_open(dir, "store-1", &err);
        g_assert_no_error(err);
        tape_library_close(lib);
    }
    /* truncated, missing, renamed */
    size_t len;
    g_autofree char *orig = read_all(label, &len);
    g_assert_true(g_file_set_contents(label, orig, 100, NULL));
    g_assert_null(tape_library_open(dir, "store-1", &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    g_unlink(label);
    g_assert_null(tape_library_open(dir, "store-1", &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_clear_error(&err);
    g_assert_true(g_file_set_contents(label, orig, (gssize)len, NULL));
    g_autofree char *v2 = g_build_filename(dir, "vol002", NULL);
    g_autofree char *v9 = g_build_filename(dir, "vol009", NULL);
    g_assert_cmpint(g_rename(v2, v9), ==, 0);
    g_assert_null(tape_library_open(dir, "store-1", &err));
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "vol009"));
    g_clear_error(&err);
    tt_rmtree(tmp);
}

static int write_file(TapeDevice *dev, uint64_t id, const uint8_t *data,
                      size_t len, bool finish)
{
    GError *err = NULL;
    TapePartHeader h = {.dumpfile_id = id, .partnum = 1};
    int fileno = tape_device_start_file(dev, &h, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fileno, >=, 0);
    for (size_t pos = 0; pos < len; pos += BS) {
        size_t n = MIN((size_t)BS, len - pos);
        g_assert_cmpint(tape_device_write_block(dev, data + pos, n, &err), ==,
                        0);
    }
    if (finish) {
        TapePartTrailer t = {.length = len, .nblocks = (len + BS - 1) / BS,
                             .last = true};
        tape_device_payload_xxh128(dev, t.payload_xxh128);
        g_assert_cmpint(tape_device_finish_file(dev, &t, &err), ==, 0);
        g_assert_no_error(err);
    }
    return fileno;
}

static GArray *volumes_of(const char *dir)
{
    GError *err = NULL;
    TapeLibrary *lib = tape_library_open(dir, "store-1", &err);
    g_assert_no_error(err);
    GArray *v = tape_library_volumes(lib);
    tape_library_close(lib);
    return v;
}

/* Volume state comes back after a clean restart and after a crash in the
 * middle of a tape file (the unfinished file stays a failed file). */
static void test_restart_keeps_state(void)
{
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *dir = g_build_filename(tmp, "library", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(dir, "store-1", 3, 4 * MiB, BS, &err),
                    ==, 0);
    uint8_t *data = tt_random_data(300 * KiB, 7);
    TapeLibrary *lib = tape_library_open(dir, "store-1", &err);
    TapeDevice *dev = tape_library_load_writable(lib, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(tape_device_volume(dev), ==, "vol001");
    g_assert_cmpint(write_file(dev, 1, data, 300 * KiB, true), ==, 0);
    g_assert_cmpint(write_file(dev, 2, data, 100 * KiB, true), ==, 1);
    tape_library_mark_full(lib, dev);
    tape_device_unload(dev);
    dev = tape_library_load_writable(lib, &err);
    g_assert_cmpstr(tape_device_volume(dev), ==, "vol002");
    g_assert_cmpint(write_file(dev, 3, data, 200 * KiB, true), ==, 0);
    /* "crash": a file is started and written but never finished */
    g_assert_cmpint(write_file(dev, 4, data, 150 * KiB, false), ==, 1);
    GArray *live = tape_library_volumes(lib);
    tape_device_unload(dev);
    tape_library_close(lib);

    GArray *again = volumes_of(dir);
    g_assert_cmpuint(again->len, ==, live->len);
    for (unsigned i = 0; i < live->len; i++) {
        TapeVolumeInfo *a = &g_array_index(live, TapeVolumeInfo, i);
        TapeVolumeInfo *b = &g_array_index(again, TapeVolumeInfo, i);
        g_assert_cmpstr(a->name, ==, b->name);
        g_assert_cmpuint(a->used, ==, b->used);
        g_assert_cmpuint(a->nfiles, ==, b->nfiles);
        g_assert_cmpint(a->full, ==, b->full);
    }
    TapeVolumeInfo *v1 = &g_array_index(again, TapeVolumeInfo, 0);
    TapeVolumeInfo *v2 = &g_array_index(again, TapeVolumeInfo, 1);
    g_assert_true(v1->full);
    g_assert_cmpuint(v1->nfiles, ==, 2);
    g_assert_false(v2->full);
    g_assert_cmpuint(v2->nfiles, ==, 2);
    /* 4 blocks + trailer block + header, then header + 3 blocks */
    g_assert_cmpuint(v2->used, ==, (uint64_t)BS * (1 + 4 + 1) + BS * (1 + 3));
    g_array_unref(live);
    g_array_unref(again);

    lib = tape_library_open(dir, "store-1", &err);
    /* the unfinished file is a failed file; the next goes after it */
    TapePart *p = tape_part_open(lib, "vol002", 1, &err);
    g_assert_null(p);
    g_assert_error(err, TAPE_ERROR, EIO);
    g_assert_nonnull(strstr(err->message, "never finished"));
    g_clear_error(&err);
    p = tape_part_open(lib, "vol001", 0, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(tape_part_trailer(p)->length, ==, 300 * KiB);
    tape_part_close(p);
    dev = tape_library_load_writable(lib, &err);
    g_assert_cmpstr(tape_device_volume(dev), ==, "vol002");
    g_assert_cmpint(write_file(dev, 5, data, 10 * KiB, true), ==, 2);
    tape_device_unload(dev);
    tape_library_close(lib);
    g_free(data);
    tt_rmtree(tmp);
}

static void test_changer(void)
{
    g_autofree char *tmp = tt_tmpdir();
    g_autofree char *dir = g_build_filename(tmp, "library", NULL);
    GError *err = NULL;
    g_assert_cmpint(tape_library_format(dir, "store-1", 2, 4 * MiB, BS, &err),
                    ==, 0);
    TapeLibrary *lib = tape_library_open(dir, "store-1", &err);
    TapeDevice *a = tape_library_load_writable(lib, &err);
    TapeDevice *b = tape_library_load_writable(lib, &err);
    g_assert_no_error(err);
    /* a volume is loaded for writing once at a time */
    g_assert_cmpstr(tape_device_volume(a), ==, "vol001");
    g_assert_cmpstr(tape_device_volume(b), ==, "vol002");
    g_assert_null(tape_library_load_writable(lib, &err));
    g_assert_error(err, TAPE_ERROR, ENOSPC);
    g_clear_error(&err);
    tape_library_mark_full(lib, a);
    tape_device_unload(a);
    tape_library_mark_full(lib, b);
    tape_device_unload(b);
    g_assert_null(tape_library_load_writable(lib, &err));
    g_assert_error(err, TAPE_ERROR, ENOSPC);
    assert_one_line(err);
    g_clear_error(&err);
    /* a read-only device is never written */
    TapeDevice *r = tape_library_load(lib, "vol001", &err);
    g_assert_no_error(err);
    TapePartHeader h = {0};
    g_assert_cmpint(tape_device_start_file(r, &h, &err), ==, -EBADF);
    g_clear_error(&err);
    tape_device_unload(r);

    /* more volumes: new ones are writable and survive a restart */
    g_assert_cmpint(tape_library_add_volumes(lib, 2, 8 * MiB, &err), ==, 0);
    g_assert_no_error(err);
    TapeDevice *c = tape_library_load_writable(lib, &err);
    g_assert_cmpstr(tape_device_volume(c), ==, "vol003");
    tape_device_unload(c);
    tape_library_close(lib);
    GArray *v = volumes_of(dir);
    g_assert_cmpuint(v->len, ==, 4);
    g_assert_true(g_array_index(v, TapeVolumeInfo, 0).full);
    g_assert_true(g_array_index(v, TapeVolumeInfo, 1).full);
    g_assert_cmpuint(g_array_index(v, TapeVolumeInfo, 3).capacity, ==, 8 * MiB);
    g_assert_cmpstr(g_array_index(v, TapeVolumeInfo, 3).name, ==, "vol004");
    g_array_unref(v);
    tt_rmtree(tmp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/library/format-and-open", test_format_and_open);
    g_test_add_func("/library/bad-input", test_bad_input);
    g_test_add_func("/library/foreign-volume-refused",
                    test_foreign_volume_refused);
    g_test_add_func("/library/label-damage", test_label_damage);
    g_test_add_func("/library/restart-keeps-state", test_restart_keeps_state);
    g_test_add_func("/library/changer", test_changer);
    return g_test_run();
}

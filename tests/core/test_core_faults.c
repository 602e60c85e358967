/* test_core_faults.c — the flusher under tape faults: end of medium in the
 * middle of a part, a failed block write, a full library (data stays
 * dirty, sync reports EIO, a later flush succeeds once volumes are
 * added), and recall of a damaged block (EIO naming the place, never
 * wrong bytes). Files stay readable and complete throughout. */
#include "core_testutil.h"

#include "tape/tape.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static void check_file(Core *c, const char *path, const guint8 *want, size_t len)
{
    int e = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &e);
    g_assert_cmpint(e, ==, 0);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), want, len);
}

static unsigned parts_on(Core *c, const char *vol)
{
    g_autoptr(GPtrArray) d = core_dumps(c, NULL);
    unsigned n = 0;
    for (guint i = 0; i < d->len; i++) {
        CoreDumpInfo *di = d->pdata[i];
        for (guint j = 0; j < di->parts->len; j++)
            n += !strcmp(g_array_index(di->parts, CorePartInfo, j).volume, vol);
    }
    return n;
}

static void test_peom_mid_part(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    ctu_close(s);
    /* vol001 ends at 2.5 MB: the third part of a 5 MiB file hits it. */
    ctu_store_faults(s, "vol001", "peom 2500000\n");
    ctu_reopen(s, NULL);
    size_t len = 5 << 20;
    g_autofree guint8 *a = g_malloc(len);
    ctu_pattern(11, 0, a, len);
    g_assert_cmpint(ctu_write(s->core, "/big", 0, a, len), ==, 0);
    GError *e = NULL;
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpuint(parts_on(s->core, "vol001"), >=, 1);
    g_assert_cmpuint(parts_on(s->core, "vol002"), >=, 1);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    check_file(s->core, "/big", a, len);
    g_assert_cmpint(core_check(s->core, true, NULL, &e), ==, 0);
    g_assert_no_error(e);
    ctu_free(s);
}

static void test_write_error(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    ctu_close(s);
    ctu_store_faults(s, "vol001", "fail-write 40\n");
    ctu_reopen(s, NULL);
    size_t len = 3 << 20;
    g_autofree guint8 *a = g_malloc(len);
    ctu_pattern(12, 0, a, len);
    g_assert_cmpint(ctu_write(s->core, "/f", 0, a, len), ==, 0);
    for (int i = 0; i < 50; i++) {
        char name[16], body[32];
        g_snprintf(name, sizeof name, "/s%d", i);
        g_snprintf(body, sizeof body, "small file %d", i);
        g_assert_cmpint(ctu_write(s->core, name, 0, body, strlen(body)), ==, 0);
    }
    GError *e = NULL;
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpuint(parts_on(s->core, "vol002"), >=, 1);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    check_file(s->core, "/f", a, len);
    for (int i = 0; i < 50; i++) {
        char name[16], body[32];
        g_snprintf(name, sizeof name, "/s%d", i);
        g_snprintf(body, sizeof body, "small file %d", i);
        check_file(s->core, name, (const guint8 *)body, strlen(body));
    }
    g_assert_cmpint(core_check(s->core, true, NULL, &e), ==, 0);
    ctu_free(s);
}

static void test_library_full(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volumes = 1;
    m.volume_size = 2 << 20;
    CtuStore *s = ctu_new(&m, NULL);
    size_t len = 5 << 20;
    g_autofree guint8 *a = g_malloc(len);
    ctu_pattern(13, 0, a, len);
    g_assert_cmpint(ctu_write(s->core, "/big", 0, a, len), ==, 0);
    GError *e = NULL;
    g_assert_cmpint(core_sync(s->core, &e), ==, -EIO);
    g_assert_error(e, CORE_ERROR, EIO);
    g_clear_error(&e);
    CoreStatus st;
    g_assert_cmpint(core_status(s->core, &st, &e), ==, 0);
    g_assert_cmpint(st.last_error, <, 0);
    g_assert_cmpstr(st.last_error_msg, !=, "");
    g_assert_cmpuint(st.dirty_bytes, >=, len);
    /* Nothing lost: the file reads back from the cache, even after a drop. */
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    check_file(s->core, "/big", a, len);
    g_assert_cmpint(core_store_close(s->core, &e), <, 0);
    g_clear_error(&e);
    s->core = NULL;
    /* More volumes; the next open's flush succeeds. */
    g_autofree char *lib = g_build_filename(s->store, "library", NULL);
    GArray *unused = NULL;
    (void)unused;
    TapeLibrary *tl = NULL;
    {
        g_autofree char *cfg = g_build_filename(s->store, "config", NULL);
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(cfg, &text, NULL, NULL));
        char *id = strstr(text, "store_id=");
        g_assert_nonnull(id);
        g_autofree char *sid = g_strndup(id + 9, 36);
        tl = tape_library_open(lib, sid, &e);
        g_assert_no_error(e);
        g_assert_cmpint(tape_library_add_volumes(tl, 3, 8 << 20, &e), ==, 0);
        tape_library_close(tl);
    }
    ctu_reopen(s, NULL);
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpint(core_status(s->core, &st, &e), ==, 0);
    g_assert_cmpuint(st.dirty_bytes, ==, 0);
    g_assert_cmpint(st.last_error, ==, 0);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    check_file(s->core, "/big", a, len);
    g_assert_cmpint(core_check(s->core, true, NULL, &e), ==, 0);
    ctu_free(s);
}

static void test_damaged_block(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    size_t len = 600000;
    g_autofree guint8 *a = g_malloc(len);
    ctu_pattern(14, 0, a, len);
    g_assert_cmpint(ctu_write(s->core, "/f", 0, a, len), ==, 0);
    GError *e = NULL;
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_autoptr(GPtrArray) d = core_dumps(s->core, &e);
    CorePartInfo part = { 0 };
    for (guint i = 0; i < d->len; i++) {
        CoreDumpInfo *di = d->pdata[i];
        if (di->kind == CORE_DUMP_FILE)
            part = g_array_index(di->parts, CorePartInfo, 0);
    }
    g_assert_cmpstr(part.volume, ==, "vol001");
    ctu_close(s);
    /* Flip one byte in the middle of the part's data. */
    g_autofree char *fname = g_strdup_printf("file%06u", part.fileno);
    g_autofree char *p = g_build_filename(s->store, "library", part.volume, fname, NULL);
    int fd = open(p, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    off_t at = 4096 * 40 + 123;
    guint8 byte;
    g_assert_cmpint(pread(fd, &byte, 1, at), ==, 1);
    byte ^= 0x5a;
    g_assert_cmpint(pwrite(fd, &byte, 1, at), ==, 1);
    close(fd);
    ctu_reopen(s, NULL);
    uint64_t ino = ctu_resolve(s->core, CORE_ROOT_INO, "/f"), fh;
    g_assert_cmpint(core_open(s->core, ino, O_RDONLY, &fh, &e), ==, 0);
    g_autofree guint8 *buf = g_malloc(len);
    /* Blocks away from the damage read fine; the damaged one is EIO. */
    g_assert_cmpint(core_read(s->core, ino, fh, buf, 8192, 0, &e), ==, 8192);
    g_assert_cmpmem(buf, 8192, a, 8192);
    g_test_expect_message("tapefs-core", G_LOG_LEVEL_WARNING, "*");
    ssize_t n = core_read(s->core, ino, fh, buf, len, 0, &e);
    g_assert_cmpint(n, ==, -EIO);
    g_clear_error(&e);
    core_release(s->core, ino, fh, NULL);
    ctu_free(s);
}

static void test_writethrough_fsync(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volumes = 1;
    m.volume_size = 2 << 20;
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.cache_mode = CORE_CACHE_WRITETHROUGH;
    CtuStore *s = ctu_new(&m, &o);
    Core *c = s->core;
    GError *e = NULL;
    const CoreCred cred = { 0, 0 };
    g_autofree guint8 *a = g_malloc(1 << 20);
    ctu_pattern(15, 0, a, 1 << 20);
    struct stat st;
    uint64_t fh;
    /* Fits: fsync puts it on tape before returning. */
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "fits", 0644, O_RDWR | O_CREAT, &cred, &st, &fh, &e), ==, 0);
    g_assert_cmpint(core_write(c, st.st_ino, fh, a, 300000, 0, &e), ==, 300000);
    g_assert_cmpint(core_fsync(c, st.st_ino, fh, false, &e), ==, 0);
    char state[16];
    /* On tape, and still in the cache. */
    g_assert_cmpint(core_getxattr(c, st.st_ino, "user.tapefs.state", state, sizeof state, &e), ==, 6);
    g_assert_cmpmem(state, 6, "cached", 6);
    core_release(c, st.st_ino, fh, NULL);
    /* Does not fit: fsync reports EIO, the bytes stay readable. */
    uint64_t fh2;
    struct stat st2;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "big", 0644, O_RDWR | O_CREAT, &cred, &st2, &fh2, &e), ==, 0);
    for (int i = 0; i < 4; i++)
        g_assert_cmpint(core_write(c, st2.st_ino, fh2, a, 1 << 20, (off_t)i << 20, &e), ==, 1 << 20);
    g_assert_cmpint(core_fsync(c, st2.st_ino, fh2, false, &e), ==, -EIO);
    g_assert_error(e, CORE_ERROR, EIO);
    g_clear_error(&e);
    g_autofree guint8 *back = g_malloc(1 << 20);
    g_assert_cmpint(core_read(c, st2.st_ino, fh2, back, 1 << 20, 3 << 20, &e), ==, 1 << 20);
    g_assert_cmpmem(back, 1 << 20, a, 1 << 20);
    core_release(c, st2.st_ino, fh2, NULL);
    g_assert_cmpint(core_store_close(c, &e), <, 0);
    g_clear_error(&e);
    s->core = NULL;
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ctu_strict_logs();
    g_log_set_fatal_mask("tapefs-cache", G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_test_add_func("/core/faults/peom-mid-part", test_peom_mid_part);
    g_test_add_func("/core/faults/write-error", test_write_error);
    g_test_add_func("/core/faults/library-full", test_library_full);
    g_test_add_func("/core/faults/damaged-block", test_damaged_block);
    g_test_add_func("/core/faults/writethrough-fsync", test_writethrough_fsync);
    return g_test_run();
}

/* test_core_bundle.c — bundling: 10,000 small files end up in a few
 * dumpfiles and a few tape files, not 10,000, and read back from tape
 * after a cache drop. Also: files at or above the threshold get their own
 * dumpfile, and background bundling happens after bundle_delay without
 * any explicit sync. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static void count_dumps(Core *c, unsigned *files, unsigned *bundles, unsigned *parts)
{
    g_autoptr(GPtrArray) d = core_dumps(c, NULL);
    *files = *bundles = *parts = 0;
    for (guint i = 0; i < d->len; i++) {
        CoreDumpInfo *di = d->pdata[i];
        if (di->kind == CORE_DUMP_FILE)
            (*files)++;
        if (di->kind == CORE_DUMP_BUNDLE)
            (*bundles)++;
        if (di->kind != CORE_DUMP_INDEX)
            *parts += di->parts->len;
    }
}

static void test_ten_thousand(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 64 << 20;
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.bundle_size = 64 << 20;
    /* A bulk load: group commits need not fsync each cache object (this
     * test is about how the files are packed, not about durability). */
    o.cache_mode = CORE_CACHE_UNSAFE;
    CtuStore *s = ctu_new(&m, &o);
    Core *c = s->core;
    GError *e = NULL;
    const CoreCred cred = { 0, 0 };
    int nfiles = 10000;
    const char *env = g_getenv("TAPEFS_BUNDLE_FILES");
    if (env)
        nfiles = atoi(env);
    guint8 buf[2048];
    struct stat d;
    g_assert_cmpint(core_mkdir(c, CORE_ROOT_INO, "many", 0755, &cred, &d, &e), ==, 0);
    for (int i = 0; i < nfiles; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "f%05d", i);
        size_t len = 100 + (size_t)(i * 37 % 1900);
        ctu_pattern((uint64_t)i, 0, buf, len);
        struct stat st;
        uint64_t fh;
        g_assert_cmpint(core_create(c, d.st_ino, name, 0644, O_WRONLY | O_CREAT, &cred, &st, &fh, &e), ==, 0);
        g_assert_cmpint(core_write(c, st.st_ino, fh, buf, len, 0, &e), ==, (gssize)len);
        g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
        core_forget(c, st.st_ino, 1);
    }
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    unsigned files, bundles, parts;
    count_dumps(c, &files, &bundles, &parts);
    g_test_message("%d small files: %u bundles, %u file dumpfiles, %u tape files", nfiles,
                   bundles, files, parts);
    g_assert_cmpuint(files, ==, 0);
    g_assert_cmpuint(bundles, >=, 1);
    g_assert_cmpuint(bundles, <=, 3);
    g_assert_cmpuint(parts, <=, 40);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    for (int i = 0; i < nfiles; i += 97) {
        char path[40];
        g_snprintf(path, sizeof path, "/many/f%05d", i);
        size_t len = 100 + (size_t)(i * 37 % 1900);
        ctu_pattern((uint64_t)i, 0, buf, len);
        int err = 0;
        g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &err);
        g_assert_cmpint(err, ==, 0);
        g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), buf, len);
    }
    CoreStatus cs;
    g_assert_cmpint(core_status(c, &cs, &e), ==, 0);
    g_assert_cmpuint(cs.bytes_recalled, >, 0);
    ctu_free(s);
}

static void test_threshold_and_delay(void)
{
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.no_flusher_triggers = false;
    o.bundle_delay = 1;
    o.bundle_threshold = 64 << 10;
    CtuStore *s = ctu_new(NULL, &o);
    Core *c = s->core;
    GError *e = NULL;
    g_autofree guint8 *big = g_malloc(200000);
    ctu_pattern(5, 0, big, 200000);
    g_assert_cmpint(ctu_write(c, "/large", 0, big, 200000), ==, 0);
    for (int i = 0; i < 20; i++) {
        char p[16];
        g_snprintf(p, sizeof p, "/s%d", i);
        g_assert_cmpint(ctu_write(c, p, 0, big, 1000), ==, 0);
    }
    /* No sync: the large file goes once closed, the small ones after the
     * bundle delay; flushed ranges turn clean at the group commit after
     * that, so wait (bounded) for all three. */
    unsigned files = 0, bundles = 0, parts = 0;
    CoreStatus cs = { 0 };
    for (int tries = 0; tries < 150; tries++) {
        g_usleep(100000);
        count_dumps(c, &files, &bundles, &parts);
        g_assert_cmpint(core_status(c, &cs, &e), ==, 0);
        if (files >= 1 && bundles >= 1 && cs.dirty_bytes == 0)
            break;
    }
    g_assert_cmpuint(files, ==, 1);
    g_assert_cmpuint(bundles, ==, 1);
    g_assert_cmpuint(cs.dirty_bytes, ==, 0);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/bundle/ten-thousand-small-files", test_ten_thousand);
    g_test_add_func("/core/bundle/threshold-and-delay", test_threshold_and_delay);
    return g_test_run();
}

/* test_core_fds.c — many small files under a low open-file limit: the
 * process's descriptors must not grow with the number of files written,
 * fsync'ed and closed, synced to tape, dropped from the cache and read
 * back. Each case changes RLIMIT_NOFILE of the test process and puts it
 * back at the end. No shared state, no locks. */
#include "core_testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NFILES 3000
#define LOW_LIMIT 128

static const CoreCred cred = { 1000, 1000 };

/* Descriptors open in this process (-1 if even that cannot be counted). */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void set_soft_limit(rlim_t soft, struct rlimit *old)
{
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, old), ==, 0);
    struct rlimit rl = *old;
    rl.rlim_cur = MIN(soft, old->rlim_max);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
}

static size_t file_len(unsigned i)
{
    return 1 + (size_t)(i * 2654435761u % 6000); /* 1 byte to ~1.5 blocks */
}

static void write_files(Core *c, uint64_t dir, unsigned n, bool fsync_each, rlim_t limit)
{
    guint8 buf[6000];
    for (unsigned i = 0; i < n; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "f%05u", i);
        struct stat st;
        uint64_t fh;
        GError *e = NULL;
        g_assert_cmpint(core_create(c, dir, name, 0644, O_WRONLY | O_CREAT, &cred, &st, &fh, &e),
                        ==, 0);
        g_assert_no_error(e);
        size_t len = file_len(i);
        ctu_pattern(i, 0, buf, len);
        ssize_t wr = core_write(c, st.st_ino, fh, buf, len, 0, &e);
        if (e)
            g_printerr("write %u: %s\n", i, e->message);
        g_assert_cmpint(wr, ==, (ssize_t)len);
        g_assert_no_error(e);
        if (fsync_each) {
            g_assert_cmpint(core_fsync(c, st.st_ino, fh, false, &e), ==, 0);
            g_assert_no_error(e);
        }
        g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
        g_assert_no_error(e);
        core_forget(c, st.st_ino, 1);
        if (i % 250 == 0) {
            int fds = open_fds();
            g_assert_cmpint(fds, >, 0);
            g_assert_cmpint(fds, <, (int)limit);
        }
    }
}

static void read_files(Core *c, const char *dir, unsigned n, rlim_t limit)
{
    guint8 want[6000];
    for (unsigned i = 0; i < n; i++) {
        char path[64];
        g_snprintf(path, sizeof path, "%s/f%05u", dir, i);
        int e = 0;
        g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &e);
        g_assert_cmpint(e, ==, 0);
        g_assert_nonnull(b);
        size_t len = file_len(i);
        ctu_pattern(i, 0, want, len);
        gsize got;
        const void *d = g_bytes_get_data(b, &got);
        g_assert_cmpmem(d, got, want, len);
        if (i % 250 == 0)
            g_assert_cmpint(open_fds(), <, (int)limit);
    }
}

static void sync_drop_and_check(Core *c, const char *dir, unsigned n, rlim_t limit)
{
    GError *e = NULL;
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    CoreStatus cs;
    g_assert_cmpint(core_status(c, &cs, &e), ==, 0);
    g_assert_cmpuint(cs.dirty_bytes, ==, 0);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    g_assert_no_error(e);
    read_files(c, dir, n, limit);
}

/* A scratch store (32 MiB volumes) with the directory /name in it. */
static CtuStore *store_with_dir(const char *name, struct stat *d)
{
    CoreMkfsOptions mo;
    ctu_mkfs_options(&mo);
    mo.volume_size = 32 << 20;
    CtuStore *s = ctu_new(&mo, NULL);
    g_assert_cmpint(core_mkdir(s->core, CORE_ROOT_INO, name, 0755, &cred, d, NULL), ==, 0);
    return s;
}

/* The store is opened under the low limit: the cache sizes its open-file
 * budget to it. Every file is fsync'ed before it is closed (each fsync
 * saves its cache object's state), the store is synced to tape, the cache
 * dropped and every file read back from tape. */
static void test_low_limit_from_open(void)
{
    struct rlimit old;
    set_soft_limit(LOW_LIMIT, &old);
    struct stat d;
    GError *e = NULL;
    CtuStore *s = store_with_dir("many", &d);
    write_files(s->core, d.st_ino, NFILES, true, LOW_LIMIT);
    sync_drop_and_check(s->core, "/many", NFILES, LOW_LIMIT);
    core_forget(s->core, d.st_ino, 1);
    g_assert_cmpint(core_check(s->core, false, NULL, &e), ==, 0);
    ctu_free(s);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
}

/* The limit drops below the cache's budget while the store is open (as
 * when the rest of the process takes descriptors): the cache gives files
 * back when an open fails with EMFILE instead of failing the write. */
static void test_limit_drops_while_open(void)
{
    struct rlimit old;
    set_soft_limit(1024, &old); /* budget 256 at open */
    struct stat d;
    CtuStore *s = store_with_dir("late", &d);
    struct rlimit mid;
    set_soft_limit(LOW_LIMIT, &mid);
    write_files(s->core, d.st_ino, 1000, false, LOW_LIMIT);
    sync_drop_and_check(s->core, "/late", 1000, LOW_LIMIT);
    core_forget(s->core, d.st_ino, 1);
    ctu_free(s);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ctu_strict_logs();
    g_test_add_func("/core/fds/low-limit-from-open", test_low_limit_from_open);
    g_test_add_func("/core/fds/limit-drops-while-open", test_limit_drops_while_open);
    return g_test_run();
}

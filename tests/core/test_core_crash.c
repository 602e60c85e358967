/* test_core_crash.c — crash safety: a child process does random work on a
 * store (appends, rewrites, fsync, sync, snapshots, background flushes and
 * group commits running all the time) and is killed with SIGKILL at a
 * random moment; the parent reopens the store, which must pass the
 * consistency check, hold every byte that was fsync'ed or synced before
 * the kill, and contain no byte a file never had. Several rounds on one
 * store, each continuing after the previous crash. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t name_seed(const char *name)
{
    return g_str_hash(name) * 2654435761u + 17;
}

static void journal(int fd, const char *name, uint64_t size)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s %" G_GUINT64_FORMAT "\n", name, size);
    if (write(fd, line, (size_t)n) != n || fdatasync(fd) != 0)
        _exit(3);
}

/* The child: never returns; killed by the parent. */
static void child_work(const char *store, const char *jpath, guint32 seed, int round)
{
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.no_flusher_triggers = false;   /* background flushes and bundles */
    o.bundle_delay = 1;
    o.bundle_size = 256 << 10;
    o.bundle_threshold = 128 << 10;
    o.commit_interval_ms = 50;
    GError *e = NULL;
    Core *c = core_store_open(store, &o, &e);
    if (!c) {
        g_printerr("child: %s\n", e->message);
        _exit(2);
    }
    int jfd = open(jpath, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (jfd < 0)
        _exit(2);
    GRand *r = g_rand_new_with_seed(seed);
    enum { NF = 6 };
    char *names[NF];
    uint64_t sizes[NF] = { 0 };
    uint64_t inos[NF], fhs[NF];
    const CoreCred cred = { 0, 0 };
    for (int i = 0; i < NF; i++) {
        names[i] = g_strdup_printf("r%d-f%d", round, i);
        struct stat st;
        if (core_create(c, CORE_ROOT_INO, names[i], 0644, O_RDWR | O_CREAT, &cred, &st, &fhs[i], &e) < 0)
            _exit(4);
        inos[i] = st.st_ino;
    }
    guint8 *buf = g_malloc(300000);
    for (int step = 0;; step++) {
        int i = g_rand_int_range(r, 0, NF);
        int op = g_rand_int_range(r, 0, 100);
        if (op < 55 && sizes[i] < (4 << 20)) { /* append (files stay small) */
            size_t len = (size_t)g_rand_int_range(r, 1, g_rand_boolean(r) ? 9000 : 300000);
            ctu_pattern(name_seed(names[i]), sizes[i], buf, len);
            if (core_write(c, inos[i], fhs[i], buf, len, (off_t)sizes[i], &e) != (ssize_t)len)
                _exit(5);
            sizes[i] += len;
        } else if (op < 70 && sizes[i] > 0) { /* rewrite a range with the same bytes */
            uint64_t off = (uint64_t)g_rand_double_range(r, 0, (double)sizes[i]);
            size_t len = (size_t)MIN((uint64_t)g_rand_int_range(r, 1, 50000), sizes[i] - off);
            ctu_pattern(name_seed(names[i]), off, buf, len);
            if (core_write(c, inos[i], fhs[i], buf, len, (off_t)off, &e) != (ssize_t)len)
                _exit(6);
        } else if (op < 85) {
            if (core_fsync(c, inos[i], fhs[i], false, &e) < 0)
                _exit(7);
            journal(jfd, names[i], sizes[i]);
        } else if (op < 90) {
            if (core_sync(c, &e) < 0) {
                g_printerr("child: sync: %s\n", e ? e->message : "?");
                _exit(8);
            }
            for (int k = 0; k < NF; k++)
                journal(jfd, names[k], sizes[k]);
        } else if (op < 93) {
            g_autofree char *sn = g_strdup_printf("r%d-s%d", round, step);
            if (core_snapshot_create(c, sn, &e) < 0)
                _exit(9);
        } else {
            g_usleep((gulong)g_rand_int_range(r, 0, 20000));
        }
    }
}

static void verify(Core *c, const char *jpath, GHashTable *expect)
{
    /* Journal: the last complete line of each name is its durable size. */
    g_autofree char *text = NULL;
    if (g_file_get_contents(jpath, &text, NULL, NULL)) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (int i = 0; lines[i]; i++) {
            char name[64];
            unsigned long long size;
            if (!lines[i + 1])
                break; /* a last line without newline may be torn */
            if (sscanf(lines[i], "%63s %llu", name, &size) == 2) {
                guint64 *v = g_hash_table_lookup(expect, name);
                if (!v || *v < size)
                    g_hash_table_insert(expect, g_strdup(name), g_memdup2(&(guint64){ size }, 8));
            }
        }
    }
    GError *e = NULL;
    GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
    int rc = core_check(c, false, problems, &e);
    for (guint i = 0; i < problems->len; i++)
        g_printerr("check: %s\n", (char *)problems->pdata[i]);
    g_ptr_array_unref(problems);
    g_assert_cmpint(rc, ==, 0);
    g_clear_error(&e);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, expect);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_autofree char *path = g_strdup_printf("/%s", (char *)k);
        int err = 0;
        g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &err);
        if (!b)
            g_error("%s: fsync'ed but unreadable after the crash: %s", path, g_strerror(-err));
        gsize len;
        const guint8 *data = g_bytes_get_data(b, &len);
        if (len < *(guint64 *)v)
            g_error("%s: %zu bytes after the crash, %" G_GUINT64_FORMAT " were fsync'ed", path,
                    (size_t)len, *(guint64 *)v);
        g_autofree guint8 *want = g_malloc(len + 1);
        ctu_pattern(name_seed(k), 0, want, len);
        for (gsize i = 0; i < len; i++)
            if (data[i] != want[i])
                g_error("%s: byte %zu was never written there", path, (size_t)i);
    }
    /* Files never fsync'ed must not hold foreign bytes either. */
    uint64_t fh;
    g_assert_cmpint(core_opendir(c, CORE_ROOT_INO, &fh, &e), ==, 0);
    core_releasedir(c, CORE_ROOT_INO, fh, NULL);
}

static void test_crash(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    GError *e = NULL;
    g_autofree char *tmp = g_dir_make_tmp("tapefs-crash-XXXXXX", &e);
    g_assert_no_error(e);
    g_autofree char *store = g_build_filename(tmp, "store", NULL);
    g_autofree char *jpath = g_build_filename(tmp, "journal", NULL);
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 128 << 20;
    g_assert_cmpint(core_store_create(store, &m, &e), ==, 0);
    g_autoptr(GHashTable) expect = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GRand *r = g_rand_new_with_seed(g_test_rand_int());
    int rounds = 8;
    int64_t fsynced_total = 0;
    for (int round = 0; round < rounds; round++) {
        guint32 seed = g_rand_int(r);
        pid_t pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0)
            child_work(store, jpath, seed, round);
        g_usleep((gulong)g_rand_int_range(r, 150000, 1500000));
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        int status = 0;
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            g_error("round %d: the child stopped by itself (status %d)", round, status);
        CoreOpenOptions o;
        ctu_open_options(&o);
        Core *c = core_store_open(store, &o, &e);
        g_assert_no_error(e);
        verify(c, jpath, expect);
        g_assert_cmpint(core_store_close(c, &e), ==, 0);
        g_assert_no_error(e);
        fsynced_total = g_hash_table_size(expect);
    }
    /* The rounds did durable work that survived. */
    g_assert_cmpint(fsynced_total, >, 0);
    g_rand_free(r);
    ctu_rmtree(tmp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/crash/sigkill-rounds", test_crash);
    return g_test_run();
}

/* test_core_checkcache.c — core_check looks at the cache blocks behind
 * extents that point into the cache. A child writes a file, fsyncs it and
 * is killed (its data is only in the cache, committed); the parent first
 * checks that such a store checks clean, then opens the cache on its own
 * and cuts the file's object to nothing (the object stays): the reopened
 * store's check must report the absent blocks. */
#include "cache/cache.h"
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(const char *store)
{
    CoreOpenOptions o;
    ctu_open_options(&o);
    GError *e = NULL;
    Core *c = core_store_open(store, &o, &e);
    if (!c)
        _exit(1);
    const CoreCred cred = { 0, 0 };
    struct stat st;
    uint64_t fh;
    guint8 buf[40000];
    ctu_pattern(3, 0, buf, sizeof buf);
    if (core_create(c, CORE_ROOT_INO, "f", 0644, O_RDWR | O_CREAT, &cred, &st, &fh, &e) < 0 ||
        core_write(c, st.st_ino, fh, buf, sizeof buf, 0, &e) != (ssize_t)sizeof buf ||
        core_fsync(c, st.st_ino, fh, false, &e) < 0)
        _exit(2);
    kill(getpid(), SIGKILL);
    _exit(3);
}

static void crash_child(CtuStore *s)
{
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
        child(s->store);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        g_error("child failed: status %d", status);
}

static guint problems_of(CtuStore *s, const char *needle)
{
    GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
    GError *e = NULL;
    core_check(s->core, false, problems, &e);
    g_clear_error(&e);
    guint n = 0;
    for (guint i = 0; i < problems->len; i++) {
        g_printerr("check: %s\n", (char *)problems->pdata[i]);
        n += !needle || strstr(problems->pdata[i], needle) != NULL;
    }
    g_ptr_array_unref(problems);
    return n;
}

static void test_absent_blocks_reported(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    g_autofree char *id = g_strdup(core_store_id(s->core));
    ctu_close(s);
    crash_child(s);
    ctu_reopen(s, NULL);
    g_assert_cmpuint(problems_of(s, NULL), ==, 0);
    ctu_close(s); /* flushes it to tape */
    /* Written again, only in the cache this time. */
    crash_child(s);
    g_autofree char *cdir = g_build_filename(s->store, "cache", NULL);
    CacheConfig cc = { .dir = cdir, .store_id = id, .hi_pct = 95, .lo_pct = 80 };
    GError *e = NULL;
    Cache *cache = cache_open(&cc, &e);
    g_assert_no_error(e);
    g_autoptr(GArray) objs = cache_dirty_objects(cache);
    g_assert_cmpuint(objs->len, >, 0);
    for (guint i = 0; i < objs->len; i++)
        g_assert_cmpint(cache_truncate(cache, g_array_index(objs, uint64_t, i), 0, &e), ==, 0);
    cache_close(cache);
    ctu_reopen(s, NULL);
    g_assert_cmpuint(problems_of(s, "but it is absent"), >, 0);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_test_add_func("/core/checkcache/absent-blocks", test_absent_blocks_reported);
    return g_test_run();
}

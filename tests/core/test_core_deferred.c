/* test_core_deferred.c — destructive operations after an fsync: a child
 * writes 128 KiB, fsyncs it, then truncates, unlinks, renames over or
 * rewrites with O_TRUNC, and is killed with SIGKILL either before the
 * group commit or right after another fsync committed the change. The
 * reopened store must show either the fsync'ed bytes intact (no commit)
 * or the new state (committed): never EIO, never zeros. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (128u << 10)
#define SEED_F 11
#define SEED_G 22

enum { OP_TRUNC0, OP_TRUNC_PART, OP_UNLINK, OP_RENAME_OVER, OP_OTRUNC };

typedef struct {
    int op;
    bool commit;   /* commit the change (fsync of another file) before the kill */
} Case;

static void must(int rc, GError *e, int code)
{
    if (rc < 0) {
        g_printerr("child: %s\n", e ? e->message : g_strerror(-rc));
        _exit(code);
    }
}

static void write_file(Core *c, const char *name, uint64_t seed, uint64_t *ino)
{
    const CoreCred cred = { 0, 0 };
    GError *e = NULL;
    struct stat st;
    uint64_t fh;
    must(core_create(c, CORE_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &cred, &st, &fh, &e), e, 2);
    g_autofree guint8 *buf = g_malloc(LEN);
    ctu_pattern(seed, 0, buf, LEN);
    if (core_write(c, st.st_ino, fh, buf, LEN, 0, &e) != (ssize_t)LEN)
        _exit(3);
    must(core_fsync(c, st.st_ino, fh, false, &e), e, 4);
    must(core_release(c, st.st_ino, fh, &e), e, 5);
    *ino = st.st_ino;
}

static void child(const char *store, const Case *k)
{
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.commit_interval_ms = 3600 * 1000; /* no group commit unless asked */
    GError *e = NULL;
    Core *c = core_store_open(store, &o, &e);
    if (!c)
        _exit(1);
    uint64_t f, g;
    write_file(c, "f", SEED_F, &f);
    write_file(c, "g", SEED_G, &g);
    struct stat st = { 0 };
    switch (k->op) {
    case OP_TRUNC0:
    case OP_TRUNC_PART:
        st.st_size = k->op == OP_TRUNC0 ? 0 : 5000;
        must(core_setattr(c, f, &st, CORE_SET_SIZE, NULL, &e), e, 6);
        break;
    case OP_UNLINK:
        must(core_unlink(c, CORE_ROOT_INO, "f", &e), e, 6);
        core_forget(c, f, 1);
        break;
    case OP_RENAME_OVER:
        must(core_rename(c, CORE_ROOT_INO, "g", CORE_ROOT_INO, "f", 0, &e), e, 6);
        core_forget(c, f, 1);
        break;
    case OP_OTRUNC: {
        uint64_t fh;
        must(core_open(c, f, O_WRONLY | O_TRUNC, &fh, &e), e, 6);
        must(core_release(c, f, fh, &e), e, 7);
        break;
    }
    }
    if (k->commit) {
        uint64_t fh;
        must(core_open(c, g, O_RDONLY, &fh, &e), e, 8);
        must(core_fsync(c, g, fh, false, &e), e, 9);
    }
    kill(getpid(), SIGKILL);
    _exit(10);
}

static void expect_file(Core *c, const char *path, uint64_t seed, size_t len)
{
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &err);
    if (!b)
        g_error("%s: unreadable after the crash: %s", path, g_strerror(-err));
    g_assert_cmpuint(g_bytes_get_size(b), ==, len);
    g_autofree guint8 *want = g_malloc(LEN);
    ctu_pattern(seed, 0, want, LEN);
    if (memcmp(g_bytes_get_data(b, NULL), want, len) != 0)
        g_error("%s: holds bytes it was never written", path);
}

static void run_case(gconstpointer data)
{
    const Case *k = data;
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    CtuStore *s = ctu_new(NULL, NULL);
    ctu_close(s);
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
        child(s->store, k);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        g_error("the child failed (status %d)", status);
    ctu_reopen(s, NULL);
    Core *c = s->core;
    GError *e = NULL;
    ctu_assert_clean(c, false);
    if (!(k->op == OP_RENAME_OVER && k->commit))
        expect_file(c, "/g", SEED_G, LEN);
    if (!k->commit) {
        expect_file(c, "/f", SEED_F, LEN);
    } else if (k->op == OP_TRUNC0 || k->op == OP_OTRUNC) {
        expect_file(c, "/f", SEED_F, 0);
    } else if (k->op == OP_TRUNC_PART) {
        expect_file(c, "/f", SEED_F, 5000);
    } else if (k->op == OP_UNLINK) {
        g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/f"), ==, 0);
    } else {
        expect_file(c, "/f", SEED_G, LEN);
        g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/g"), ==, 0);
    }
    /* The reopened store goes on working: the file can be read from tape
     * after a flush and a cache drop. */
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    g_assert_no_error(e);
    if (!k->commit)
        expect_file(c, "/f", SEED_F, LEN);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    static const struct {
        const char *name;
        Case k;
    } cases[] = {
        { "/core/deferred/truncate0-uncommitted", { OP_TRUNC0, false } },
        { "/core/deferred/truncate-part-uncommitted", { OP_TRUNC_PART, false } },
        { "/core/deferred/unlink-uncommitted", { OP_UNLINK, false } },
        { "/core/deferred/rename-over-uncommitted", { OP_RENAME_OVER, false } },
        { "/core/deferred/otrunc-uncommitted", { OP_OTRUNC, false } },
        { "/core/deferred/truncate0-committed", { OP_TRUNC0, true } },
        { "/core/deferred/truncate-part-committed", { OP_TRUNC_PART, true } },
        { "/core/deferred/unlink-committed", { OP_UNLINK, true } },
        { "/core/deferred/rename-over-committed", { OP_RENAME_OVER, true } },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        g_test_add_data_func(cases[i].name, &cases[i].k, run_case);
    return g_test_run();
}

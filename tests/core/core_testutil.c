/* core_testutil.c — helpers of the core unit tests (core_testutil.h).
 * No shared state, no locks. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void ctu_strict_logs(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_log_set_fatal_mask("tapefs-core", G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_log_set_fatal_mask("tapefs-tape", G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
}

void ctu_mkfs_options(CoreMkfsOptions *o)
{
    core_mkfs_options_init(o);
    o->volumes = 4;
    o->volume_size = 8 << 20;
    o->part_size = 1 << 20;
    o->block_size = 4096;
}

void ctu_open_options(CoreOpenOptions *o)
{
    core_open_options_init(o);
    o->no_flusher_triggers = true;
    o->ring_size = 1 << 20;
    o->bundle_threshold = 256 << 10;
    o->bundle_size = 4 << 20;
    o->sync_interval = 0;
    o->commit_interval_ms = 200;
    o->dirty_wait_ms = 5000;
}

void ctu_rmtree(const char *dir)
{
    if (!dir)
        return;
    g_autofree char *q = g_shell_quote(dir);
    g_autofree char *cmd = g_strdup_printf("rm -rf -- %s", q);
    if (system(cmd) != 0)
        g_printerr("could not remove %s\n", dir);
}

CtuStore *ctu_new(const CoreMkfsOptions *mo, const CoreOpenOptions *oo)
{
    CtuStore *s = g_new0(CtuStore, 1);
    GError *e = NULL;
    s->tmp = g_dir_make_tmp("tapefs-core-XXXXXX", &e);
    g_assert_no_error(e);
    s->store = g_build_filename(s->tmp, "store", NULL);
    CoreMkfsOptions m;
    if (!mo) {
        ctu_mkfs_options(&m);
        mo = &m;
    }
    g_assert_cmpint(core_store_create(s->store, mo, &e), ==, 0);
    g_assert_no_error(e);
    ctu_reopen(s, oo);
    return s;
}

void ctu_reopen(CtuStore *s, const CoreOpenOptions *oo)
{
    CoreOpenOptions o;
    if (!oo) {
        ctu_open_options(&o);
        oo = &o;
    }
    GError *e = NULL;
    s->core = core_store_open(s->store, oo, &e);
    g_assert_no_error(e);
    g_assert_nonnull(s->core);
}

void ctu_close(CtuStore *s)
{
    if (!s->core)
        return;
    GError *e = NULL;
    int r = core_store_close(s->core, &e);
    if (e)
        g_printerr("close: %s\n", e->message);
    g_clear_error(&e);
    g_assert_cmpint(r, ==, 0);
    s->core = NULL;
}

void ctu_free(CtuStore *s)
{
    if (!s)
        return;
    ctu_close(s);
    ctu_rmtree(s->tmp);
    g_free(s->tmp);
    g_free(s->store);
    g_free(s);
}

void ctu_assert_clean(Core *c, bool deep)
{
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    GError *e = NULL;
    int rc = core_check(c, deep, problems, &e);
    for (guint i = 0; i < problems->len; i++)
        g_printerr("check: %s\n", (char *)problems->pdata[i]);
    if (rc < 0)
        g_printerr("check: %s\n", e ? e->message : g_strerror(-rc));
    g_clear_error(&e);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpuint(problems->len, ==, 0);
}

uint64_t ctu_resolve(Core *c, uint64_t root, const char *path)
{
    uint64_t ino = root;
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    for (int i = 0; parts[i]; i++) {
        if (!*parts[i])
            continue;
        struct stat st;
        if (core_lookup(c, ino, parts[i], &st, NULL) < 0)
            return 0;
        core_forget(c, st.st_ino, 1);
        ino = st.st_ino;
    }
    return ino;
}

uint64_t ctu_parent(Core *c, uint64_t root, const char *path, const char **leaf)
{
    const char *slash = strrchr(path, '/');
    *leaf = slash ? slash + 1 : path;
    if (!slash || slash == path)
        return root;
    g_autofree char *dir = g_strndup(path, (gsize)(slash - path));
    return ctu_resolve(c, root, dir);
}

int ctu_write(Core *c, const char *path, uint64_t off, const void *buf, size_t len)
{
    const char *leaf;
    uint64_t dir = ctu_parent(c, CORE_ROOT_INO, path, &leaf);
    if (!dir)
        return -ENOENT;
    struct stat st;
    uint64_t fh;
    CoreCred cred = { 0, 0 };
    int r = core_create(c, dir, leaf, 0644, O_RDWR | O_CREAT, &cred, &st, &fh, NULL);
    if (r < 0)
        return r;
    ssize_t n = len ? core_write(c, st.st_ino, fh, buf, len, (off_t)off, NULL) : 0;
    core_release(c, st.st_ino, fh, NULL);
    core_forget(c, st.st_ino, 1);
    return n < 0 ? (int)n : 0;
}

GBytes *ctu_read(Core *c, uint64_t root, const char *path, int *error)
{
    uint64_t ino = ctu_resolve(c, root, path);
    if (!ino) {
        if (error)
            *error = -ENOENT;
        return NULL;
    }
    struct stat st;
    int r = core_getattr(c, ino, &st, NULL);
    uint64_t fh = 0;
    if (r == 0)
        r = core_open(c, ino, O_RDONLY, &fh, NULL);
    if (r < 0) {
        if (error)
            *error = r;
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    guint8 *buf = g_malloc(size + 1);
    size_t at = 0;
    while (at < size) {
        ssize_t n = core_read(c, ino, fh, buf + at, MIN(size - at, (size_t)(1 << 20)), (off_t)at, NULL);
        if (n <= 0) {
            r = n < 0 ? (int)n : -EIO;
            break;
        }
        at += (size_t)n;
    }
    core_release(c, ino, fh, NULL);
    if (r < 0) {
        g_free(buf);
        if (error)
            *error = r;
        return NULL;
    }
    if (error)
        *error = 0;
    return g_bytes_new_take(buf, size);
}

void ctu_pattern(uint64_t seed, uint64_t off, void *buf, size_t len)
{
    guint8 *p = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t x = (off + i) / 8 * 0x9E3779B97F4A7C15ULL ^ (seed * 0xC2B2AE3D27D4EB4FULL);
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ULL;
        x ^= x >> 32;
        p[i] = (guint8)(x >> (((off + i) % 8) * 8));
    }
}

CtuLib *ctu_lib_new(const CoreMkfsOptions *mo)
{
    CtuLib *l = g_new0(CtuLib, 1);
    GError *e = NULL;
    l->tmp = g_dir_make_tmp("tapefs-recover-XXXXXX", &e);
    g_assert_no_error(e);
    l->store = g_build_filename(l->tmp, "store", NULL);
    l->lib = g_build_filename(l->tmp, "library", NULL);
    l->copy = g_build_filename(l->tmp, "library-copy", NULL);
    l->fresh = g_build_filename(l->tmp, "recovered", NULL);
    CoreMkfsOptions m;
    if (mo)
        m = *mo;
    else
        ctu_mkfs_options(&m);
    m.library = l->lib;
    g_assert_cmpint(core_store_create(l->store, &m, &e), ==, 0);
    g_assert_no_error(e);
    return l;
}

void ctu_lib_free(CtuLib *l)
{
    if (!l)
        return;
    ctu_rmtree(l->tmp);
    g_free(l->tmp);
    g_free(l->store);
    g_free(l->lib);
    g_free(l->copy);
    g_free(l->fresh);
    g_free(l);
}

Core *ctu_open(const char *store)
{
    CoreOpenOptions o;
    ctu_open_options(&o);
    GError *e = NULL;
    Core *c = core_store_open(store, &o, &e);
    g_assert_no_error(e);
    g_assert_nonnull(c);
    return c;
}

void ctu_copy_tree(const char *from, const char *to)
{
    g_autofree char *qf = g_shell_quote(from);
    g_autofree char *qt = g_shell_quote(to);
    g_autofree char *cmd = g_strdup_printf("cp -a -- %s %s", qf, qt);
    g_assert_cmpint(system(cmd), ==, 0);
}

char *ctu_tape_file(const char *lib, const char *volume, uint32_t fileno)
{
    g_autofree char *name = g_strdup_printf("file%06u", fileno);
    return g_build_filename(lib, volume, name, NULL);
}

void ctu_flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    unsigned char b;
    g_assert_cmpint(pread(fd, &b, 1, at), ==, 1);
    b ^= 0x5a;
    g_assert_cmpint(pwrite(fd, &b, 1, at), ==, 1);
    close(fd);
}

gboolean ctu_any_contains(GPtrArray *strs, const char *needle)
{
    for (guint i = 0; strs && i < strs->len; i++)
        if (strstr(strs->pdata[i], needle))
            return TRUE;
    return FALSE;
}

void ctu_put_faults(const char *lib, const char *vol, const char *rules)
{
    g_autofree char *p = g_build_filename(lib, vol, "faults", NULL);
    g_assert_true(g_file_set_contents(p, rules, -1, NULL));
}

void ctu_store_faults(const CtuStore *s, const char *vol, const char *rules)
{
    g_autofree char *lib = g_build_filename(s->store, "library", NULL);
    ctu_put_faults(lib, vol, rules);
}

Core *ctu_child_open(const char *store, const CoreOpenOptions *o, const char *jpath, int *jfd)
{
    GError *e = NULL;
    Core *c = core_store_open(store, o, &e);
    if (!c) {
        g_printerr("child: %s\n", e ? e->message : "cannot open the store");
        _exit(2);
    }
    if (jpath && (*jfd = open(jpath, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0)
        _exit(2);
    return c;
}

void ctu_run_killed(void (*fn)(void *ud), void *ud)
{
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        fn(ud);
        kill(getpid(), SIGKILL);
        _exit(99);
    }
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        g_error("the child failed (status %d)", status);
}

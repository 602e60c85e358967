/* test_core_crash.c — crash safety: a child process does random work on a
 * store (appends, rewrites, truncations, fsync, sync, snapshots; background
 * flushes, bundles, streams of the open files and group commits running
 * all the time) and is killed with SIGKILL at a
 * random moment; the parent reopens the store, which must pass the
 * consistency check, hold every byte that was fsync'ed or synced before
 * the kill, and contain no byte a file never had. Several rounds on one
 * store, each continuing after the previous crash. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t name_seed(const char *name)
{
    return g_str_hash(name) * 2654435761u + 17;
}

/* Bytes of write generation `gen` of file `name`: every write has its
 * own, so stale data is told apart from new. */
static uint64_t gen_seed(const char *name, uint64_t gen)
{
    return name_seed(name) ^ (gen * 0x9E3779B97F4A7C15ULL);
}

/* Journal lines, written before (W, T) or after (F, S) the operation:
 *   W name gen off len   a write of generation gen at off
 *   T name size          a truncation
 *   F name               the file was fsync'ed
 *   S                    everything was synced
 *   K round              written by the parent after it checked and
 *                        closed the store following the kill of `round`:
 *                        from here on every file is what was read back
 *                        then (a write in flight at the kill may or may
 *                        not have happened; a later S must not claim it)
 * A kill leaves at most the last line torn (ignored). Plain write()s
 * survive SIGKILL (page cache). */
static void journal(int fd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void journal(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n)
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
    o.stream_chunk = 256 << 10;      /* open files stream to tape too */
    o.commit_interval_ms = 50;
    GError *e = NULL;
    int jfd = -1;
    Core *c = ctu_child_open(store, &o, jpath, &jfd);
    GRand *r = g_rand_new_with_seed(seed);
    enum { NF = 6 };
    char *names[NF];
    uint64_t sizes[NF] = { 0 };
    uint64_t inos[NF], fhs[NF], afhs[NF];
    const CoreCred cred = { 0, 0 };
    uint64_t gen = (uint64_t)round << 32;
    for (int i = 0; i < NF; i++) {
        names[i] = g_strdup_printf("r%d-f%d", round, i);
        struct stat st;
        if (core_create(c, CORE_ROOT_INO, names[i], 0644, O_RDWR | O_CREAT, &cred, &st, &fhs[i], &e) < 0)
            _exit(4);
        inos[i] = st.st_ino;
        if (core_open(c, inos[i], O_WRONLY | O_APPEND, &afhs[i], &e) < 0)
            _exit(4);
    }
    guint8 *buf = g_malloc(300000);
    for (int step = 0;; step++) {
        int i = g_rand_int_range(r, 0, NF);
        int op = g_rand_int_range(r, 0, 100);
        if (op < 40 && sizes[i] < (4 << 20)) { /* append, half of them with O_APPEND */
            size_t len = (size_t)g_rand_int_range(r, 1, g_rand_boolean(r) ? 9000 : 300000);
            bool app = g_rand_boolean(r);
            gen++;
            ctu_pattern(gen_seed(names[i], gen), sizes[i], buf, len);
            journal(jfd, "W %s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %zu\n", names[i], gen,
                    sizes[i], len);
            if (core_write(c, inos[i], app ? afhs[i] : fhs[i], buf, len, (off_t)sizes[i], &e) != (ssize_t)len)
                _exit(5);
            sizes[i] += len;
        } else if (op < 60 && sizes[i] > 0) { /* rewrite a range with new bytes */
            uint64_t off = (uint64_t)g_rand_double_range(r, 0, (double)sizes[i]);
            uint64_t want = (uint64_t)g_rand_int_range(r, 1, 50000); /* once: MIN evaluates twice */
            size_t len = (size_t)MIN(want, sizes[i] - off);
            gen++;
            ctu_pattern(gen_seed(names[i], gen), off, buf, len);
            journal(jfd, "W %s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %zu\n", names[i], gen,
                    off, len);
            if (core_write(c, inos[i], fhs[i], buf, len, (off_t)off, &e) != (ssize_t)len)
                _exit(6);
        } else if (op < 67) { /* truncate down, or extend with a hole */
            uint64_t size = g_rand_boolean(r) ? (uint64_t)g_rand_double_range(r, 0, (double)sizes[i] + 1)
                                              : sizes[i] + (uint64_t)g_rand_int_range(r, 1, 70000);
            journal(jfd, "T %s %" G_GUINT64_FORMAT "\n", names[i], size);
            struct stat st = { .st_size = (off_t)size };
            if (core_setattr(c, inos[i], &st, CORE_SET_SIZE, NULL, &e) < 0)
                _exit(10);
            sizes[i] = size;
        } else if (op < 82) {
            if (core_fsync(c, inos[i], fhs[i], false, &e) < 0)
                _exit(7);
            journal(jfd, "F %s\n", names[i]);
        } else if (op < 87) {
            if (core_sync(c, &e) < 0) {
                g_printerr("child: sync: %s\n", e ? e->message : "?");
                _exit(8);
            }
            journal(jfd, "S\n");
        } else if (op < 90) {
            g_autofree char *sn = g_strdup_printf("r%d-s%d", round, step);
            if (core_snapshot_create(c, sn, &e) < 0)
                _exit(9);
        } else {
            g_usleep((gulong)g_rand_int_range(r, 0, 20000));
        }
    }
}

/* What the journal says about one file. */
typedef struct {
    GByteArray *now;      /* contents replayed from the journal */
    GByteArray *synced;   /* contents at the last fsync/sync, or NULL */
    bool changed_since;   /* a W or T came after that */
    GArray *writes;       /* (gen, off, len) triples */
} Track;

static void track_free(gpointer p)
{
    Track *t = p;
    g_byte_array_unref(t->now);
    if (t->synced)
        g_byte_array_unref(t->synced);
    g_array_unref(t->writes);
    g_free(t);
}

static Track *track_get(GHashTable *files, const char *name)
{
    Track *t = g_hash_table_lookup(files, name);
    if (!t) {
        t = g_new0(Track, 1);
        t->now = g_byte_array_new();
        t->writes = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        g_hash_table_insert(files, g_strdup(name), t);
    }
    return t;
}

static void mark_synced(Track *t)
{
    if (t->synced)
        g_byte_array_unref(t->synced);
    t->synced = g_byte_array_sized_new(t->now->len);
    g_byte_array_append(t->synced, t->now->data, t->now->len);
    t->changed_since = false;
}

/* Contents of every regular file after each round's kill, as read back
 * (name -> GBytes), indexed by round. */
static GPtrArray *after_kill;

/* The files as read back after a kill (durable since: the parent closed
 * the store cleanly); files that were not there are forgotten. The
 * writes are kept: they explain the bytes. */
static void reset_to(GHashTable *files, GHashTable *seen)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, files);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (!g_hash_table_contains(seen, k))
            g_hash_table_iter_remove(&it);
    g_hash_table_iter_init(&it, seen);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        Track *t = track_get(files, k);
        gsize len;
        const guint8 *data = g_bytes_get_data(v, &len);
        g_byte_array_set_size(t->now, 0);
        g_byte_array_append(t->now, data, (guint)len);
        mark_synced(t);
    }
}

static GHashTable *replay(const char *jpath)
{
    GHashTable *files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, track_free);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(jpath, &text, NULL, NULL))
        return files;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i] && lines[i + 1]; i++) { /* the last piece may be torn */
        char name[64];
        unsigned long long gen, off, len;
        if (sscanf(lines[i], "W %63s %llu %llu %llu", name, &gen, &off, &len) == 4) {
            Track *t = track_get(files, name);
            if (t->now->len < off + len)
                g_byte_array_set_size(t->now, (guint)(off + len));
            ctu_pattern(gen_seed(name, gen), off, t->now->data + off, len);
            uint64_t w[3] = { gen, off, len };
            g_array_append_vals(t->writes, w, 3);
            t->changed_since = true;
        } else if (sscanf(lines[i], "T %63s %llu", name, &len) == 2) {
            Track *t = track_get(files, name);
            guint old = t->now->len;
            g_byte_array_set_size(t->now, (guint)len);
            if (len > old)
                memset(t->now->data + old, 0, len - old);
            t->changed_since = true;
        } else if (sscanf(lines[i], "F %63s", name) == 1) {
            mark_synced(track_get(files, name));
        } else if (sscanf(lines[i], "K %llu", &gen) == 1) {
            g_assert_cmpuint(gen, <, after_kill->len);
            reset_to(files, after_kill->pdata[gen]);
        } else if (!strcmp(lines[i], "S")) {
            GHashTableIter it;
            gpointer v;
            g_hash_table_iter_init(&it, files);
            while (g_hash_table_iter_next(&it, NULL, &v))
                mark_synced(v);
        }
    }
    return files;
}

static bool collect_name(void *ctx, const char *name, const struct stat *st, off_t next)
{
    (void)next;
    if (S_ISREG(st->st_mode))
        g_ptr_array_add(ctx, g_strdup(name));
    return false;
}

/* Returns how many files were compared exactly with their synced state;
 * every file's contents go to `seen` (name -> GBytes). */
static guint verify(Core *c, const char *jpath, GHashTable *seen)
{
    GError *e = NULL;
    ctu_assert_clean(c, false);
    g_autoptr(GHashTable) files = replay(jpath);
    /* Every regular file in the root, journaled or not. */
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    uint64_t fh;
    g_assert_cmpint(core_opendir(c, CORE_ROOT_INO, &fh, &e), ==, 0);
    g_assert_cmpint(core_readdir(c, CORE_ROOT_INO, fh, 0, false, collect_name, names, &e), ==, 0);
    core_releasedir(c, CORE_ROOT_INO, fh, NULL);
    guint exact = 0;
    for (guint n = 0; n < names->len; n++) {
        const char *name = names->pdata[n];
        g_autofree char *path = g_strdup_printf("/%s", name);
        int err = 0;
        g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &err);
        if (!b)
            g_error("%s: unreadable after the crash: %s", path, g_strerror(-err));
        g_hash_table_insert(seen, g_strdup(name), g_bytes_ref(b));
        gsize len;
        const guint8 *data = g_bytes_get_data(b, &len);
        Track *t = g_hash_table_lookup(files, name);
        /* Every byte is zero (hole, extension) or one some write put at
         * that offset. */
        g_autofree guint8 *ok = g_malloc0(len + 1);
        g_autofree guint8 *pat = g_malloc(300000);
        for (guint w = 0; t && w + 2 < t->writes->len; w += 3) {
            uint64_t gen = g_array_index(t->writes, uint64_t, w);
            uint64_t off = g_array_index(t->writes, uint64_t, w + 1);
            uint64_t wl = g_array_index(t->writes, uint64_t, w + 2);
            if (off >= len)
                continue;
            wl = MIN(wl, len - off);
            ctu_pattern(gen_seed(name, gen), off, pat, wl);
            for (uint64_t k = 0; k < wl; k++)
                ok[off + k] |= data[off + k] == pat[k];
        }
        for (gsize i = 0; i < len; i++)
            if (data[i] && !ok[i])
                g_error("%s: byte %zu (%#x) was never written there", path, (size_t)i, data[i]);
        /* Synced and not touched since: exactly the synced contents. */
        if (t && t->synced && !t->changed_since) {
            if (len != t->synced->len || (len && memcmp(data, t->synced->data, len) != 0)) {
                gsize at = 0;
                while (at < MIN(len, t->synced->len) && data[at] == t->synced->data[at])
                    at++;
                g_error("%s: differs from what was fsync'ed (%zu bytes, %u synced; first at "
                        "%zu: %#x, not %#x)", path, (size_t)len, t->synced->len, (size_t)at,
                        at < len ? data[at] : 0, at < t->synced->len ? t->synced->data[at] : 0);
            }
            exact++;
        }
    }
    /* Every file fsync'ed at least once exists. */
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, files);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        gboolean found = FALSE;
        for (guint n = 0; n < names->len && !found; n++)
            found = !strcmp(names->pdata[n], k);
        if (((Track *)v)->synced && !found)
            g_error("%s: fsync'ed but gone after the crash", (char *)k);
    }
    return exact;
}

static void test_crash(void)
{
    ctu_strict_logs();
    GError *e = NULL;
    g_autofree char *tmp = g_dir_make_tmp("tapefs-crash-XXXXXX", &e);
    g_assert_no_error(e);
    g_autofree char *store = g_build_filename(tmp, "store", NULL);
    g_autofree char *jpath = g_build_filename(tmp, "journal", NULL);
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 128 << 20;
    g_assert_cmpint(core_store_create(store, &m, &e), ==, 0);
    after_kill = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
    GRand *r = g_rand_new_with_seed(g_test_rand_int());
    int rounds = 8;
    guint exact_total = 0;
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
        GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify)g_bytes_unref);
        exact_total += verify(c, jpath, seen);
        g_assert_cmpint(core_store_close(c, &e), ==, 0);
        g_assert_no_error(e);
        g_ptr_array_add(after_kill, seen);
        int jfd = open(jpath, O_WRONLY | O_APPEND | O_CREAT, 0600);
        g_assert_cmpint(jfd, >=, 0);
        journal(jfd, "K %d\n", round);
        close(jfd);
    }
    /* The rounds did durable work that survived and was compared. */
    g_assert_cmpuint(exact_total, >, 0);
    g_rand_free(r);
    g_ptr_array_unref(after_kill);
    ctu_rmtree(tmp);
}

/* In a child (killed with SIGKILL at the end): open the store with no
 * background commits and run the work. */
typedef struct {
    const char *store;
    void (*work)(Core *c);
} KilledWork;

static void open_and_work(void *ud)
{
    KilledWork *w = ud;
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.commit_interval_ms = 600000;
    w->work(ctu_child_open(w->store, &o, NULL, NULL));
}

static void must_write(Core *c, const char *path, uint64_t seed, uint64_t off, size_t len)
{
    g_autofree guint8 *b = g_malloc(len);
    ctu_pattern(seed, off, b, len);
    g_assert_cmpint(ctu_write(c, path, off, b, len), ==, 0);
}

static void must_fsync(Core *c, const char *path)
{
    GError *e = NULL;
    uint64_t ino = ctu_resolve(c, CORE_ROOT_INO, path), fh;
    g_assert_cmpuint(ino, !=, 0);
    g_assert_cmpint(core_open(c, ino, O_RDWR, &fh, &e), ==, 0);
    g_assert_cmpint(core_fsync(c, ino, fh, false, &e), ==, 0);
    g_assert_cmpint(core_release(c, ino, fh, &e), ==, 0);
}

/* fsync'ed, synced to tape, then rewritten without fsync: the cache kept
 * the block as dirty from the fsync, so the unrecorded rewrite's bytes
 * survive the kill in it while the catalog points at tape. */
static void rewrite_after_sync(Core *c)
{
    GError *e = NULL;
    must_write(c, "/f", 1, 0, 100000);
    must_fsync(c, "/f");
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    must_write(c, "/f", 2, 50000, 20000);
}

/* The last block is recorded up to 10000; a write past it (unrecorded)
 * leaves bytes in that block beyond the end of the file. */
static void append_in_recorded_block(Core *c)
{
    must_write(c, "/f", 1, 0, 10000);
    must_fsync(c, "/f");
    must_write(c, "/f", 3, 10000, 2000);
}

/* After a kill, a file reads what was committed, and keeps reading that
 * after the dirty blocks were flushed and the cache dropped: never the
 * bytes of a write the catalog never recorded. */
static void test_unrecorded(gconstpointer data)
{
    ctu_strict_logs();
    CtuStore *s = ctu_new(NULL, NULL);
    ctu_close(s);
    bool tail = GPOINTER_TO_INT(data);
    KilledWork w = { s->store, tail ? append_in_recorded_block : rewrite_after_sync };
    ctu_run_killed(open_and_work, &w);
    uint64_t size = tail ? 10000 : 100000;
    g_autofree guint8 *want = g_malloc0(12000 + size);
    ctu_pattern(1, 0, want, size);
    ctu_reopen(s, NULL);
    int err = 0;
    GError *e = NULL;
    g_autoptr(GBytes) first = ctu_read(s->core, CORE_ROOT_INO, "/f", &err);
    g_assert_nonnull(first);
    g_assert_cmpmem(g_bytes_get_data(first, NULL), g_bytes_get_size(first), want, size);
    if (tail) {
        /* Extending the file shows zeros, not the unrecorded bytes. */
        uint64_t ino = ctu_resolve(s->core, CORE_ROOT_INO, "/f");
        struct stat st = { .st_size = 12000 };
        g_assert_cmpint(core_setattr(s->core, ino, &st, CORE_SET_SIZE, NULL, &e), ==, 0);
        size = 12000;
    }
    g_autoptr(GBytes) second = ctu_read(s->core, CORE_ROOT_INO, "/f", &err);
    g_assert_cmpmem(g_bytes_get_data(second, NULL), g_bytes_get_size(second), want, size);
    ctu_close(s);
    ctu_reopen(s, NULL);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    g_autoptr(GBytes) third = ctu_read(s->core, CORE_ROOT_INO, "/f", &err);
    g_assert_nonnull(third);
    g_assert_cmpmem(g_bytes_get_data(third, NULL), g_bytes_get_size(third), want, size);
    ctu_assert_clean(s->core, false);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/crash/sigkill-rounds", test_crash);
    g_test_add_data_func("/core/crash/unrecorded-rewrite-after-sync", GINT_TO_POINTER(0),
                         test_unrecorded);
    g_test_add_data_func("/core/crash/unrecorded-bytes-in-recorded-block", GINT_TO_POINTER(1),
                         test_unrecorded);
    return g_test_run();
}

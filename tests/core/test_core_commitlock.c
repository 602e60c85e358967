/* test_core_commitlock.c — Core.lock is released during the long parts of
 * a group commit (the cache fsyncs of the flusher's commits) and of an
 * index (the copy of the catalog), and nothing durable is lost for it:
 *   index-copy    with tens of thousands of rows, core_getattr, core_lookup
 *                 and a create + fsync (a commit) complete while the index
 *                 copy waits in the test hook, so before core_sync returns;
 *                 the index on tape is the catalog as committed before the
 *                 copy (the file committed during the copy is not in it);
 *   commit-fsync  while the flusher's group commit fsyncs unlocked (hook),
 *                 getattr and a write complete, and a concurrent fsync
 *                 (another commit) does not return before the unlocked
 *                 fsyncs end; the data survives a reopen;
 *   stress        a writer creates, writes and fsyncs files while another
 *                 thread syncs (group commits and index writes) and takes
 *                 snapshots, with group commits every few milliseconds;
 *                 the store passes core_check and holds every file;
 *   crash         the same in a child killed with SIGKILL at random
 *                 moments, several rounds on one store: every file whose
 *                 fsync returned before the kill is there, byte for byte.
 * The hook (CoreOpenOptions.test_hook) blocks its thread until the probe
 * says it is done, or 30 s: with the lock held there, the probe cannot
 * finish in time and the test fails (no timing race in the passing case).
 * Locks: Probe.lock guards every field of a Probe. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOOK_WAIT_US (30 * G_USEC_PER_SEC)

typedef struct {
    GMutex lock;
    GCond cond;
    Core *core;
    int point;          /* the hook point to block at */
    bool armed;         /* block the next time it is reached */
    bool reached;       /* the hook is blocking now */
    bool probe_done;    /* the probe finished its calls ... */
    bool probe_in_time; /* ... while the hook was still blocking */
    bool watch_fsync;   /* commit-fsync: also watch the concurrent fsync */
    bool fsync_done;    /* it returned */
    bool fsync_early;   /* it returned while the hook was blocking */
    int fsync_rc;
    uint64_t ino, fh;   /* commit-fsync: the file the probe writes */
} Probe;

static void probe_init(Probe *p)
{
    memset(p, 0, sizeof *p);
    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
}

static void probe_clear(Probe *p)
{
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->cond);
}

static void test_hook(void *arg, int point)
{
    Probe *p = arg;
    g_mutex_lock(&p->lock);
    if (point != p->point || !p->armed) {
        g_mutex_unlock(&p->lock);
        return;
    }
    p->armed = false;
    p->reached = true;
    g_cond_broadcast(&p->cond);
    gint64 until = g_get_monotonic_time() + HOOK_WAIT_US;
    while (!p->probe_done && g_cond_wait_until(&p->cond, &p->lock, until))
        ;
    p->probe_in_time = p->probe_done;
    if (p->watch_fsync) {
        /* A commit that did not wait would return now. */
        until = g_get_monotonic_time() + 300 * 1000;
        while (!p->fsync_done && g_cond_wait_until(&p->cond, &p->lock, until))
            ;
        p->fsync_early = p->fsync_done;
    }
    p->reached = false;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
}

static void probe_wait_reached(Probe *p)
{
    g_mutex_lock(&p->lock);
    gint64 until = g_get_monotonic_time() + HOOK_WAIT_US;
    while (!p->reached && g_cond_wait_until(&p->cond, &p->lock, until))
        ;
    g_assert_true(p->reached);
    g_mutex_unlock(&p->lock);
}

static void probe_finish(Probe *p)
{
    g_mutex_lock(&p->lock);
    p->probe_done = true;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
}

static void mkfs_big(CoreMkfsOptions *m)
{
    ctu_mkfs_options(m);
    m->volume_size = 64 << 20;
}

/* ---- index-copy ------------------------------------------------------- */

#define INDEX_FILES 20000

static gpointer index_probe(gpointer data)
{
    Probe *p = data;
    probe_wait_reached(p);
    Core *c = p->core;
    const CoreCred cred = { 0, 0 };
    struct stat st;
    g_assert_cmpint(core_getattr(c, CORE_ROOT_INO, &st, NULL), ==, 0);
    g_assert_cmpint(core_lookup(c, CORE_ROOT_INO, "f-00007", &st, NULL), ==, 0);
    core_forget(c, st.st_ino, 1);
    /* A file committed while the copy waits: not part of this index. */
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "late", 0644, O_RDWR | O_CREAT, &cred, &st,
                                &fh, NULL), ==, 0);
    g_assert_cmpint(core_write(c, st.st_ino, fh, "late", 4, 0, NULL), ==, 4);
    g_assert_cmpint(core_fsync(c, st.st_ino, fh, false, NULL), ==, 0);
    g_assert_cmpint(core_release(c, st.st_ino, fh, NULL), ==, 0);
    core_forget(c, st.st_ino, 1);
    probe_finish(p);
    return NULL;
}

static void test_index_copy(void)
{
    Probe p;
    probe_init(&p);
    CoreMkfsOptions m;
    mkfs_big(&m);
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.test_hook = test_hook;
    o.test_hook_arg = &p;
    CtuStore *s = ctu_new(&m, &o);
    Core *c = s->core;
    p.core = c;
    const CoreCred cred = { 0, 0 };
    for (int i = 0; i < INDEX_FILES; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "f-%05d", i);
        struct stat st;
        g_assert_cmpint(core_mknod(c, CORE_ROOT_INO, name, S_IFREG | 0644, 0, &cred, &st, NULL),
                        ==, 0);
        core_forget(c, st.st_ino, 1);
    }
    g_mutex_lock(&p.lock);
    p.point = CORE_TEST_INDEX_COPY;
    p.armed = true;
    g_mutex_unlock(&p.lock);
    GThread *t = g_thread_new("probe", index_probe, &p);
    GError *e = NULL;
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    /* The hook ran inside core_sync and returned before it did: the probe's
     * calls completed before core_sync returned, during the copy. */
    g_mutex_lock(&p.lock);
    g_assert_false(p.armed);
    g_assert_true(p.probe_in_time);
    g_mutex_unlock(&p.lock);
    g_thread_join(t);
    ctu_assert_clean(c, false);

    /* The index just written, recovered from a copy of the library taken
     * before close writes another one. */
    g_autofree char *lib = g_build_filename(s->store, "library", NULL);
    g_autofree char *copy = g_build_filename(s->tmp, "library-copy", NULL);
    g_autofree char *cmd = g_strdup_printf("cp -a '%s' '%s'", lib, copy);
    g_assert_cmpint(system(cmd), ==, 0);
    ctu_close(s);
    g_autofree char *fresh = g_build_filename(s->tmp, "recovered", NULL);
    g_assert_cmpint(core_recover(copy, fresh, NULL, &e), ==, 0);
    g_assert_no_error(e);
    CoreOpenOptions ro;
    ctu_open_options(&ro);
    Core *r = core_store_open(fresh, &ro, &e);
    g_assert_no_error(e);
    g_assert_nonnull(r);
    struct stat st;
    g_assert_cmpint(core_lookup(r, CORE_ROOT_INO, "f-00000", &st, NULL), ==, 0);
    core_forget(r, st.st_ino, 1);
    g_assert_cmpint(core_lookup(r, CORE_ROOT_INO, "f-19999", &st, NULL), ==, 0);
    core_forget(r, st.st_ino, 1);
    g_assert_cmpint(core_lookup(r, CORE_ROOT_INO, "late", &st, NULL), ==, -ENOENT);
    ctu_assert_clean(r, false);
    g_assert_cmpint(core_store_close(r, &e), ==, 0);
    g_assert_no_error(e);
    ctu_free(s);
    probe_clear(&p);
}

/* ---- commit-fsync ----------------------------------------------------- */

static gpointer fsync_thread(gpointer data)
{
    Probe *p = data;
    int rc = core_fsync(p->core, p->ino, p->fh, false, NULL);
    g_mutex_lock(&p->lock);
    p->fsync_rc = rc;
    p->fsync_done = true;
    g_cond_broadcast(&p->cond);
    g_mutex_unlock(&p->lock);
    return NULL;
}

static gpointer commit_probe(gpointer data)
{
    Probe *p = data;
    probe_wait_reached(p);
    Core *c = p->core;
    struct stat st;
    g_assert_cmpint(core_getattr(c, CORE_ROOT_INO, &st, NULL), ==, 0);
    /* A write recorded while the taken objects are fsync'ed. */
    guint8 buf[10000];
    ctu_pattern(2, 0, buf, sizeof buf);
    g_assert_cmpint(core_write(c, p->ino, p->fh, buf, sizeof buf, 0, NULL), ==, sizeof buf);
    /* Another commit now must wait for the unlocked fsyncs to end. */
    GThread *f = g_thread_new("fsync", fsync_thread, p);
    probe_finish(p);
    return f;
}

static void test_commit_fsync(void)
{
    Probe p;
    probe_init(&p);
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.commit_interval_ms = 50;
    o.test_hook = test_hook;
    o.test_hook_arg = &p;
    CtuStore *s = ctu_new(NULL, &o);
    Core *c = s->core;
    p.core = c;
    const CoreCred cred = { 0, 0 };
    struct stat st;
    uint64_t fha;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "a", 0644, O_RDWR | O_CREAT, &cred, &st, &fha,
                                NULL), ==, 0);
    uint64_t inoa = st.st_ino;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "b", 0644, O_RDWR | O_CREAT, &cred, &st, &p.fh,
                                NULL), ==, 0);
    p.ino = st.st_ino;
    g_mutex_lock(&p.lock);
    p.point = CORE_TEST_COMMIT_FSYNC;
    p.watch_fsync = true;
    p.armed = true;
    g_mutex_unlock(&p.lock);
    GThread *t = g_thread_new("probe", commit_probe, &p);
    /* The flusher's next group commit fsyncs a's object unlocked. */
    guint8 buf[20000];
    ctu_pattern(1, 0, buf, sizeof buf);
    g_assert_cmpint(core_write(c, inoa, fha, buf, sizeof buf, 0, NULL), ==, sizeof buf);
    GThread *f = g_thread_join(t);
    g_thread_join(f);
    g_mutex_lock(&p.lock);
    g_assert_true(p.probe_in_time);
    g_assert_false(p.fsync_early);
    g_assert_true(p.fsync_done);
    g_assert_cmpint(p.fsync_rc, ==, 0);
    g_mutex_unlock(&p.lock);
    g_assert_cmpint(core_release(c, inoa, fha, NULL), ==, 0);
    g_assert_cmpint(core_release(c, p.ino, p.fh, NULL), ==, 0);
    ctu_assert_clean(c, false);
    ctu_close(s);
    ctu_reopen(s, NULL);
    int err = 0;
    g_autoptr(GBytes) a = ctu_read(s->core, CORE_ROOT_INO, "/a", &err);
    g_assert_nonnull(a);
    g_assert_cmpmem(g_bytes_get_data(a, NULL), g_bytes_get_size(a), buf, sizeof buf);
    guint8 want[10000];
    ctu_pattern(2, 0, want, sizeof want);
    g_autoptr(GBytes) b = ctu_read(s->core, CORE_ROOT_INO, "/b", &err);
    g_assert_nonnull(b);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), want, sizeof want);
    ctu_assert_clean(s->core, false);
    ctu_free(s);
    probe_clear(&p);
}

/* ---- stress and crash ------------------------------------------------- */

static uint64_t file_seed(const char *name)
{
    return g_str_hash(name) * 2654435761u + 99;
}

static size_t file_len(GRand *r)
{
    return (size_t)g_rand_int_range(r, 1, g_rand_boolean(r) ? 5000 : 70000);
}

/* Group commits that fsync'ed without Core.lock (stress counts them). */
static gint unlocked_fsyncs;

/* Counts them, and makes their fsyncs slow (as on a busy disk), so that
 * writes, fsyncs and syncs often come while one runs. */
static void count_hook(void *arg, int point)
{
    (void)arg;
    if (point == CORE_TEST_COMMIT_FSYNC) {
        g_atomic_int_inc(&unlocked_fsyncs);
        g_usleep(3000);
    }
}

static void stress_options(CoreOpenOptions *o)
{
    ctu_open_options(o);
    o->test_hook = count_hook;
    o->no_flusher_triggers = false; /* background flushes and bundles too */
    o->bundle_delay = 1;
    o->bundle_size = 256 << 10;
    o->bundle_threshold = 128 << 10;
    o->commit_interval_ms = 5;
}

typedef struct {
    Core *core;
    guint32 seed;
    int nfiles;            /* per writer; < 0: until killed */
    int jfd;               /* journal, or -1 */
    int sync_pause_ms;     /* the syncer's pause is up to this long */
    gint writers_left;     /* atomic: writers not finished yet */
    int syncs, snapshots;  /* the syncer's */
} Stress;

typedef struct {
    Stress *w;
    int idx;
    GHashTable *written;   /* name -> length (GUINT_TO_POINTER) */
} Writer;

/* Create, write and (half of them) fsync files one after the other; the
 * journal line "F name len" of a file is written once its fsync returned
 * (the others are not checked after a crash). Several writers
 * run at once, so that writes are recorded while a group commit fsyncs. */
static gpointer stress_writer(gpointer data)
{
    Writer *wr = data;
    Stress *w = wr->w;
    Core *c = w->core;
    GRand *r = g_rand_new_with_seed(w->seed + (guint32)wr->idx * 7919u);
    const CoreCred cred = { 0, 0 };
    guint8 *buf = g_malloc(70000);
    for (int i = 0; w->nfiles < 0 || i < w->nfiles; i++) {
        char name[64];
        g_snprintf(name, sizeof name, "w%u-%d-%d", w->seed, wr->idx, i);
        size_t len = file_len(r);
        ctu_pattern(file_seed(name), 0, buf, len);
        struct stat st;
        uint64_t fh;
        GError *e = NULL;
        if (core_create(c, CORE_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &cred, &st, &fh, &e) < 0)
            g_error("create %s: %s", name, e->message);
        /* Sometimes in two writes, so an object is noted twice. */
        size_t half = g_rand_boolean(r) ? len / 2 : len;
        if (core_write(c, st.st_ino, fh, buf, half, 0, &e) != (ssize_t)half)
            g_error("write %s: %s", name, e ? e->message : "short");
        if (half < len && g_rand_boolean(r))
            g_usleep((gulong)g_rand_int_range(r, 0, 5000));
        if (half < len && core_write(c, st.st_ino, fh, buf + half, len - half, (off_t)half,
                                     &e) != (ssize_t)(len - half))
            g_error("write %s: %s", name, e ? e->message : "short");
        /* Half of the files are only closed: the flusher's group commits
         * (which fsync unlocked) make them durable. Of the others, now
         * and then a group commit comes before the fsync. */
        bool sync = g_rand_boolean(r);
        if (g_rand_boolean(r))
            g_usleep((gulong)g_rand_int_range(r, 0, 8000));
        if (sync && core_fsync(c, st.st_ino, fh, false, &e) < 0)
            g_error("fsync %s: %s", name, e->message);
        if (sync && w->jfd >= 0) {
            g_autofree char *line = g_strdup_printf("F %s %zu\n", name, len);
            size_t n = strlen(line);
            if (write(w->jfd, line, n) != (ssize_t)n)
                _exit(3);
        }
        if (wr->written)
            g_hash_table_insert(wr->written, g_strdup(name), GUINT_TO_POINTER((guint)len));
        core_release(c, st.st_ino, fh, NULL);
        core_forget(c, st.st_ino, 1);
        if (g_rand_int_range(r, 0, 4) == 0)
            g_usleep((gulong)g_rand_int_range(r, 0, 3000));
    }
    g_free(buf);
    g_rand_free(r);
    g_atomic_int_add(&w->writers_left, -1);
    return NULL;
}

/* Force group commits and index writes (core_sync) and now and then a
 * snapshot (a commit inside an operation) while the writers run. */
static gpointer stress_syncer(gpointer data)
{
    Stress *w = data;
    GRand *r = g_rand_new_with_seed(w->seed ^ 0x5555);
    while (g_atomic_int_get(&w->writers_left) > 0) {
        GError *e = NULL;
        if (core_sync(w->core, &e) < 0)
            g_error("sync: %s", e->message);
        w->syncs++;
        if (g_rand_int_range(r, 0, 8) == 0) {
            g_autofree char *sn = g_strdup_printf("s%u-%d", w->seed, w->snapshots);
            if (core_snapshot_create(w->core, sn, &e) < 0)
                g_error("snapshot: %s", e->message);
            w->snapshots++;
        }
        g_usleep((gulong)g_rand_int_range(r, 1000, w->sync_pause_ms * 1000));
    }
    g_rand_free(r);
    return NULL;
}

static void verify_file(Core *c, const char *name, size_t len)
{
    int err = 0;
    g_autofree char *path = g_strconcat("/", name, NULL);
    g_autoptr(GBytes) got = ctu_read(c, CORE_ROOT_INO, path, &err);
    if (!got)
        g_error("%s: fsync'ed, but missing (%d)", name, err);
    guint8 *want = g_malloc(len);
    ctu_pattern(file_seed(name), 0, want, len);
    g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), want, len);
    g_free(want);
}

enum { WRITERS = 3 };

static void test_stress(void)
{
    CoreMkfsOptions m;
    mkfs_big(&m);
    CoreOpenOptions o;
    stress_options(&o);
    CtuStore *s = ctu_new(&m, &o);
    Stress w = { .core = s->core, .seed = 7, .nfiles = 100, .jfd = -1, .sync_pause_ms = 20,
                 .writers_left = WRITERS };
    Writer wr[WRITERS];
    GThread *t[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        wr[i] = (Writer){ .w = &w, .idx = i,
                          .written = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) };
        t[i] = g_thread_new("writer", stress_writer, &wr[i]);
    }
    GThread *b = g_thread_new("syncer", stress_syncer, &w);
    for (int i = 0; i < WRITERS; i++)
        g_thread_join(t[i]);
    g_thread_join(b);
    g_assert_cmpint(w.syncs, >, 0);
    g_test_message("%d syncs, %d snapshots, %d group commits fsync'ed unlocked", w.syncs,
                   w.snapshots, g_atomic_int_get(&unlocked_fsyncs));
    /* However that went, the flusher's periodic commit takes the unlocked
     * path for a write left alone (the file stays open: no flush). */
    g_assert_cmpint(core_flush_all(s->core, NULL), ==, 0); /* nothing else left to do */
    gint before = g_atomic_int_get(&unlocked_fsyncs);
    const CoreCred cred = { 0, 0 };
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(s->core, CORE_ROOT_INO, "alone", 0644, O_RDWR | O_CREAT, &cred,
                                &st, &fh, NULL), ==, 0);
    g_assert_cmpint(core_write(s->core, st.st_ino, fh, "alone", 5, 0, NULL), ==, 5);
    gint64 until = g_get_monotonic_time() + HOOK_WAIT_US;
    while (g_atomic_int_get(&unlocked_fsyncs) == before && g_get_monotonic_time() < until)
        g_usleep(1000);
    g_assert_cmpint(g_atomic_int_get(&unlocked_fsyncs), >, before);
    g_assert_cmpint(core_release(s->core, st.st_ino, fh, NULL), ==, 0);
    core_forget(s->core, st.st_ino, 1);
    ctu_assert_clean(s->core, false);
    ctu_close(s);
    ctu_reopen(s, NULL);
    ctu_assert_clean(s->core, false);
    for (int i = 0; i < WRITERS; i++) {
        g_assert_cmpuint(g_hash_table_size(wr[i].written), ==, 100);
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, wr[i].written);
        while (g_hash_table_iter_next(&it, &k, &v))
            verify_file(s->core, k, GPOINTER_TO_UINT(v));
        g_hash_table_unref(wr[i].written);
    }
    ctu_free(s);
}

/* The child: never returns; killed by the parent. */
static void crash_child(const char *store, const char *jpath, guint32 seed, int round)
{
    CoreOpenOptions o;
    stress_options(&o);
    /* Data stays in the cache between syncs (no background flushes): a
     * commit that skipped an fsync would lose it at the kill. */
    o.no_flusher_triggers = true;
    int jfd = -1;
    Core *c = ctu_child_open(store, &o, jpath, &jfd);
    (void)round;
    Stress w = { .core = c, .seed = seed, .nfiles = -1, .jfd = jfd, .sync_pause_ms = 400,
                 .writers_left = WRITERS };
    Writer wr[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        wr[i] = (Writer){ .w = &w, .idx = i };
        g_thread_new("writer", stress_writer, &wr[i]);
    }
    stress_syncer(&w);
    _exit(0);
}

static void test_crash(void)
{
    CoreMkfsOptions m;
    mkfs_big(&m);
    CtuStore *s = ctu_new(&m, NULL);
    ctu_close(s);
    g_autofree char *jpath = g_build_filename(s->tmp, "journal", NULL);
    guint32 seed = g_test_rand_int();
    g_test_message("seed %u", seed);
    GRand *r = g_rand_new_with_seed(seed);
    guint verified = 0;
    enum { ROUNDS = 6 };
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0)
            crash_child(s->store, jpath, g_rand_int(r), round);
        g_usleep((gulong)g_rand_int_range(r, 300, 1500) * 1000);
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        int status = 0;
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        /* Killed by us, not dead of its own. */
        g_assert_true(WIFSIGNALED(status));
        g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);

        ctu_reopen(s, NULL);
        ctu_assert_clean(s->core, false);
        gchar *text = NULL;
        gsize tlen = 0;
        g_assert_true(g_file_get_contents(jpath, &text, &tlen, NULL));
        guint n = 0;
        char *line = text;
        for (char *nl; (nl = memchr(line, '\n', tlen - (gsize)(line - text))); line = nl + 1) {
            *nl = '\0'; /* a torn last line has no newline: ignored */
            char name[64];
            size_t len;
            if (sscanf(line, "F %63s %zu", name, &len) != 2)
                g_error("journal line \"%s\"", line);
            verify_file(s->core, name, len);
            n++;
        }
        g_free(text);
        g_test_message("round %d: %u fsync'ed files verified", round, n);
        verified = n;
        ctu_close(s);
    }
    g_rand_free(r);
    /* The kills did not all come before the first fsync. */
    g_assert_cmpuint(verified, >, 0);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ctu_strict_logs();
    /* GLib keeps idle pool threads for reuse by any pool; a child forked
     * while some exist would hand its fsyncs to threads it does not have. */
    g_thread_pool_set_max_unused_threads(0);
    g_test_add_func("/core/commitlock/index-copy", test_index_copy);
    g_test_add_func("/core/commitlock/commit-fsync", test_commit_fsync);
    g_test_add_func("/core/commitlock/stress", test_stress);
    g_test_add_func("/core/commitlock/crash", test_crash);
    return g_test_run();
}

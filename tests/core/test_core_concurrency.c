/* test_core_concurrency.c — several threads at once: writers rewriting
 * their own files and reading them back, a thread taking and deleting
 * snapshots, a thread syncing and dropping the cache, with a small cache
 * limit so writers wait for the flusher (need_space). Nothing deadlocks,
 * every read returns bytes that were written, and at the end every file
 * and the store check out. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define WRITERS 3
#define FILES 4
#define FSIZE (768 << 10)

typedef struct {
    Core *c;
    int id;
    gint *stop;
    guint32 gens[FILES]; /* content generation of each file */
    GMutex lock;
} Writer;

static void content(int w, int f, guint32 gen, guint8 *buf)
{
    ctu_pattern(((uint64_t)w << 40) | ((uint64_t)f << 32) | gen, 0, buf, FSIZE);
}

static gpointer writer_main(gpointer data)
{
    Writer *w = data;
    const CoreCred cred = { 0, 0 };
    guint8 *buf = g_malloc(FSIZE), *back = g_malloc(FSIZE);
    GRand *r = g_rand_new_with_seed((guint32)w->id * 7919);
    for (int round = 0; !g_atomic_int_get(w->stop); round++) {
        int f = g_rand_int_range(r, 0, FILES);
        char name[32];
        g_snprintf(name, sizeof name, "w%d-f%d", w->id, f);
        guint32 gen = (guint32)round + 1;
        content(w->id, f, gen, buf);
        struct stat st;
        uint64_t fh;
        GError *e = NULL;
        g_assert_cmpint(core_create(w->c, CORE_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &cred,
                                    &st, &fh, &e), ==, 0);
        for (size_t at = 0; at < FSIZE; at += 128 << 10) {
            ssize_t n = core_write(w->c, st.st_ino, fh, buf + at, 128 << 10, (off_t)at, &e);
            if (n != 128 << 10)
                g_error("writer %d: %s", w->id, e ? e->message : "short write");
        }
        ssize_t n = core_read(w->c, st.st_ino, fh, back, FSIZE, 0, &e);
        g_assert_cmpint(n, ==, FSIZE);
        if (memcmp(back, buf, FSIZE) != 0)
            g_error("writer %d: %s reads back other bytes", w->id, name);
        core_release(w->c, st.st_ino, fh, NULL);
        core_forget(w->c, st.st_ino, 1);
        g_mutex_lock(&w->lock);
        w->gens[f] = gen;
        g_mutex_unlock(&w->lock);
    }
    g_rand_free(r);
    g_free(buf);
    g_free(back);
    return NULL;
}

typedef struct {
    Core *c;
    gint *stop;
    int snaps, syncs;
} Admin;

static gpointer snapper_main(gpointer data)
{
    Admin *a = data;
    GError *e = NULL;
    for (int i = 0; !g_atomic_int_get(a->stop); i++) {
        char name[32];
        g_snprintf(name, sizeof name, "s%d", i);
        g_assert_cmpint(core_snapshot_create(a->c, name, &e), ==, 0);
        a->snaps++;
        if (i >= 2) {
            g_snprintf(name, sizeof name, "s%d", i - 2);
            g_assert_cmpint(core_snapshot_delete(a->c, name, &e), ==, 0);
        }
        g_usleep(30000);
    }
    return NULL;
}

static gpointer syncer_main(gpointer data)
{
    Admin *a = data;
    GError *e = NULL;
    while (!g_atomic_int_get(a->stop)) {
        if (core_sync(a->c, &e) < 0)
            g_error("sync: %s", e->message);
        g_assert_cmpint(core_drop_cache(a->c, &e), ==, 0);
        a->syncs++;
        g_usleep(50000);
    }
    return NULL;
}

static void test_concurrent(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 64 << 20;
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.no_flusher_triggers = false;
    o.cache_size = 6 << 20;
    o.dirty_wait_ms = 20000;
    CtuStore *s = ctu_new(&m, &o);
    gint stop = 0;
    Writer ws[WRITERS];
    GThread *th[WRITERS + 2];
    for (int i = 0; i < WRITERS; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        ws[i].c = s->core;
        ws[i].id = i;
        ws[i].stop = &stop;
        g_mutex_init(&ws[i].lock);
        th[i] = g_thread_new("writer", writer_main, &ws[i]);
    }
    Admin snap = { s->core, &stop, 0, 0 }, syn = { s->core, &stop, 0, 0 };
    th[WRITERS] = g_thread_new("snapper", snapper_main, &snap);
    th[WRITERS + 1] = g_thread_new("syncer", syncer_main, &syn);
    g_usleep(4 * G_USEC_PER_SEC);
    g_atomic_int_set(&stop, 1);
    for (int i = 0; i < WRITERS + 2; i++)
        g_thread_join(th[i]);
    g_assert_cmpint(snap.snaps, >, 3);
    g_assert_cmpint(syn.syncs, >, 0);
    GError *e = NULL;
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    guint8 *want = g_malloc(FSIZE);
    int checked = 0;
    for (int w = 0; w < WRITERS; w++)
        for (int f = 0; f < FILES; f++) {
            if (!ws[w].gens[f])
                continue;
            char path[32];
            g_snprintf(path, sizeof path, "/w%d-f%d", w, f);
            content(w, f, ws[w].gens[f], want);
            int err = 0;
            g_autoptr(GBytes) b = ctu_read(s->core, CORE_ROOT_INO, path, &err);
            g_assert_cmpint(err, ==, 0);
            g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), want, FSIZE);
            checked++;
        }
    g_assert_cmpint(checked, >, WRITERS);
    g_free(want);
    g_assert_cmpint(core_check(s->core, true, NULL, &e), ==, 0);
    for (int i = 0; i < WRITERS; i++)
        g_mutex_clear(&ws[i].lock);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/concurrency/writers-snapshots-syncs", test_concurrent);
    return g_test_run();
}

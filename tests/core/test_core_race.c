/* test_core_race.c — writes racing each other and truncation, with
 * threads on one store:
 *   - O_APPEND writers on one file: every record lands whole, none
 *     overwrites another, the size is the sum of all records;
 *   - writers racing a truncating thread: every write is acknowledged
 *     (never EAGAIN), every byte reads back (never EIO), and each byte
 *     is zero or what some write put at that offset. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define APPENDERS 4
#define RECORDS 150
#define REC 1000   /* not a block multiple: records share blocks */

typedef struct {
    Core *c;
    uint64_t ino;
    int id;
} Appender;

static gpointer append_main(gpointer data)
{
    Appender *a = data;
    uint64_t fh;
    GError *e = NULL;
    g_assert_cmpint(core_open(a->c, a->ino, O_WRONLY | O_APPEND, &fh, &e), ==, 0);
    guint8 rec[REC];
    for (int i = 0; i < RECORDS; i++) {
        /* A record: its writer and number, repeated. */
        for (int k = 0; k < REC; k++)
            rec[k] = (guint8)(k == 0 ? 0xA0 + a->id : (k == 1 ? i : a->id * 40 + 7));
        ssize_t n = core_write(a->c, a->ino, fh, rec, REC, 0, &e);
        if (n != REC)
            g_error("appender %d: %s", a->id, e ? e->message : "short write");
    }
    core_release(a->c, a->ino, fh, NULL);
    return NULL;
}

static void test_concurrent_appends(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    const CoreCred cred = { 0, 0 };
    struct stat st;
    uint64_t fh;
    GError *e = NULL;
    g_assert_cmpint(core_create(s->core, CORE_ROOT_INO, "log", 0644, O_RDWR | O_CREAT, &cred,
                                &st, &fh, &e), ==, 0);
    Appender ap[APPENDERS];
    GThread *th[APPENDERS];
    for (int i = 0; i < APPENDERS; i++) {
        ap[i] = (Appender){ .c = s->core, .ino = st.st_ino, .id = i };
        th[i] = g_thread_new("append", append_main, &ap[i]);
    }
    for (int i = 0; i < APPENDERS; i++)
        g_thread_join(th[i]);
    core_release(s->core, st.st_ino, fh, NULL);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(s->core, CORE_ROOT_INO, "/log", &err);
    g_assert_nonnull(b);
    gsize len;
    const guint8 *d = g_bytes_get_data(b, &len);
    g_assert_cmpuint(len, ==, (gsize)APPENDERS * RECORDS * REC);
    int next[APPENDERS] = { 0 };
    for (gsize at = 0; at < len; at += REC) {
        int w = d[at] - 0xA0;
        if (w < 0 || w >= APPENDERS)
            g_error("record at %zu is overwritten (starts with %#x)", (size_t)at, d[at]);
        g_assert_cmpint(d[at + 1], ==, (guint8)next[w]);
        next[w]++;
        for (int k = 2; k < REC; k++)
            if (d[at + k] != (guint8)(w * 40 + 7))
                g_error("record at %zu: byte %d is overwritten", (size_t)at, k);
    }
    for (int i = 0; i < APPENDERS; i++)
        g_assert_cmpint(next[i], ==, RECORDS);
    ctu_free(s);
}

#define SPAN (256u << 10)
#define WCHUNK 12288

typedef struct {
    Core *c;
    uint64_t ino;
    gint *stop;
    guint writes;
} RaceWriter;

/* The byte a write of generation `gen` puts at `off` (never zero). */
static guint8 byte_of(uint32_t gen, uint64_t off)
{
    return (guint8)(1 + (gen * 31 + off / 512) % 251);
}

static gpointer race_writer(gpointer data)
{
    RaceWriter *w = data;
    uint64_t fh;
    GError *e = NULL;
    g_assert_cmpint(core_open(w->c, w->ino, O_RDWR, &fh, &e), ==, 0);
    guint8 *buf = g_malloc(WCHUNK);
    GRand *r = g_rand_new_with_seed(99);
    for (uint32_t gen = 1; !g_atomic_int_get(w->stop); gen++) {
        uint64_t off = (uint64_t)g_rand_int_range(r, 0, SPAN - WCHUNK);
        for (int k = 0; k < WCHUNK; k++)
            buf[k] = byte_of(gen % 7, off + (uint64_t)k);
        ssize_t n = core_write(w->c, w->ino, fh, buf, WCHUNK, (off_t)off, &e);
        if (n != WCHUNK)
            g_error("write at %" G_GUINT64_FORMAT ": %s", off, e ? e->message : "short write");
        w->writes++;
    }
    g_rand_free(r);
    g_free(buf);
    core_release(w->c, w->ino, fh, NULL);
    return NULL;
}

static void test_write_races_truncate(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    const CoreCred cred = { 0, 0 };
    struct stat st;
    uint64_t fh;
    GError *e = NULL;
    g_assert_cmpint(core_create(s->core, CORE_ROOT_INO, "t", 0644, O_RDWR | O_CREAT, &cred, &st,
                                &fh, &e), ==, 0);
    gint stop = 0;
    RaceWriter w = { .c = s->core, .ino = st.st_ino, .stop = &stop };
    GThread *th = g_thread_new("writer", race_writer, &w);
    GRand *r = g_rand_new_with_seed(7);
    g_autofree guint8 *back = g_malloc(SPAN + WCHUNK);
    for (int i = 0; i < 300; i++) {
        struct stat a = { .st_size = g_rand_int_range(r, 0, SPAN) };
        g_assert_cmpint(core_setattr(s->core, st.st_ino, &a, CORE_SET_SIZE, NULL, &e), ==, 0);
        /* Whatever is there now reads back: no EIO. */
        ssize_t n = core_read(s->core, st.st_ino, fh, back, SPAN + WCHUNK, 0, &e);
        if (n < 0)
            g_error("read during the race: %s", e ? e->message : "?");
        g_usleep(200);
    }
    g_atomic_int_set(&stop, 1);
    g_thread_join(th);
    g_rand_free(r);
    g_assert_cmpuint(w.writes, >, 0);
    core_release(s->core, st.st_ino, fh, NULL);
    for (int pass = 0; pass < 2; pass++) {
        int err = 0;
        g_autoptr(GBytes) b = ctu_read(s->core, CORE_ROOT_INO, "/t", &err);
        if (!b)
            g_error("final read: %s", g_strerror(-err));
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        for (gsize i = 0; i < len; i++) {
            bool ok = d[i] == 0;
            for (uint32_t g = 0; g < 7 && !ok; g++)
                ok = d[i] == byte_of(g, i);
            if (!ok)
                g_error("byte %zu (%#x) was never written there", (size_t)i, d[i]);
        }
        /* Again from tape. */
        g_assert_cmpint(core_sync(s->core, &e), ==, 0);
        g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    }
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/race/concurrent-appends", test_concurrent_appends);
    g_test_add_func("/core/race/write-races-truncate", test_write_races_truncate);
    return g_test_run();
}

/* test_cache_concurrency.c — many threads on the same objects: writers
 * read-modify-writing interleaved stripes of shared blocks, writers of
 * whole stamped blocks, readers checking blocks are never torn, and an
 * owner thread flushing dirty slices to a "tape" (memory) and marking them
 * clean while reclaim evicts under a small size limit. At the end every
 * byte, read back from the tape through fills, equals each writer's own
 * record: no lost writes, no torn blocks, no block cleaned that was
 * written after its flush was taken.
 *
 * Locks: Tape.lock guards the tape bytes; each writer's model is its own;
 * `stop` is atomic. */
#include "cache_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define BS 4096
#define OBJ_STRIPES 1
#define OBJ_STAMPS 2
#define NBLOCKS1 64        /* object 1 */
#define NBLOCKS2 16        /* object 2 */
#define STRIPE 512         /* bytes; stripe s belongs to writer s % NW */
#define NW 4               /* stripe writers */

typedef struct {
    GMutex lock;
    uint8_t *bytes[3];     /* by object id */
    uint64_t size[3];
} Tape;

typedef struct {
    Cache *c;
    Tape tape;
    gint stop;
    gint ops;              /* per writer */
    uint8_t *model;        /* object 1 as the writers wrote it */
    gint flushes;
} World;

static int tape_fill(void *owner, uint64_t id, uint64_t off, void *buf,
                     size_t len)
{
    World *w = owner;
    g_assert_true(id == OBJ_STRIPES || id == OBJ_STAMPS);
    g_assert_cmpuint(off + len, <=, w->tape.size[id]);
    g_mutex_lock(&w->tape.lock);
    memcpy(buf, w->tape.bytes[id] + off, len);
    g_mutex_unlock(&w->tape.lock);
    return 0;
}

/* The owner's flush of one object: slices -> tape -> mark clean. */
static void flush_object(World *w, uint64_t id)
{
    uint64_t seq = 0;
    GError *e = NULL;
    g_autoptr(GArray) sl = cache_dirty_slices(w->c, id, 0, 0, &seq, &e);
    g_assert_no_error(e);
    for (guint i = 0; i < sl->len; i++) {
        CacheSlice *s = &g_array_index(sl, CacheSlice, i);
        g_autofree uint8_t *tmp = g_malloc(s->length);
        int fd = open(s->path, O_RDONLY);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pread(fd, tmp, s->length, (off_t)s->offset), ==,
                        (gssize)s->length);
        close(fd);
        g_mutex_lock(&w->tape.lock);
        memcpy(w->tape.bytes[id] + s->offset, tmp, s->length);
        g_mutex_unlock(&w->tape.lock);
    }
    for (guint i = 0; i < sl->len; i++) {
        CacheSlice *s = &g_array_index(sl, CacheSlice, i);
        g_assert_cmpint(cache_mark_clean(w->c, id, s->offset, s->length, seq,
                                         NULL), ==, 0);
    }
    g_atomic_int_inc(&w->flushes);
}

static gpointer flusher(gpointer data)
{
    World *w = data;
    unsigned n = 0;
    while (!g_atomic_int_get(&w->stop)) {
        CacheStats st;
        cache_stats(w->c, &st);
        g_assert_cmpuint(st.dirty_bytes, <=, st.size_limit);
        flush_object(w, OBJ_STRIPES);
        flush_object(w, OBJ_STAMPS);
        if (++n % 16 == 0)
            g_assert_cmpint(cache_drop_clean(w->c, 0, NULL), ==, 0);
        g_usleep(500);
    }
    return NULL;
}

typedef struct {
    World *w;
    int t;
} Worker;

static gpointer stripe_writer(gpointer data)
{
    Worker *k = data;
    World *w = k->w;
    GRand *r = g_rand_new_with_seed(1000 + (guint32)k->t);
    uint8_t buf[STRIPE];
    uint64_t nstripes = NBLOCKS1 * BS / STRIPE;
    for (int op = 0; op < w->ops; op++) {
        /* A random piece of one of my stripes. */
        uint64_t s = (uint64_t)g_rand_int_range(r, 0, (gint32)(nstripes / NW))
                     * NW + (uint64_t)k->t;
        uint32_t a = (uint32_t)g_rand_int_range(r, 0, STRIPE);
        uint32_t b = (uint32_t)g_rand_int_range(r, (gint32)a, STRIPE) + 1;
        uint64_t off = s * STRIPE + a;
        for (uint32_t i = 0; i < b - a; i++)
            buf[i] = (uint8_t)g_rand_int(r);
        GError *e = NULL;
        gssize n = cache_write(w->c, OBJ_STRIPES, off, buf, b - a, &e);
        g_assert_no_error(e);
        g_assert_cmpint(n, ==, b - a);
        memcpy(w->model + off, buf, b - a); /* only I write these bytes */
        if (op % 7 == 0) {
            /* My bytes read back as I wrote them, whatever the others do. */
            uint8_t back[STRIPE];
            g_assert_cmpint(cache_read(w->c, OBJ_STRIPES, s * STRIPE, back,
                                       STRIPE, NULL), ==, STRIPE);
            g_assert_cmpmem(back, STRIPE, w->model + s * STRIPE, STRIPE);
        }
    }
    g_rand_free(r);
    return NULL;
}

static void stamp_block(uint64_t *p, uint64_t stamp)
{
    for (size_t i = 0; i < BS / 8; i++)
        p[i] = stamp;
}

static void check_block_whole(const uint64_t *p)
{
    for (size_t i = 1; i < BS / 8; i++)
        if (p[i] != p[0])
            g_error("torn block: word %zu is %016" G_GINT64_MODIFIER
                    "x, word 0 is %016" G_GINT64_MODIFIER "x", i, p[i], p[0]);
}

static gpointer stamp_writer(gpointer data)
{
    Worker *k = data;
    World *w = k->w;
    GRand *r = g_rand_new_with_seed(2000 + (guint32)k->t);
    g_autofree uint64_t *buf = g_malloc(3 * BS);
    for (int op = 0; op < w->ops; op++) {
        uint64_t n = (uint64_t)g_rand_int_range(r, 1, 4);
        uint64_t first = (uint64_t)g_rand_int_range(r, 0,
                                                    (gint32)(NBLOCKS2 - n + 1));
        for (uint64_t i = 0; i < n; i++)
            stamp_block(buf + i * BS / 8,
                        ((uint64_t)(k->t + 1) << 32) | (uint64_t)op);
        g_assert_cmpint(cache_write(w->c, OBJ_STAMPS, first * BS, buf, n * BS,
                                    NULL), ==, (gssize)(n * BS));
    }
    g_rand_free(r);
    return NULL;
}

static gpointer stamp_reader(gpointer data)
{
    Worker *k = data;
    World *w = k->w;
    GRand *r = g_rand_new_with_seed(3000 + (guint32)k->t);
    g_autofree uint64_t *buf = g_malloc(NBLOCKS2 * BS);
    while (!g_atomic_int_get(&w->stop)) {
        uint64_t n = (uint64_t)g_rand_int_range(r, 1, NBLOCKS2 + 1);
        uint64_t first = (uint64_t)g_rand_int_range(r, 0,
                                                    (gint32)(NBLOCKS2 - n + 1));
        g_assert_cmpint(cache_read(w->c, OBJ_STAMPS, first * BS, buf, n * BS,
                                   NULL), ==, (gssize)(n * BS));
        for (uint64_t i = 0; i < n; i++)
            check_block_whole(buf + i * BS / 8);
    }
    g_rand_free(r);
    return NULL;
}

static void test_concurrency(gconstpointer data)
{
    g_autofree char *dir = ct_tmpdir();
    World w = { 0 };
    g_mutex_init(&w.tape.lock);
    w.ops = GPOINTER_TO_INT(data);
    w.tape.size[OBJ_STRIPES] = NBLOCKS1 * BS;
    w.tape.size[OBJ_STAMPS] = NBLOCKS2 * BS;
    w.tape.bytes[OBJ_STRIPES] = g_malloc(NBLOCKS1 * BS);
    w.tape.bytes[OBJ_STAMPS] = g_malloc0(NBLOCKS2 * BS);
    ct_fill_pattern(OBJ_STRIPES, 0, w.tape.bytes[OBJ_STRIPES], NBLOCKS1 * BS);
    w.model = g_memdup2(w.tape.bytes[OBJ_STRIPES], NBLOCKS1 * BS);

    CacheConfig cfg;
    ct_config(&cfg, dir);
    cfg.fill = tape_fill;
    cfg.owner = &w;
    cfg.size_limit = 48 * BS;   /* well under the 80 blocks in use */
    cfg.hi_pct = 90;
    cfg.lo_pct = 60;
    cfg.dirty_wait_ms = 60000;  /* the flusher always drains */
    cfg.max_open_files = 1;     /* object files close and reopen */
    Cache *c = w.c = ct_open(&cfg);
    g_assert_cmpint(cache_object_create(c, OBJ_STRIPES, NULL), ==, 0);
    g_assert_cmpint(cache_object_create(c, OBJ_STAMPS, NULL), ==, 0);

    GThread *fl = g_thread_new("flusher", flusher, &w);
    Worker wk[NW + 4];
    GThread *th[NW + 4];
    for (int t = 0; t < NW; t++) {
        wk[t] = (Worker){ &w, t };
        th[t] = g_thread_new("stripes", stripe_writer, &wk[t]);
    }
    for (int t = NW; t < NW + 2; t++) {
        wk[t] = (Worker){ &w, t };
        th[t] = g_thread_new("stamps", stamp_writer, &wk[t]);
    }
    for (int t = NW + 2; t < NW + 4; t++) {
        wk[t] = (Worker){ &w, t };
        th[t] = g_thread_new("reader", stamp_reader, &wk[t]);
    }
    for (int t = 0; t < NW + 2; t++)
        g_thread_join(th[t]);
    g_atomic_int_set(&w.stop, 1);
    g_thread_join(fl);
    for (int t = NW + 2; t < NW + 4; t++)
        g_thread_join(th[t]);
    g_assert_cmpint(g_atomic_int_get(&w.flushes), >, 2);

    /* Final flush, forget every clean block, read all back via the tape. */
    flush_object(&w, OBJ_STRIPES);
    flush_object(&w, OBJ_STAMPS);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.dirty_bytes, ==, 0);
    g_assert_cmpuint(st.evictions, >, 0);
    g_assert_cmpint(cache_drop_clean(c, 0, NULL), ==, 0);
    cache_stats(c, &st);
    g_assert_cmpuint(st.clean_bytes, ==, 0);
    g_autofree uint8_t *back = g_malloc(NBLOCKS1 * BS);
    g_assert_cmpint(cache_read(c, OBJ_STRIPES, 0, back, NBLOCKS1 * BS, NULL),
                    ==, NBLOCKS1 * BS);
    g_assert_cmpmem(back, NBLOCKS1 * BS, w.model, NBLOCKS1 * BS);
    g_assert_cmpmem(w.tape.bytes[OBJ_STRIPES], NBLOCKS1 * BS, w.model,
                    NBLOCKS1 * BS);
    g_assert_cmpint(cache_read(c, OBJ_STAMPS, 0, back, NBLOCKS2 * BS, NULL),
                    ==, NBLOCKS2 * BS);
    for (uint64_t i = 0; i < NBLOCKS2; i++) {
        const uint64_t *p = (const uint64_t *)(back + i * BS);
        check_block_whole(p);
        g_assert_cmpuint(p[0] >> 32, >=, NW + 1); /* written by a writer */
    }
    cache_close(c);
    ct_rmtree(dir);
    g_free(w.tape.bytes[OBJ_STRIPES]);
    g_free(w.tape.bytes[OBJ_STAMPS]);
    g_free(w.model);
    g_mutex_clear(&w.tape.lock);
}

/* Readers that never pause on one block must not starve its writer. */
typedef struct {
    Cache *c;
    gint stop;
    gint reads;
} Hot;

static gpointer hot_reader(gpointer data)
{
    Hot *h = data;
    uint64_t buf[BS / 8];
    while (!g_atomic_int_get(&h->stop)) {
        g_assert_cmpint(cache_read(h->c, 1, 0, buf, BS, NULL), ==, BS);
        check_block_whole(buf);
        g_atomic_int_inc(&h->reads);
    }
    return NULL;
}

static void test_writer_not_starved(void)
{
    g_autofree char *dir = ct_tmpdir();
    CacheConfig cfg;
    ct_config(&cfg, dir);
    Hot h = { 0 };
    Cache *c = h.c = ct_open(&cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    uint64_t buf[BS / 8];
    stamp_block(buf, 0);
    g_assert_cmpint(cache_write(c, 1, 0, buf, BS, NULL), ==, BS);
    GThread *th[4];
    for (int i = 0; i < 4; i++)
        th[i] = g_thread_new("hot", hot_reader, &h);
    /* The readers are busy before the writer starts (else on a loaded
     * machine the writes could all be done before any reader ran). */
    while (g_atomic_int_get(&h.reads) < 8)
        g_usleep(100);
    for (uint64_t v = 1; v <= 500; v++) {
        stamp_block(buf, v);
        g_assert_cmpint(cache_write(c, 1, 0, buf, BS, NULL), ==, BS);
    }
    g_atomic_int_set(&h.stop, 1);
    for (int i = 0; i < 4; i++)
        g_thread_join(th[i]);
    g_assert_cmpint(g_atomic_int_get(&h.reads), >, 0);
    g_assert_cmpint(cache_read(c, 1, 0, buf, BS, NULL), ==, BS);
    check_block_whole(buf);
    g_assert_cmpuint(buf[0], ==, 500);
    cache_close(c);
    ct_rmtree(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/cache/concurrency/writers-readers-flusher",
                         GINT_TO_POINTER(20000), test_concurrency);
    g_test_add_func("/cache/concurrency/writer-not-starved",
                    test_writer_not_starved);
    return g_test_run();
}

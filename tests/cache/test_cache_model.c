/* test_cache_model.c — randomized model test. Thousands of random writes,
 * reads, truncates, flushes, fsyncs, drops, reopens and deletes with
 * unaligned offsets and sizes on a few objects, under a small size limit
 * (eviction and dirty-space pressure), against a plain in-memory
 * reference. The owner's "tape" is memory too: fills serve it, flushes
 * copy dirty slices from the cache files into it (as the taper's slice
 * reader does) before marking them clean. Every read must equal the
 * reference; every flushed slice must equal it too.
 *
 * Single-threaded; the need_space callback flushes from inside a write.
 */
#include "cache_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define NOBJ 3
#define OBJMAX (96 * 4096)

typedef struct {
    guint32 seed;
    uint32_t bs;
    bool cache_on_read;
    int ops;
} Params;

typedef struct {
    Cache *c;
    CacheConfig cfg;
    char *dir;
    uint8_t *ref[NOBJ + 1];
    uint8_t *tape[NOBJ + 1];
    GRand *r;
    unsigned need_space_calls, flushes;
} Model;

static int model_fill(void *owner, uint64_t id, uint64_t off, void *buf,
                      size_t len)
{
    Model *m = owner;
    g_assert_true(id >= 1 && id <= NOBJ);
    g_assert_cmpuint(off % len, ==, 0);
    g_assert_cmpuint(off + len, <=, OBJMAX);
    memcpy(buf, m->tape[id] + off, len);
    return 0;
}

/* The owner's flush of [a, b) (block-aligned, or 0/0 for all). */
static void model_flush(Model *m, uint64_t id, uint64_t a, uint64_t b)
{
    uint64_t seq = 0;
    GError *e = NULL;
    g_autoptr(GArray) sl = cache_dirty_slices(m->c, id, a, b - a, &seq, &e);
    g_assert_no_error(e);
    for (guint i = 0; i < sl->len; i++) {
        CacheSlice *s = &g_array_index(sl, CacheSlice, i);
        g_assert_cmpuint(s->offset + s->length, <=, OBJMAX);
        g_assert_true(b == a || (s->offset >= a && s->offset + s->length <= b));
        int fd = open(s->path, O_RDONLY);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pread(fd, m->tape[id] + s->offset, s->length,
                              (off_t)s->offset), ==, (gssize)s->length);
        close(fd);
        /* Dirty bytes in the cache file are the reference's bytes. */
        g_assert_cmpmem(m->tape[id] + s->offset, s->length,
                        m->ref[id] + s->offset, s->length);
    }
    g_assert_cmpint(cache_mark_clean(m->c, id, a, b - a, seq, &e), ==, 0);
    g_assert_no_error(e);
    m->flushes++;
}

static void model_need_space(void *owner)
{
    Model *m = owner;
    m->need_space_calls++;
    for (uint64_t id = 1; id <= NOBJ; id++)
        model_flush(m, id, 0, 0);
}

static void check_read(Model *m, uint64_t id, uint64_t off, uint64_t len)
{
    g_autofree uint8_t *buf = g_malloc(len + 1);
    GError *e = NULL;
    gssize n = cache_read(m->c, id, off, buf, len, &e);
    g_assert_no_error(e);
    g_assert_cmpint(n, ==, (gssize)len);
    if (memcmp(buf, m->ref[id] + off, len) != 0) {
        uint64_t i = 0;
        while (buf[i] == m->ref[id][off + i])
            i++;
        g_error("object %" G_GUINT64_FORMAT " byte %" G_GUINT64_FORMAT
                " reads %u, reference %u", id, off + i, buf[i],
                m->ref[id][off + i]);
    }
}

static void check_all(Model *m)
{
    for (uint64_t id = 1; id <= NOBJ; id++)
        check_read(m, id, 0, OBJMAX);
}

static void check_accounting(Model *m)
{
    CacheStats st;
    cache_stats(m->c, &st);
    uint64_t dsum = 0, csum = 0;
    for (uint64_t id = 1; id <= NOBJ; id++) {
        uint64_t d, cl;
        g_assert_cmpint(cache_object_usage(m->c, id, &d, &cl, NULL), ==, 0);
        dsum += d;
        csum += cl;
    }
    g_assert_cmpuint(st.dirty_bytes, ==, dsum);
    g_assert_cmpuint(st.clean_bytes, ==, csum);
    g_assert_cmpuint(st.dirty_bytes, <=, m->cfg.size_limit);
}

/* Mostly small, often unaligned; sometimes several blocks. */
static uint64_t rand_len(Model *m, uint64_t off)
{
    uint64_t max = OBJMAX - off;
    uint64_t len;
    switch (g_rand_int_range(m->r, 0, 4)) {
    case 0: len = (uint64_t)g_rand_int_range(m->r, 1, 64); break;
    case 1: len = (uint64_t)g_rand_int_range(m->r, 1, (gint32)m->cfg.block_size
                                                          + 1); break;
    case 2: len = m->cfg.block_size * (uint64_t)g_rand_int_range(m->r, 1, 4);
            break;
    default: len = (uint64_t)g_rand_int_range(m->r, 1,
                                              4 * (gint32)m->cfg.block_size);
    }
    return MAX(1, MIN(len, max));
}

static uint64_t rand_off(Model *m)
{
    uint64_t off = (uint64_t)g_rand_int_range(m->r, 0, OBJMAX);
    if (g_rand_int_range(m->r, 0, 3) == 0)
        off -= off % m->cfg.block_size; /* aligned now and then */
    return off;
}

static void op_write(Model *m)
{
    uint64_t id = (uint64_t)g_rand_int_range(m->r, 1, NOBJ + 1);
    uint64_t off = rand_off(m), len = rand_len(m, off);
    g_autofree uint8_t *buf = g_malloc(len);
    uint8_t v = (uint8_t)g_rand_int(m->r);
    for (uint64_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(v + i * 7);
    GError *e = NULL;
    g_assert_cmpint(cache_write(m->c, id, off, buf, len, &e), ==,
                    (gssize)len);
    g_assert_no_error(e);
    memcpy(m->ref[id] + off, buf, len);
}

static void op_truncate(Model *m)
{
    uint64_t id = (uint64_t)g_rand_int_range(m->r, 1, NOBJ + 1);
    uint64_t size = (uint64_t)g_rand_int_range(m->r, 0, OBJMAX + 1);
    g_assert_cmpint(cache_truncate(m->c, id, size, NULL), ==, 0);
    /* The owner's view: nothing past the size, on tape either. */
    memset(m->ref[id] + size, 0, OBJMAX - size);
    memset(m->tape[id] + size, 0, OBJMAX - size);
}

static void op_flush(Model *m)
{
    uint64_t id = (uint64_t)g_rand_int_range(m->r, 1, NOBJ + 1);
    if (g_rand_boolean(m->r)) {
        model_flush(m, id, 0, 0);
        return;
    }
    uint64_t nb = OBJMAX / m->cfg.block_size;
    uint64_t a = (uint64_t)g_rand_int_range(m->r, 0, (gint32)nb);
    uint64_t b = (uint64_t)g_rand_int_range(m->r, (gint32)a + 1,
                                            (gint32)nb + 1);
    model_flush(m, id, a * m->cfg.block_size, b * m->cfg.block_size);
}

static void reopen(Model *m)
{
    cache_close(m->c);
    m->c = ct_open(&m->cfg);
}

static void run_model(gconstpointer data)
{
    const Params *p = data;
    Model m = { 0 };
    m.dir = ct_tmpdir();
    m.r = g_rand_new_with_seed(p->seed);
    ct_config(&m.cfg, m.dir);
    m.cfg.block_size = p->bs;
    m.cfg.cache_on_read = p->cache_on_read;
    m.cfg.fill = model_fill;
    m.cfg.need_space = model_need_space;
    m.cfg.owner = &m;
    m.cfg.size_limit = (uint64_t)OBJMAX / 2; /* 1/6 of all objects */
    m.cfg.hi_pct = 80;
    m.cfg.lo_pct = 50;
    m.cfg.dirty_wait_ms = 10000;
    m.cfg.max_open_files = 2; /* fewer than the objects: files reopen */
    m.c = ct_open(&m.cfg);
    for (uint64_t id = 1; id <= NOBJ; id++) {
        g_assert_cmpint(cache_object_create(m.c, id, NULL), ==, 0);
        m.tape[id] = g_malloc(OBJMAX);
        ct_fill_pattern(id, 0, m.tape[id], OBJMAX);
        m.ref[id] = g_memdup2(m.tape[id], OBJMAX);
    }
    for (int op = 0; op < p->ops; op++) {
        int k = g_rand_int_range(m.r, 0, 1000);
        if (k < 420) {
            op_write(&m);
        } else if (k < 750) {
            uint64_t id = (uint64_t)g_rand_int_range(m.r, 1, NOBJ + 1);
            uint64_t off = rand_off(&m);
            check_read(&m, id, off, rand_len(&m, off));
        } else if (k < 800) {
            op_truncate(&m);
        } else if (k < 900) {
            op_flush(&m);
        } else if (k < 930) {
            uint64_t id = (uint64_t)g_rand_int_range(m.r, 1, NOBJ + 1);
            g_assert_cmpint(cache_fsync(m.c, id, NULL), ==, 0);
        } else if (k < 960) {
            uint64_t id = (uint64_t)g_rand_int_range(m.r, 0, NOBJ + 1);
            g_assert_cmpint(cache_drop_clean(m.c, id, NULL), ==, 0);
        } else if (k < 975) {
            cache_set_mode(m.c, g_rand_boolean(m.r) ? CACHE_UNSAFE
                                                    : CACHE_WRITEBACK);
        } else if (k < 985) {
            reopen(&m); /* clean blocks forgotten, dirty ones kept */
        } else if (k < 990) {
            uint64_t id = (uint64_t)g_rand_int_range(m.r, 1, NOBJ + 1);
            g_assert_cmpint(cache_object_delete(m.c, id, NULL), ==, 0);
            g_assert_cmpint(cache_object_create(m.c, id, NULL), ==, 0);
            memset(m.ref[id], 0, OBJMAX);
            memset(m.tape[id], 0, OBJMAX);
        } else {
            check_accounting(&m);
        }
    }
    check_accounting(&m);
    check_all(&m);
    CacheStats st;
    cache_stats(m.c, &st);
    g_assert_cmpuint(st.evictions, >, 0);
    g_assert_cmpuint(st.fills, >, 0);
    g_assert_cmpuint(m.need_space_calls, >, 0);
    /* Everything to tape, every clean block dropped: reads come from the
     * tape and still equal the reference; after a reopen too. */
    for (uint64_t id = 1; id <= NOBJ; id++)
        model_flush(&m, id, 0, 0);
    g_assert_cmpint(cache_drop_clean(m.c, 0, NULL), ==, 0);
    cache_stats(m.c, &st);
    g_assert_cmpuint(st.dirty_bytes, ==, 0);
    g_assert_cmpuint(st.clean_bytes, ==, 0);
    for (uint64_t id = 1; id <= NOBJ; id++)
        g_assert_cmpmem(m.tape[id], OBJMAX, m.ref[id], OBJMAX);
    check_all(&m);
    reopen(&m);
    check_all(&m);
    g_test_message("seed %u: %u flushes, %u need_space calls, %" G_GUINT64_FORMAT
                   " evictions, %" G_GUINT64_FORMAT " fills", p->seed,
                   m.flushes, m.need_space_calls, st.evictions, st.fills);
    cache_close(m.c);
    for (uint64_t id = 1; id <= NOBJ; id++) {
        g_free(m.ref[id]);
        g_free(m.tape[id]);
    }
    g_rand_free(m.r);
    ct_rmtree(m.dir);
    g_free(m.dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    static const Params params[] = {
        { 1, 4096, true, 5000 },
        { 2, 4096, true, 5000 },
        { 3, 4096, false, 5000 },
        { 4, 8192, true, 5000 },
        { 5, 16384, false, 3000 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(params); i++) {
        g_autofree char *name = g_strdup_printf(
            "/cache/model/seed-%u-bs-%u-cache-on-read-%s", params[i].seed,
            params[i].bs, params[i].cache_on_read ? "on" : "off");
        g_test_add_data_func(name, &params[i], run_model);
    }
    return g_test_run();
}

/* test_cache_memory.c — what objects cost: block-table RAM in proportion
 * to the blocks used (many small objects stay cheap, freed tables go back
 * to zero), dirty walks over huge sparse objects, and objects without
 * dirty blocks not being loaded at open. Single-threaded; no locks. */
#include "cache_test_util.h"

#include <errno.h>
#include <string.h>

#define BS 4096

typedef struct {
    char *dir;
    CacheConfig cfg;
} Fixture;

static void fx_setup(Fixture *f, gconstpointer data)
{
    (void)data;
    f->dir = ct_tmpdir();
    ct_config(&f->cfg, f->dir);
}

static void fx_teardown(Fixture *f, gconstpointer data)
{
    (void)data;
    ct_rmtree(f->dir);
    g_free(f->dir);
}

static uint64_t table_bytes(Cache *c)
{
    CacheStats st;
    cache_stats(c, &st);
    return st.table_bytes;
}

/* 20,000 objects of one small write each: the block tables cost a small
 * bound per block used (far under the 57 KiB a 1024-block table took),
 * and nothing once the blocks are clean and evicted. */
static void test_small_objects(Fixture *f, gconstpointer data)
{
    (void)data;
    enum { N = 20000 };
    const uint64_t per_block = 2048;
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpuint(table_bytes(c), ==, 0);
    char buf[100];
    memset(buf, 0x5A, sizeof buf);
    for (uint64_t id = 1; id <= N; id++) {
        g_assert_cmpint(cache_object_create(c, id, NULL), ==, 0);
        g_assert_cmpint(cache_write(c, id, 0, buf, sizeof buf, NULL), ==,
                        sizeof buf);
    }
    uint64_t used = table_bytes(c);
    g_assert_cmpuint(used, >, 0);
    g_assert_cmpuint(used, <=, N * per_block);
    /* Clean and evicted: every table goes. */
    for (uint64_t id = 1; id <= N; id++) {
        uint64_t seq = 0;
        g_autoptr(GArray) sl = cache_dirty_slices(c, id, 0, 0, &seq, NULL);
        g_assert_cmpuint(sl->len, ==, 1);
        g_assert_cmpint(cache_mark_clean(c, id, 0, 0, seq, NULL), ==, 0);
    }
    g_assert_cmpint(cache_drop_clean(c, 0, NULL), ==, 0);
    g_assert_cmpuint(table_bytes(c), ==, 0);
    /* Still readable (filled again) and the objects still exist. */
    char back[100];
    g_assert_true(cache_object_exists(c, N));
    g_assert_cmpint(cache_read(c, N, 0, back, sizeof back, NULL), ==,
                    sizeof back);
    for (size_t i = 0; i < sizeof back; i++)
        g_assert_cmpuint((uint8_t)back[i], ==, ct_pattern(N, i));
    cache_close(c);
}

/* A huge sparse object: blocks far apart cost one small chunk each, and
 * listing, saving and cleaning its dirty blocks sees exactly them. */
static void test_sparse_dirty_walk(Fixture *f, gconstpointer data)
{
    (void)data;
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 7, NULL), ==, 0);
    char b[BS];
    memset(b, 0x77, sizeof b);
    const uint64_t stride = (uint64_t)1 << 32; /* 4 GiB apart */
    for (uint64_t k = 0; k < 64; k++)
        g_assert_cmpint(cache_write(c, 7, k * stride, b, BS, NULL), ==, BS);
    g_assert_cmpuint(table_bytes(c), <=, 64 * 2048);
    g_assert_cmpint(cache_fsync(c, 7, NULL), ==, 0);
    uint64_t seq = 0;
    g_autoptr(GArray) sl = cache_dirty_slices(c, 7, 0, 0, &seq, NULL);
    g_assert_cmpuint(sl->len, ==, 64);
    for (guint k = 0; k < sl->len; k++) {
        CacheSlice *s = &g_array_index(sl, CacheSlice, k);
        g_assert_cmpuint(s->offset, ==, k * stride);
        g_assert_cmpuint(s->length, ==, BS);
    }
    /* Clean the even ones; the state saved lists only the odd ones. */
    for (uint64_t k = 0; k < 64; k += 2)
        g_assert_cmpint(cache_mark_clean(c, 7, k * stride, BS, seq, NULL),
                        ==, 0);
    g_assert_cmpint(cache_drop_clean(c, 7, NULL), ==, 0);
    g_assert_cmpint(cache_fsync(c, 7, NULL), ==, 0);
    cache_close(c);
    c = ct_open(&f->cfg);
    for (uint64_t k = 0; k < 64; k++)
        g_assert_cmpint(cache_block_state(c, 7, k * stride, NULL), ==,
                        k % 2 ? CACHE_BLOCK_DIRTY : CACHE_BLOCK_ABSENT);
    g_autoptr(GArray) sl2 = cache_dirty_slices(c, 7, 0, 0, &seq, NULL);
    g_assert_cmpuint(sl2->len, ==, 32);
    cache_close(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
    g_test_add(name, Fixture, NULL, fx_setup, fn, fx_teardown)
    ADD("/cache/memory/small-objects", test_small_objects);
    ADD("/cache/memory/sparse-dirty-walk", test_sparse_dirty_walk);
    return g_test_run();
}

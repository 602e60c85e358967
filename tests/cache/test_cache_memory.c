/* test_cache_memory.c — what objects cost: block-table RAM in proportion
 * to the blocks used (many small objects stay cheap, freed tables go back
 * to zero), dirty walks over huge sparse objects, and objects without
 * dirty blocks not being loaded at open. Single-threaded; no locks. */
#include "cache_test_util.h"

#include <errno.h>
#include <string.h>

#define BS 4096

typedef CtFixture Fixture;

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

static uint64_t objects_loaded(Cache *c)
{
    CacheStats st;
    cache_stats(c, &st);
    return st.objects;
}

/* Objects whose blocks are all gone close their files; at open only
 * objects with dirty blocks are loaded; the others still exist, are
 * loaded on first use with nothing cached, and can be deleted. */
static void test_idle_objects(Fixture *f, gconstpointer data)
{
    (void)data;
    enum { N = 40 };
    Cache *c = ct_open(&f->cfg);
    char b[BS];
    for (uint64_t id = 1; id <= N; id++) {
        memset(b, (int)id, sizeof b);
        g_assert_cmpint(cache_object_create(c, id, NULL), ==, 0);
        g_assert_cmpint(cache_write(c, id, 0, b, BS, NULL), ==, BS);
        g_assert_cmpint(cache_fsync(c, id, NULL), ==, 0);
    }
    g_assert_cmpint(ct_open_data_files(), >=, N);
    /* The odd ones are flushed, cleaned and evicted. */
    for (uint64_t id = 1; id <= N; id += 2) {
        uint64_t seq = 0;
        g_autoptr(GArray) sl = cache_dirty_slices(c, id, 0, 0, &seq, NULL);
        g_assert_cmpint(cache_mark_clean(c, id, 0, 0, seq, NULL), ==, 0);
        g_assert_cmpint(cache_drop_clean(c, id, NULL), ==, 0);
    }
    g_assert_cmpint(ct_open_data_files(), ==, N / 2);
    g_assert_true(cache_object_exists(c, 1));
    cache_close(c);

    c = ct_open(&f->cfg);
    g_assert_cmpuint(objects_loaded(c), ==, N / 2);
    g_autoptr(GArray) dirty = cache_dirty_objects(c);
    g_assert_cmpuint(dirty->len, ==, N / 2);
    g_autofree char *st1 = g_build_filename(f->dir, "0000000000000001.state",
                                            NULL);
    g_assert_false(g_file_test(st1, G_FILE_TEST_EXISTS));
    for (uint64_t id = 1; id <= N; id++)
        g_assert_true(cache_object_exists(c, id));
    g_assert_false(cache_object_exists(c, N + 1));
    /* Object 1: loaded on use, its old bytes forgotten (filled). */
    g_assert_cmpint(cache_block_state(c, 1, 0, NULL), ==,
                    CACHE_BLOCK_ABSENT);
    g_assert_cmpint(cache_read(c, 1, 0, b, BS, NULL), ==, BS);
    for (int i = 0; i < BS; i++)
        g_assert_cmpuint((uint8_t)b[i], ==, ct_pattern(1, i));
    /* Object 2 kept its dirty bytes. */
    g_assert_cmpint(cache_read(c, 2, 0, b, BS, NULL), ==, BS);
    for (int i = 0; i < BS; i++)
        g_assert_cmpuint((uint8_t)b[i], ==, 2);
    /* Object 3: written again, deleted; object 5 deleted unused. */
    g_assert_cmpint(cache_object_create(c, 3, NULL), ==, 0);
    g_assert_cmpint(cache_write(c, 3, 10, b, 10, NULL), ==, 10);
    g_assert_cmpint(cache_block_state(c, 3, 0, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_object_delete(c, 5, NULL), ==, 0);
    g_assert_false(cache_object_exists(c, 5));
    g_assert_cmpint(cache_object_delete(c, 5, NULL), ==, -ENOENT);
    g_assert_cmpint(cache_write(c, 5, 0, b, 10, NULL), ==, -ENOENT);
    cache_close(c);
    c = ct_open(&f->cfg);
    g_assert_cmpuint(objects_loaded(c), ==, N / 2 + 1);
    g_assert_false(cache_object_exists(c, 5));
    g_assert_true(cache_object_exists(c, 7));
    cache_close(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    CT_ADD("/cache/memory/small-objects", test_small_objects);
    CT_ADD("/cache/memory/sparse-dirty-walk", test_sparse_dirty_walk);
    CT_ADD("/cache/memory/idle-objects", test_idle_objects);
    return g_test_run();
}

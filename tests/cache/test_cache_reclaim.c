/* test_cache_reclaim.c — the size limit: reclaim thresholds, LRU order,
 * dirty blocks never evicted, real holes punched, writers waiting for the
 * owner to flush and failing with ENOSPC after the bounded wait.
 * The helper thread in the wait test shares only the Cache (thread-safe)
 * and an atomic counter. */
#include "cache_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define BS 4096

typedef CtFixture Fixture;

static void write_blocks(Cache *c, uint64_t id, uint64_t first, uint64_t n,
                         uint8_t v)
{
    g_autofree uint8_t *buf = g_malloc(n * BS);
    memset(buf, v, n * BS);
    g_assert_cmpint(cache_write(c, id, first * BS, buf, n * BS, NULL), ==,
                    (gssize)(n * BS));
}

static void read_blocks(Cache *c, uint64_t id, uint64_t first, uint64_t n)
{
    g_autofree uint8_t *buf = g_malloc(BS);
    for (uint64_t i = first; i < first + n; i++)
        g_assert_cmpint(cache_read(c, id, i * BS, buf, BS, NULL), ==, BS);
}

static void mark_all_clean(Cache *c, uint64_t id)
{
    uint64_t seq;
    g_autoptr(GArray) sl = cache_dirty_slices(c, id, 0, 0, &seq, NULL);
    g_assert_nonnull(sl);
    g_assert_cmpint(cache_mark_clean(c, id, 0, 0, seq, NULL), ==, 0);
}

static int state(Cache *c, uint64_t id, uint64_t block)
{
    return cache_block_state(c, id, block * BS, NULL);
}

static void test_thresholds_lru(Fixture *f, gconstpointer data)
{
    f->cfg.size_limit = 100 * BS;
    f->cfg.hi_pct = 90;
    f->cfg.lo_pct = 70;
    Cache *c = ct_open(&f->cfg);
    for (uint64_t id = 1; id <= 3; id++)
        g_assert_cmpint(cache_object_create(c, id, NULL), ==, 0);
    /* Object 1: 40 clean blocks, cleaned in order 0..39. */
    write_blocks(c, 1, 0, 40, 0x11);
    mark_all_clean(c, 1);
    /* Object 2: 20 dirty blocks. */
    write_blocks(c, 2, 0, 20, 0x22);
    /* Blocks 0..9 of object 1 are used again: most recent now. */
    read_blocks(c, 1, 0, 10);
    /* Object 3: 30 blocks filled by reads: 90 blocks, not above hi. */
    read_blocks(c, 3, 0, 30);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.evictions, ==, 0);
    g_assert_cmpuint(st.clean_bytes + st.dirty_bytes, ==, 90 * BS);
    /* One more block passes hi: evict down to lo (70 blocks), oldest
     * first: object 1's blocks 10..30. */
    read_blocks(c, 3, 30, 1);
    cache_stats(c, &st);
    g_assert_cmpuint(st.evictions, ==, 21);
    g_assert_cmpuint(st.clean_bytes + st.dirty_bytes, ==, 70 * BS);
    g_assert_cmpuint(st.dirty_bytes, ==, 20 * BS);
    for (uint64_t i = 0; i < 40; i++)
        g_assert_cmpint(state(c, 1, i), ==, i >= 10 && i <= 30
                                                ? CACHE_BLOCK_ABSENT
                                                : CACHE_BLOCK_CLEAN);
    for (uint64_t i = 0; i < 20; i++)
        g_assert_cmpint(state(c, 2, i), ==, CACHE_BLOCK_DIRTY);
    for (uint64_t i = 0; i < 31; i++)
        g_assert_cmpint(state(c, 3, i), ==, CACHE_BLOCK_CLEAN);
    /* The evicted blocks are real holes in the cache file. */
    g_autofree char *p1 = cache_object_path(c, 1);
    int fd = open(p1, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(lseek(fd, 10 * BS, SEEK_DATA), ==, 31 * BS);
    g_assert_cmpint(lseek(fd, 0, SEEK_HOLE), ==, 10 * BS);
    close(fd);
    /* An evicted block is filled from the owner again; dirty bytes and
     * kept clean bytes are intact. */
    gint before = f->fills;
    uint8_t b[BS];
    g_assert_cmpint(cache_read(c, 1, 15 * BS, b, BS, NULL), ==, BS);
    g_assert_cmpint(f->fills, ==, before + 1);
    g_assert_cmpint(b[5], ==, ct_pattern(1, 15 * BS + 5));
    g_assert_cmpint(cache_read(c, 1, 35 * BS, b, BS, NULL), ==, BS);
    g_assert_cmpint(b[5], ==, 0x11);
    g_assert_cmpint(cache_read(c, 2, 19 * BS, b, BS, NULL), ==, BS);
    g_assert_cmpint(b[BS - 1], ==, 0x22);
    g_assert_cmpint(f->fills, ==, before + 1);
    cache_close(c);
}

static void test_dirty_never_evicted(Fixture *f, gconstpointer data)
{
    f->cfg.size_limit = 64 * BS;
    f->cfg.hi_pct = 50;
    f->cfg.lo_pct = 10;
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    /* 40 dirty blocks: above hi, but nothing can be evicted. */
    write_blocks(c, 1, 0, 40, 0x33);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.evictions, ==, 0);
    g_assert_cmpuint(st.dirty_bytes, ==, 40 * BS);
    /* Reads filling more blocks are evicted again at once, never the
     * dirty ones. */
    read_blocks(c, 1, 40, 20);
    cache_stats(c, &st);
    g_assert_cmpuint(st.evictions, ==, 20);
    g_assert_cmpuint(st.dirty_bytes, ==, 40 * BS);
    for (uint64_t i = 0; i < 40; i++)
        g_assert_cmpint(state(c, 1, i), ==, CACHE_BLOCK_DIRTY);
    /* drop_clean leaves dirty blocks too. */
    mark_all_clean(c, 1);
    write_blocks(c, 1, 0, 5, 0x44);
    g_assert_cmpint(cache_drop_clean(c, 0, NULL), ==, 0);
    for (uint64_t i = 0; i < 40; i++)
        g_assert_cmpint(state(c, 1, i), ==, i < 5 ? CACHE_BLOCK_DIRTY
                                                  : CACHE_BLOCK_ABSENT);
    uint8_t b[BS];
    g_assert_cmpint(cache_read(c, 1, 4 * BS, b, BS, NULL), ==, BS);
    g_assert_cmpint(b[100], ==, 0x44);
    cache_close(c);
}

typedef struct {
    Cache *c;
    gint calls;
    gint flush_after_ms; /* < 0: never flush */
    GThread *helper;
} SpaceOwner;

static gpointer flush_later(gpointer data)
{
    SpaceOwner *so = data;
    g_usleep((gulong)so->flush_after_ms * 1000);
    mark_all_clean(so->c, 1);
    return NULL;
}

static void need_space(void *owner)
{
    SpaceOwner *so = owner;
    if (g_atomic_int_add(&so->calls, 1) == 0 && so->flush_after_ms >= 0)
        so->helper = g_thread_new("flusher", flush_later, so);
}

/* Opens a cache limited to 16 blocks whose need_space owner is `so`,
 * writers waiting up to wait_ms, and fills it with dirty blocks 0-15 of
 * object 1 (0x55). */
static Cache *open_full(Fixture *f, SpaceOwner *so, unsigned wait_ms)
{
    f->cfg.size_limit = 16 * BS;
    f->cfg.dirty_wait_ms = wait_ms;
    f->cfg.need_space = need_space;
    f->cfg.owner = so;
    Cache *c = so->c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    write_blocks(c, 1, 0, 16, 0x55);
    return c;
}

static void test_enospc_after_wait(Fixture *f, gconstpointer data)
{
    SpaceOwner so = { .flush_after_ms = -1 };
    Cache *c = open_full(f, &so, 300);
    g_assert_cmpint(g_atomic_int_get(&so.calls), ==, 0);
    /* Re-writing dirty blocks needs no new space. */
    write_blocks(c, 1, 3, 2, 0x66);

    uint8_t b[BS];
    memset(b, 0x77, sizeof b);
    GError *e = NULL;
    gint64 t0 = g_get_monotonic_time();
    g_assert_cmpint(cache_write(c, 1, 16 * BS, b, BS, &e), ==, -ENOSPC);
    gint64 waited_ms = (g_get_monotonic_time() - t0) / 1000;
    g_assert_error(e, CACHE_ERROR, ENOSPC);
    g_assert_nonnull(strstr(e->message, "cache full"));
    g_clear_error(&e);
    g_assert_cmpint(waited_ms, >=, 300); /* it did wait, then gave up */
    g_assert_cmpint(g_atomic_int_get(&so.calls), >=, 1);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.waits, ==, 1);
    g_assert_cmpuint(st.enospc, ==, 1);
    g_assert_cmpuint(st.dirty_bytes, ==, 16 * BS);
    /* The failed write changed nothing. */
    g_assert_cmpint(state(c, 1, 16), ==, CACHE_BLOCK_ABSENT);
    g_assert_cmpint(cache_read(c, 1, 16 * BS, b, BS, NULL), ==, BS);
    g_assert_cmpint(b[9], ==, ct_pattern(1, 16 * BS + 9));
    /* A write larger than the whole limit fails at once. */
    g_autofree uint8_t *big = g_malloc0(17 * BS);
    g_assert_cmpint(cache_write(c, 1, 100 * BS, big, 17 * BS, &e), ==,
                    -ENOSPC);
    g_clear_error(&e);
    cache_close(c);
}

static void test_wait_then_succeed(Fixture *f, gconstpointer data)
{
    SpaceOwner so = { .flush_after_ms = 50 };
    Cache *c = open_full(f, &so, 20000);
    /* Waits until the owner's flusher thread marks blocks clean. */
    write_blocks(c, 1, 16, 4, 0x66);
    g_thread_join(so.helper);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.waits, ==, 1);
    g_assert_cmpuint(st.enospc, ==, 0);
    g_assert_cmpuint(st.dirty_bytes, ==, 4 * BS);
    g_assert_cmpint(g_atomic_int_get(&so.calls), ==, 1);
    uint8_t b[BS];
    g_assert_cmpint(cache_read(c, 1, 19 * BS, b, BS, NULL), ==, BS);
    g_assert_cmpint(b[0], ==, 0x66);
    cache_close(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    CT_ADD("/cache/reclaim/thresholds-lru", test_thresholds_lru);
    CT_ADD("/cache/reclaim/dirty-never-evicted", test_dirty_never_evicted);
    CT_ADD("/cache/reclaim/enospc-after-wait", test_enospc_after_wait);
    CT_ADD("/cache/reclaim/wait-then-succeed", test_wait_then_succeed);
    return g_test_run();
}

/* test_cache_basic.c — the cache's directory label, bad input, reads and
 * writes with fills, truncate, dirty slices and mark_clean sequences,
 * modes (writeback / writethrough / unsafe), state files, delete, stats.
 * Single-threaded; no locks. */
#include "cache_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define BS 4096

typedef CtFixture Fixture;

static char *label_path(Fixture *f)
{
    return g_build_filename(f->dir, "cache.label", NULL);
}

static void expect_open_fails(const CacheConfig *cfg, int code,
                              const char *words)
{
    GError *e = NULL;
    Cache *c = cache_open(cfg, &e);
    g_assert_null(c);
    g_assert_error(e, CACHE_ERROR, code);
    g_assert_nonnull(strstr(e->message, words));
    g_assert_null(strchr(e->message, '\n'));
    g_error_free(e);
}

/* ------------------------------------------------------------------ */

static void test_label_reopen(Fixture *f, gconstpointer data)
{
    f->cfg.block_size = 8192;
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpuint(cache_block_size(c), ==, 8192);
    g_assert_cmpint(cache_object_create(c, 7, NULL), ==, 0);
    cache_close(c);
    g_autofree char *lp = label_path(f);
    g_assert_true(g_file_test(lp, G_FILE_TEST_IS_REGULAR));
    f->cfg.block_size = 0; /* take the directory's */
    c = ct_open(&f->cfg);
    g_assert_cmpuint(cache_block_size(c), ==, 8192);
    g_assert_true(cache_object_exists(c, 7));
    cache_close(c);
}

static void test_label_refusals(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    cache_close(c);
    g_autofree char *lp = label_path(f);
    g_autofree char *orig = NULL;
    g_assert_true(g_file_get_contents(lp, &orig, NULL, NULL));

    /* Another store. */
    CacheConfig other = f->cfg;
    other.store_id = "store-B";
    expect_open_fails(&other, EMEDIUMTYPE, "belongs to store store-A");

    /* Another block size. */
    other = f->cfg;
    other.block_size = 16384;
    expect_open_fails(&other, EINVAL, "block size");

    /* An unknown version (even with an otherwise good label). */
    g_autofree char *v99 = g_strdup(orig);
    v99[strlen("tapefs-cache ")] = '9';
    g_assert_true(g_file_set_contents(lp, v99, -1, NULL));
    expect_open_fails(&f->cfg, ENOTSUP, "format version 9");

    /* A damaged label: one byte of the store id changed. */
    g_autofree char *bad = g_strdup(orig);
    char *p = strstr(bad, "store-A");
    p[6] = 'Z';
    g_assert_true(g_file_set_contents(lp, bad, -1, NULL));
    CacheConfig z = f->cfg;
    z.store_id = "store-Z";
    expect_open_fails(&z, EBADMSG, "damaged");
    expect_open_fails(&f->cfg, EBADMSG, "damaged");

    /* Restored, it opens again: nothing was changed by the refusals. */
    g_assert_true(g_file_set_contents(lp, orig, -1, NULL));
    c = ct_open(&f->cfg);

    /* A second open of the same directory is refused while it is open. */
    expect_open_fails(&f->cfg, EBUSY, "in use");
    cache_close(c);
}

static void test_label_unlabelled_dir(Fixture *f, gconstpointer data)
{
    g_autofree char *stranger = g_build_filename(f->dir, "notes.txt", NULL);
    g_assert_true(g_file_set_contents(stranger, "mine", -1, NULL));
    expect_open_fails(&f->cfg, ENOTEMPTY, "no cache label");
    g_autofree char *lp = label_path(f);
    g_assert_false(g_file_test(lp, G_FILE_TEST_EXISTS));
    g_autofree char *lock = g_build_filename(f->dir, "cache.lock", NULL);
    g_assert_false(g_file_test(lock, G_FILE_TEST_EXISTS));

    /* A label left half-written by a crash does not make it foreign. */
    g_assert_cmpint(g_unlink(stranger), ==, 0);
    g_autofree char *half = g_build_filename(f->dir, "cache.label.tmp", NULL);
    g_assert_true(g_file_set_contents(half, "tapefs-ca", -1, NULL));
    Cache *c = ct_open(&f->cfg);
    g_assert_false(g_file_test(half, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(lp, G_FILE_TEST_IS_REGULAR));
    cache_close(c);
}

static void test_bad_config(Fixture *f, gconstpointer data)
{
    CacheConfig b = f->cfg;
    b.block_size = 1000;
    expect_open_fails(&b, EINVAL, "power of two");
    b = f->cfg;
    b.hi_pct = 50;
    b.lo_pct = 60;
    expect_open_fails(&b, EINVAL, "thresholds");
    b = f->cfg;
    b.store_id = NULL;
    expect_open_fails(&b, EINVAL, "store id");
    b = f->cfg;
    b.store_id = "two\nlines";
    expect_open_fails(&b, EINVAL, "store id");
    b = f->cfg;
    b.dir = NULL;
    expect_open_fails(&b, EINVAL, "directory");
    /* None of it labelled the directory. */
    g_autofree char *lp = label_path(f);
    g_assert_false(g_file_test(lp, G_FILE_TEST_EXISTS));
}

static void test_bad_input(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    char buf[64];
    GError *e = NULL;
    g_assert_cmpint(cache_read(c, 5, 0, buf, sizeof buf, &e), ==, -ENOENT);
    g_assert_error(e, CACHE_ERROR, ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(cache_write(c, 5, 0, buf, sizeof buf, &e), ==, -ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(cache_object_create(c, 0, &e), ==, -EINVAL);
    g_clear_error(&e);
    g_assert_cmpint(cache_object_delete(c, 5, &e), ==, -ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(cache_object_create(c, 5, NULL), ==, 0);
    g_assert_cmpint(cache_object_create(c, 5, NULL), ==, 0); /* idempotent */
    memset(buf, 0xAB, sizeof buf);
    g_assert_cmpint(cache_write(c, 5, 100, buf, sizeof buf, NULL), ==,
                    sizeof buf);
    g_assert_cmpint(cache_write(c, 5, UINT64_MAX - 10, buf, sizeof buf, &e),
                    ==, -EFBIG);
    g_clear_error(&e);
    g_assert_cmpint(cache_read(c, 5, UINT64_MAX - 10, buf, sizeof buf, &e),
                    ==, -EFBIG);
    g_clear_error(&e);
    g_assert_cmpint(cache_truncate(c, 5, UINT64_MAX, &e), ==, -EFBIG);
    g_clear_error(&e);
    uint64_t seq = 0;
    g_autoptr(GArray) sl = cache_dirty_slices(c, 5, 0, 0, &seq, NULL);
    g_assert_cmpint(cache_mark_clean(c, 5, 0, 0, seq + 1, &e), ==, -EINVAL);
    g_clear_error(&e);
    /* Nothing changed: the block is still dirty with its bytes. */
    g_assert_cmpint(cache_block_state(c, 5, 100, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    char back[64];
    g_assert_cmpint(cache_read(c, 5, 100, back, sizeof back, NULL), ==,
                    sizeof back);
    g_assert_cmpmem(back, sizeof back, buf, sizeof buf);
    cache_close(c);
}

static void test_rw_fill_sparse(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 3, NULL), ==, 0);
    /* Unwritten bytes come from the fill: the pattern. */
    g_autofree uint8_t *buf = g_malloc(3 * BS);
    g_autofree uint8_t *want = g_malloc(3 * BS);
    g_assert_cmpint(cache_read(c, 3, 1000, buf, 2 * BS, NULL), ==, 2 * BS);
    ct_fill_pattern(3, 1000, want, 2 * BS);
    g_assert_cmpmem(buf, 2 * BS, want, 2 * BS);
    g_assert_cmpint(f->fills, ==, 3); /* blocks 0, 1, 2 */
    /* A second read is served from the cache. */
    g_assert_cmpint(cache_read(c, 3, 1000, buf, 2 * BS, NULL), ==, 2 * BS);
    g_assert_cmpint(f->fills, ==, 3);
    g_assert_cmpint(cache_block_state(c, 3, 0, NULL), ==, CACHE_BLOCK_CLEAN);

    /* An unaligned write over the head and tail of blocks 4..6 keeps the
     * pattern around it (read-modify-write of filled blocks). */
    memset(buf, 0x5A, 2 * BS);
    g_assert_cmpint(cache_write(c, 3, 4 * BS + 10, buf, 2 * BS, NULL), ==,
                    2 * BS);
    g_assert_cmpint(cache_read(c, 3, 4 * BS, buf, 3 * BS, NULL), ==, 3 * BS);
    ct_fill_pattern(3, 4 * BS, want, 3 * BS);
    memset(want + 10, 0x5A, 2 * BS);
    g_assert_cmpmem(buf, 3 * BS, want, 3 * BS);
    g_assert_cmpint(cache_block_state(c, 3, 4 * BS, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_block_state(c, 3, 6 * BS, NULL), ==,
                    CACHE_BLOCK_DIRTY);

    /* A write far away keeps the file sparse. */
    uint64_t far = (uint64_t)1 << 32;
    g_assert_cmpint(cache_write(c, 3, far, buf, BS, NULL), ==, BS);
    g_autofree char *path = cache_object_path(c, 3);
    struct stat st;
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, far + BS);
    g_assert_cmpint((uint64_t)st.st_blocks * 512, <, 64 * BS);
    cache_close(c);
}

static void test_truncate(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 9, NULL), ==, 0);
    g_autofree uint8_t *buf = g_malloc(4 * BS);
    memset(buf, 0x77, 4 * BS);
    g_assert_cmpint(cache_write(c, 9, 0, buf, 4 * BS, NULL), ==, 4 * BS);
    g_assert_cmpint(cache_truncate(c, 9, BS + 100, NULL), ==, 0);
    g_assert_cmpint(cache_block_state(c, 9, 0, NULL), ==, CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_block_state(c, 9, BS, NULL), ==, CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_block_state(c, 9, 2 * BS, NULL), ==,
                    CACHE_BLOCK_ABSENT);
    g_assert_cmpint(cache_block_state(c, 9, 3 * BS, NULL), ==,
                    CACHE_BLOCK_ABSENT);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.dirty_bytes, ==, 2 * BS);
    /* The partial block is zeroed past the size. */
    g_assert_cmpint(cache_read(c, 9, BS, buf, BS, NULL), ==, BS);
    for (int i = 0; i < BS; i++)
        g_assert_cmpint(buf[i], ==, i < 100 ? 0x77 : 0);
    /* Dropped blocks are filled again by the owner. */
    gint before = f->fills;
    g_assert_cmpint(cache_read(c, 9, 3 * BS, buf, BS, NULL), ==, BS);
    g_assert_cmpint(f->fills, ==, before + 1);
    /* Truncate to 0 forgets everything. */
    g_assert_cmpint(cache_truncate(c, 9, 0, NULL), ==, 0);
    g_autoptr(GArray) sl = cache_dirty_slices(c, 9, 0, 0, NULL, NULL);
    g_assert_cmpuint(sl->len, ==, 0);
    cache_close(c);
}

static void test_slices_and_seq(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 4, NULL), ==, 0);
    g_autofree uint8_t *buf = g_malloc(8 * BS);
    memset(buf, 0x11, 8 * BS);
    /* Dirty blocks 0-1 and 4-5. */
    g_assert_cmpint(cache_write(c, 4, 0, buf, 2 * BS, NULL), ==, 2 * BS);
    g_assert_cmpint(cache_write(c, 4, 4 * BS, buf, 2 * BS, NULL), ==, 2 * BS);
    uint64_t seq = 0;
    GError *e = NULL;
    GArray *sl = cache_dirty_slices(c, 4, 0, 0, &seq, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(sl->len, ==, 2);
    CacheSlice *s0 = &g_array_index(sl, CacheSlice, 0);
    CacheSlice *s1 = &g_array_index(sl, CacheSlice, 1);
    g_autofree char *path = cache_object_path(c, 4);
    g_assert_cmpstr(s0->path, ==, path);
    g_assert_cmpuint(s0->offset, ==, 0);
    g_assert_cmpuint(s0->length, ==, 2 * BS);
    g_assert_cmpuint(s1->offset, ==, 4 * BS);
    g_assert_cmpuint(s1->length, ==, 2 * BS);
    /* The dirty bytes are in the file at the slice offset. */
    int fd = open(s1->path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_autofree uint8_t *fb = g_malloc(2 * BS);
    g_assert_cmpint(pread(fd, fb, 2 * BS, 4 * BS), ==, 2 * BS);
    close(fd);
    g_assert_cmpmem(fb, 2 * BS, buf, 2 * BS);
    g_array_unref(sl);

    /* A range limits and clips the slices. */
    sl = cache_dirty_slices(c, 4, 100, 4 * BS + 50, NULL, NULL);
    g_assert_cmpuint(sl->len, ==, 2);
    g_assert_cmpuint(g_array_index(sl, CacheSlice, 0).offset, ==, 100);
    g_assert_cmpuint(g_array_index(sl, CacheSlice, 0).length, ==,
                     2 * BS - 100);
    g_assert_cmpuint(g_array_index(sl, CacheSlice, 1).offset, ==, 4 * BS);
    g_assert_cmpuint(g_array_index(sl, CacheSlice, 1).length, ==, 150);
    g_array_unref(sl);

    /* Block 5 is written again after the list was taken: it stays dirty
     * when the list's sequence is marked clean. */
    memset(buf, 0x22, BS);
    g_assert_cmpint(cache_write(c, 4, 5 * BS + 7, buf, 10, NULL), ==, 10);
    g_assert_cmpint(cache_mark_clean(c, 4, 0, 0, seq, NULL), ==, 0);
    g_assert_cmpint(cache_block_state(c, 4, 0, NULL), ==, CACHE_BLOCK_CLEAN);
    g_assert_cmpint(cache_block_state(c, 4, BS, NULL), ==, CACHE_BLOCK_CLEAN);
    g_assert_cmpint(cache_block_state(c, 4, 4 * BS, NULL), ==,
                    CACHE_BLOCK_CLEAN);
    g_assert_cmpint(cache_block_state(c, 4, 5 * BS, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    uint64_t seq2 = 0;
    sl = cache_dirty_slices(c, 4, 0, 0, &seq2, NULL);
    g_assert_cmpuint(seq2, >, seq);
    g_assert_cmpuint(sl->len, ==, 1);
    g_assert_cmpuint(g_array_index(sl, CacheSlice, 0).offset, ==, 5 * BS);
    g_array_unref(sl);
    /* Marking only part of the object clean leaves the rest. */
    g_assert_cmpint(cache_mark_clean(c, 4, 0, 5 * BS, seq2, NULL), ==, 0);
    g_assert_cmpint(cache_block_state(c, 4, 5 * BS, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_mark_clean(c, 4, 5 * BS, 1, seq2, NULL), ==, 0);
    g_assert_cmpint(cache_block_state(c, 4, 5 * BS, NULL), ==,
                    CACHE_BLOCK_CLEAN);
    g_autoptr(GArray) ids = cache_dirty_objects(c);
    g_assert_cmpuint(ids->len, ==, 0);
    cache_close(c);
}

typedef struct {
    Cache *c;
    int flushes;
} FlushOwner;

static int flush_owner(void *owner, uint64_t id)
{
    FlushOwner *fo = owner;
    fo->flushes++;
    uint64_t seq;
    g_autoptr(GArray) sl = cache_dirty_slices(fo->c, id, 0, 0, &seq, NULL);
    g_assert_cmpuint(sl->len, >, 0);
    return cache_mark_clean(fo->c, id, 0, 0, seq, NULL);
}

static void test_modes(Fixture *f, gconstpointer data)
{
    FlushOwner fo = { 0 };
    f->cfg.flush = flush_owner;
    f->cfg.owner = &fo;
    f->cfg.fill = NULL; /* zeros */
    Cache *c = ct_open(&f->cfg);
    fo.c = c;
    g_assert_cmpint(cache_object_create(c, 2, NULL), ==, 0);
    char buf[100];
    memset(buf, 1, sizeof buf);
    CacheStats a, b;

    /* writeback: fsync syncs the cache, never calls the owner. */
    g_assert_cmpint(cache_write(c, 2, 0, buf, sizeof buf, NULL), ==, 100);
    cache_stats(c, &a);
    g_assert_cmpint(cache_fsync(c, 2, NULL), ==, 0);
    cache_stats(c, &b);
    g_assert_cmpuint(b.fsyncs, >, a.fsyncs);
    g_assert_cmpint(fo.flushes, ==, 0);
    g_assert_cmpint(cache_block_state(c, 2, 0, NULL), ==, CACHE_BLOCK_DIRTY);

    /* unsafe: fsync does nothing at all. */
    cache_set_mode(c, CACHE_UNSAFE);
    g_assert_cmpint(cache_write(c, 2, BS, buf, sizeof buf, NULL), ==, 100);
    cache_stats(c, &a);
    g_assert_cmpint(cache_fsync(c, 2, NULL), ==, 0);
    cache_stats(c, &b);
    g_assert_cmpuint(b.fsyncs, ==, a.fsyncs);
    g_assert_cmpint(fo.flushes, ==, 0);

    /* writethrough: fsync calls the owner, who cleans the blocks. */
    cache_set_mode(c, CACHE_WRITETHROUGH);
    g_assert_cmpint(cache_write(c, 2, 2 * BS, buf, sizeof buf, NULL), ==,
                    100);
    g_assert_cmpint(cache_fsync(c, 2, NULL), ==, 0);
    g_assert_cmpint(fo.flushes, ==, 1);
    cache_stats(c, &b);
    g_assert_cmpuint(b.flushes, ==, 1);
    g_assert_cmpuint(b.dirty_bytes, ==, 0);
    /* Nothing dirty: nothing to flush. */
    g_assert_cmpint(cache_fsync(c, 2, NULL), ==, 0);
    g_assert_cmpint(fo.flushes, ==, 1);
    cache_close(c);
}

/* Write, fsync, close; returns the state file's path. */
static char *make_state(Fixture *f)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 0x42, NULL), ==, 0);
    char buf[BS];
    memset(buf, 0x3C, sizeof buf);
    g_assert_cmpint(cache_write(c, 0x42, 3 * BS, buf, BS, NULL), ==, BS);
    g_assert_cmpint(cache_fsync(c, 0x42, NULL), ==, 0);
    cache_close(c);
    return g_build_filename(f->dir, "0000000000000042.state", NULL);
}

/* Opens with a damaged state file of object 0x42 in place: the open
 * succeeds, the object is quarantined, its files set aside, its reads
 * and writes fail with EIO (never zeros), and it stays so on reopen.
 * Then the files are put back as they were. */
static void open_quarantined(Fixture *f, const char *sp)
{
    g_autofree char *dp = g_build_filename(f->dir, "0000000000000042.data",
                                           NULL);
    g_autofree char *sp_aside = g_strconcat(sp, ".damaged", NULL);
    g_autofree char *dp_aside = g_strconcat(dp, ".damaged", NULL);
    g_test_expect_message("tapefs-cache", G_LOG_LEVEL_WARNING,
                          "*0000000000000042.state*quarantined*");
    Cache *c = ct_open(&f->cfg);
    g_test_assert_expected_messages();
    for (int round = 0; round < 2; round++) {
        g_autoptr(GArray) bad = cache_damaged_objects(c);
        g_assert_cmpuint(bad->len, ==, 1);
        g_assert_cmpuint(g_array_index(bad, uint64_t, 0), ==, 0x42);
        g_assert_true(cache_object_exists(c, 0x42));
        g_assert_false(g_file_test(sp, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(dp, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_test(sp_aside, G_FILE_TEST_EXISTS));
        char buf[BS];
        GError *e = NULL;
        g_assert_cmpint(cache_read(c, 0x42, 3 * BS, buf, BS, &e), ==, -EIO);
        g_assert_error(e, CACHE_ERROR, EIO);
        g_clear_error(&e);
        g_assert_cmpint(cache_read(c, 0x42, 0, buf, 10, NULL), ==, -EIO);
        g_assert_cmpint(cache_write(c, 0x42, 0, buf, 10, NULL), ==, -EIO);
        g_assert_cmpint(cache_block_state(c, 0x42, 3 * BS, NULL), ==, -EIO);
        g_assert_null(cache_dirty_slices(c, 0x42, 0, 0, NULL, NULL));
        g_autoptr(GArray) dirty = cache_dirty_objects(c);
        g_assert_cmpuint(dirty->len, ==, 0);
        cache_close(c);
        if (round == 0)
            c = ct_open(&f->cfg); /* still quarantined, no new warning */
    }
    g_assert_cmpint(g_rename(dp_aside, dp), ==, 0);
    g_assert_cmpint(g_unlink(sp_aside), ==, 0);
}

static void test_state_damaged(Fixture *f, gconstpointer data)
{
    g_autofree char *sp = make_state(f);
    g_autofree char *orig = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(sp, &orig, &len, NULL));
    g_assert_cmpuint(len, ==, 40 + 16 + 8);

    /* Every single flipped byte is detected. */
    for (gsize i = 0; i < len; i++) {
        g_autofree char *bad = g_memdup2(orig, len);
        bad[i] ^= 0x40;
        g_assert_true(g_file_set_contents(sp, bad, (gssize)len, NULL));
        open_quarantined(f, sp);
    }
    /* A short file too. */
    g_assert_true(g_file_set_contents(sp, orig, (gssize)len - 3, NULL));
    open_quarantined(f, sp);
    /* Put back: the dirty block and its bytes are all there. */
    g_assert_true(g_file_set_contents(sp, orig, (gssize)len, NULL));
    Cache *c = ct_open(&f->cfg);
    g_autoptr(GArray) none = cache_damaged_objects(c);
    g_assert_cmpuint(none->len, ==, 0);
    g_assert_cmpint(cache_block_state(c, 0x42, 3 * BS, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    char buf[BS];
    g_assert_cmpint(cache_read(c, 0x42, 3 * BS, buf, BS, NULL), ==, BS);
    for (int i = 0; i < BS; i++)
        g_assert_cmpint((uint8_t)buf[i], ==, 0x3C);
    /* Another object is not held back by a damaged one. */
    g_assert_cmpint(cache_object_create(c, 0x43, NULL), ==, 0);
    g_assert_cmpint(cache_write(c, 0x43, 0, buf, BS, NULL), ==, BS);
    cache_close(c);
    g_autofree char *bad = g_memdup2(orig, len);
    bad[len - 1] ^= 1;
    g_assert_true(g_file_set_contents(sp, bad, (gssize)len, NULL));
    g_test_expect_message("tapefs-cache", G_LOG_LEVEL_WARNING,
                          "*quarantined*");
    c = ct_open(&f->cfg);
    g_test_assert_expected_messages();
    g_assert_cmpint(cache_block_state(c, 0x43, 0, NULL), ==,
                    CACHE_BLOCK_DIRTY);
    /* Delete removes the quarantined object and its set-aside files. */
    g_assert_cmpint(cache_object_delete(c, 0x42, NULL), ==, 0);
    g_assert_false(cache_object_exists(c, 0x42));
    g_autoptr(GArray) after = cache_damaged_objects(c);
    g_assert_cmpuint(after->len, ==, 0);
    cache_close(c);
    g_autofree char *sp_aside = g_strconcat(sp, ".damaged", NULL);
    g_assert_false(g_file_test(sp_aside, G_FILE_TEST_EXISTS));
    c = ct_open(&f->cfg);
    g_assert_false(cache_object_exists(c, 0x42));
    cache_close(c);
}

static void test_state_across_close(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 8, NULL), ==, 0);
    g_assert_cmpint(cache_object_create(c, 10, NULL), ==, 0);
    char buf[300];
    memset(buf, 0x61, sizeof buf);
    g_assert_cmpint(cache_write(c, 8, BS - 150, buf, sizeof buf, NULL), ==,
                    300);
    /* A clean (filled) block of object 10 is forgotten at restart. */
    char other[10];
    g_assert_cmpint(cache_read(c, 10, 0, other, 10, NULL), ==, 10);
    cache_close(c); /* a clean close persists without fsync */
    f->fills = 0;
    c = ct_open(&f->cfg);
    g_autoptr(GArray) ids = cache_dirty_objects(c);
    g_assert_cmpuint(ids->len, ==, 1);
    g_assert_cmpuint(g_array_index(ids, uint64_t, 0), ==, 8);
    g_assert_cmpint(cache_block_state(c, 8, 0, NULL), ==, CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_block_state(c, 8, BS, NULL), ==, CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_block_state(c, 10, 0, NULL), ==,
                    CACHE_BLOCK_ABSENT);
    char back[300];
    g_assert_cmpint(cache_read(c, 8, BS - 150, back, 300, NULL), ==, 300);
    g_assert_cmpmem(back, 300, buf, 300);
    g_assert_cmpint(f->fills, ==, 0);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.dirty_bytes, ==, 2 * BS);
    cache_close(c);
}

static void test_cache_on_read(Fixture *f, gconstpointer data)
{
    char buf[BS];
    /* Off: every read fills, nothing is kept. */
    f->cfg.cache_on_read = false;
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpint(cache_read(c, 1, 5, buf, 100, NULL), ==, 100);
        g_assert_cmpint((uint8_t)buf[7], ==, ct_pattern(1, 12));
    }
    g_assert_cmpint(f->fills, ==, 3);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.clean_bytes, ==, 0);
    g_assert_cmpint(cache_block_state(c, 1, 0, NULL), ==, CACHE_BLOCK_ABSENT);
    cache_close(c);

    /* Following a path. */
    g_autofree char *flag = g_build_filename(f->dir, "keep-reads", NULL);
    f->cfg.cache_on_read_path = flag;
    f->fills = 0;
    c = ct_open(&f->cfg);
    g_assert_cmpint(cache_read(c, 1, 0, buf, BS, NULL), ==, BS);
    g_assert_cmpint(cache_block_state(c, 1, 0, NULL), ==, CACHE_BLOCK_ABSENT);
    g_assert_true(g_file_set_contents(flag, "", 0, NULL));
    g_assert_cmpint(cache_read(c, 1, 0, buf, BS, NULL), ==, BS);
    g_assert_cmpint(cache_block_state(c, 1, 0, NULL), ==, CACHE_BLOCK_CLEAN);
    g_assert_cmpint(cache_read(c, 1, 0, buf, BS, NULL), ==, BS);
    g_assert_cmpint(f->fills, ==, 2);
    cache_close(c);
}

/* The "tape" of object 1 is object 2 of the same cache. */
static Cache *reentrant_cache;

static int fill_from_other(void *owner, uint64_t id, uint64_t off, void *buf,
                           size_t len)
{
    if (id == 2)
        return ct_fill_fn(owner, id, off, buf, len);
    if (id == 6)
        return -EIO;
    ssize_t n = cache_read(reentrant_cache, 2, off, buf, len, NULL);
    return n < 0 ? (int)n : 0;
}

static void test_fill_reentrant_and_errors(Fixture *f, gconstpointer data)
{
    f->cfg.fill = fill_from_other;
    Cache *c = reentrant_cache = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    g_assert_cmpint(cache_object_create(c, 2, NULL), ==, 0);
    g_assert_cmpint(cache_object_create(c, 6, NULL), ==, 0);
    g_autofree uint8_t *buf = g_malloc(3 * BS);
    g_autofree uint8_t *want = g_malloc(3 * BS);
    /* A write into an absent block of 1 fills it from 2. */
    g_assert_cmpint(cache_write(c, 1, BS + 1, "xy", 2, NULL), ==, 2);
    g_assert_cmpint(cache_read(c, 1, 10, buf, 3 * BS, NULL), ==, 3 * BS);
    ct_fill_pattern(2, 10, want, 3 * BS);
    memcpy(want + BS + 1 - 10, "xy", 2);
    g_assert_cmpmem(buf, 3 * BS, want, 3 * BS);
    g_assert_cmpint(cache_block_state(c, 2, 0, NULL), ==, CACHE_BLOCK_CLEAN);

    /* A failing fill fails the read and the write, changing nothing. */
    GError *e = NULL;
    g_assert_cmpint(cache_read(c, 6, 0, buf, 10, &e), ==, -EIO);
    g_assert_error(e, CACHE_ERROR, EIO);
    g_clear_error(&e);
    g_assert_cmpint(cache_write(c, 6, 5, buf, 10, &e), ==, -EIO);
    g_clear_error(&e);
    g_assert_cmpint(cache_block_state(c, 6, 0, NULL), ==, CACHE_BLOCK_ABSENT);
    /* A whole-block write needs no fill. */
    g_assert_cmpint(cache_write(c, 6, 0, buf, BS, NULL), ==, BS);
    cache_close(c);
}

static void test_delete(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 12, NULL), ==, 0);
    char buf[BS];
    memset(buf, 9, sizeof buf);
    g_assert_cmpint(cache_write(c, 12, 0, buf, BS, NULL), ==, BS);
    g_assert_cmpint(cache_read(c, 12, BS, buf, BS, NULL), ==, BS);
    g_assert_cmpint(cache_fsync(c, 12, NULL), ==, 0);
    g_autofree char *path = cache_object_path(c, 12);
    g_autofree char *state = g_build_filename(f->dir,
                                              "000000000000000c.state", NULL);
    g_assert_true(g_file_test(state, G_FILE_TEST_EXISTS));
    g_assert_cmpint(cache_object_delete(c, 12, NULL), ==, 0);
    g_assert_false(cache_object_exists(c, 12));
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS));
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.dirty_bytes, ==, 0);
    g_assert_cmpuint(st.clean_bytes, ==, 0);
    GError *e = NULL;
    g_assert_cmpint(cache_read(c, 12, 0, buf, 1, &e), ==, -ENOENT);
    g_clear_error(&e);
    /* Created again, it starts empty. */
    g_assert_cmpint(cache_object_create(c, 12, NULL), ==, 0);
    g_assert_cmpint(cache_block_state(c, 12, 0, NULL), ==,
                    CACHE_BLOCK_ABSENT);
    cache_close(c);
    c = ct_open(&f->cfg);
    g_autoptr(GArray) ids = cache_dirty_objects(c);
    g_assert_cmpuint(ids->len, ==, 0);
    cache_close(c);
}

static void test_stats(Fixture *f, gconstpointer data)
{
    Cache *c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    char buf[2 * BS];
    g_assert_cmpint(cache_read(c, 1, 0, buf, 2 * BS, NULL), ==, 2 * BS);
    g_assert_cmpint(cache_read(c, 1, 100, buf, BS, NULL), ==, BS);
    g_assert_cmpint(cache_write(c, 1, 2 * BS, buf, BS, NULL), ==, BS);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.misses, ==, 2);
    g_assert_cmpuint(st.fills, ==, 2);
    g_assert_cmpuint(st.hits, ==, 2);
    g_assert_cmpuint(st.bytes_read, ==, 3 * BS);
    g_assert_cmpuint(st.bytes_written, ==, BS);
    g_assert_cmpuint(st.clean_bytes, ==, 2 * BS);
    g_assert_cmpuint(st.dirty_bytes, ==, BS);
    uint64_t d = 0, cl = 0;
    g_assert_cmpint(cache_object_usage(c, 1, &d, &cl, NULL), ==, 0);
    g_assert_cmpuint(d, ==, BS);
    g_assert_cmpuint(cl, ==, 2 * BS);
    cache_close(c);
}

/* A fill that copies the "tape" and then stalls while the owner truncates
 * the object and zeroes its tape. */
typedef struct {
    GMutex lock;
    GCond cond;
    uint8_t tape[4 * BS];
    int stage;           /* 0 first fill copying, 1 stalled, 2 go on */
    int calls;
    Cache *c;
} SlowFill;

static int slow_fill(void *owner, uint64_t id, uint64_t off, void *buf,
                     size_t len)
{
    SlowFill *sf = owner;
    g_mutex_lock(&sf->lock);
    memcpy(buf, sf->tape + off, len);
    if (sf->calls++ == 0) {
        sf->stage = 1;
        g_cond_broadcast(&sf->cond);
        while (sf->stage != 2)
            g_cond_wait(&sf->cond, &sf->lock);
    }
    g_mutex_unlock(&sf->lock);
    return 0;
}

static gpointer read_block2(gpointer data)
{
    SlowFill *sf = data;
    uint8_t buf[BS];
    g_assert_cmpint(cache_read(sf->c, 1, 2 * BS, buf, BS, NULL), ==, BS);
    return NULL;
}

static void test_fill_racing_truncate(Fixture *f, gconstpointer data)
{
    SlowFill sf = { 0 };
    g_mutex_init(&sf.lock);
    g_cond_init(&sf.cond);
    memset(sf.tape, 0xEE, sizeof sf.tape);
    f->cfg.fill = slow_fill;
    f->cfg.owner = &sf;
    Cache *c = sf.c = ct_open(&f->cfg);
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    GThread *t = g_thread_new("reader", read_block2, &sf);
    g_mutex_lock(&sf.lock);
    while (sf.stage != 1)
        g_cond_wait(&sf.cond, &sf.lock);
    g_mutex_unlock(&sf.lock);
    /* The owner truncates to 0 while the fill holds old bytes. */
    g_assert_cmpint(cache_truncate(c, 1, 0, NULL), ==, 0);
    g_mutex_lock(&sf.lock);
    memset(sf.tape, 0, sizeof sf.tape);
    sf.stage = 2;
    g_cond_broadcast(&sf.cond);
    g_mutex_unlock(&sf.lock);
    g_thread_join(t);
    /* The stale fill was not kept: the block was filled again. */
    g_assert_cmpint(sf.calls, ==, 2);
    uint8_t buf[BS], zeros[BS] = { 0 };
    g_assert_cmpint(cache_read(c, 1, 2 * BS, buf, BS, NULL), ==, BS);
    g_assert_cmpmem(buf, BS, zeros, BS);
    cache_close(c);
    g_mutex_clear(&sf.lock);
    g_cond_clear(&sf.cond);
}

static gpointer read_block1(gpointer data)
{
    SlowFill *sf = data;
    uint8_t buf[BS];
    g_assert_cmpint(cache_read(sf->c, 1, BS, buf, BS, NULL), ==, BS);
    return NULL;
}

/* Truncate down into an absent block, then extend: the owner's bytes past
 * the cut are zeros now. A fill of that partial block (or of any block
 * past the cut) that began before the truncate must not be kept, absent
 * as the block was. */
static void test_fill_racing_truncate_partial(Fixture *f, gconstpointer data)
{
    for (int variant = 0; variant < 2; variant++) {
        SlowFill sf = { 0 };
        g_mutex_init(&sf.lock);
        g_cond_init(&sf.cond);
        memset(sf.tape, 0xEE, sizeof sf.tape);
        CacheConfig cfg = f->cfg;
        cfg.fill = slow_fill;
        cfg.owner = &sf;
        Cache *c = sf.c = ct_open(&cfg);
        g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
        /* Block 0 dirty, block 1 absent (the one being filled). */
        uint8_t w[BS];
        memset(w, 0x11, BS);
        g_assert_cmpint(cache_write(c, 1, 0, w, BS, NULL), ==, BS);
        GThread *t = g_thread_new("reader", read_block1, &sf);
        g_mutex_lock(&sf.lock);
        while (sf.stage != 1)
            g_cond_wait(&sf.cond, &sf.lock);
        g_mutex_unlock(&sf.lock);
        uint64_t cut = variant == 0 ? BS + BS / 2 : BS / 2;
        g_assert_cmpint(cache_truncate(c, 1, cut, NULL), ==, 0);
        g_assert_cmpint(cache_block_state(c, 1, BS, NULL), ==,
                        CACHE_BLOCK_ABSENT);
        g_mutex_lock(&sf.lock);
        memset(sf.tape + cut, 0, sizeof sf.tape - cut); /* extended */
        sf.stage = 2;
        g_cond_broadcast(&sf.cond);
        g_mutex_unlock(&sf.lock);
        g_thread_join(t);
        uint8_t buf[BS], want[BS];
        memcpy(want, sf.tape + BS, BS);
        g_assert_cmpint(cache_read(c, 1, BS, buf, BS, NULL), ==, BS);
        g_assert_cmpmem(buf, BS, want, BS);
        /* A write into the block merges with the new bytes too. */
        g_assert_cmpint(cache_write(c, 1, BS + 8, w, 8, NULL), ==, 8);
        memcpy(want + 8, w, 8);
        g_assert_cmpint(cache_read(c, 1, BS, buf, BS, NULL), ==, BS);
        g_assert_cmpmem(buf, BS, want, BS);
        g_assert_cmpint(cache_object_delete(c, 1, NULL), ==, 0);
        cache_close(c);
        g_mutex_clear(&sf.lock);
        g_cond_clear(&sf.cond);
    }
}

static void test_open_files_budget(Fixture *f, gconstpointer data)
{
    f->cfg.max_open_files = 3;
    Cache *c = ct_open(&f->cfg);
    char buf[32], back[32];
    for (uint64_t id = 1; id <= 20; id++) {
        g_assert_cmpint(cache_object_create(c, id, NULL), ==, 0);
        memset(buf, (int)id, sizeof buf);
        g_assert_cmpint(cache_write(c, id, id * 1000, buf, sizeof buf, NULL),
                        ==, sizeof buf);
        g_assert_cmpint(ct_open_data_files(), <=, 4);
    }
    /* Every object still reads back, its file opened again as needed. */
    for (int round = 0; round < 2; round++) {
        for (uint64_t id = 1; id <= 20; id++) {
            g_assert_cmpint(cache_read(c, id, id * 1000, back, sizeof back,
                                       NULL), ==, sizeof back);
            memset(buf, (int)id, sizeof buf);
            g_assert_cmpmem(back, sizeof back, buf, sizeof buf);
            g_assert_cmpint(ct_open_data_files(), <=, 4);
        }
    }
    for (uint64_t id = 1; id <= 20; id += 2)
        g_assert_cmpint(cache_object_delete(c, id, NULL), ==, 0);
    g_assert_cmpint(ct_open_data_files(), <=, 4);
    cache_close(c);
    g_assert_cmpint(ct_open_data_files(), ==, 0);
    c = ct_open(&f->cfg);
    /* Loading the dirty objects keeps to the budget too. */
    g_assert_cmpint(ct_open_data_files(), <=, 4);
    g_autoptr(GArray) ids = cache_dirty_objects(c);
    g_assert_cmpuint(ids->len, ==, 10);
    cache_close(c);
}

/* The budget fits the process's open-file limit: at open it is at most a
 * quarter of the soft limit; and when the rest of the process takes the
 * descriptors the budget counted on, the cache's opens that fail with
 * EMFILE give files back and succeed. The limit is put back at the end. */
static void test_open_files_rlimit(Fixture *f, gconstpointer data)
{
    (void)data;
    struct rlimit old, rl;
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
    rl = old;
    rl.rlim_cur = MIN((rlim_t)64, old.rlim_max);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    f->cfg.max_open_files = 1000;
    Cache *c = ct_open(&f->cfg);
    char buf[32], back[32];
    for (uint64_t id = 1; id <= 300; id++) {
        g_assert_cmpint(cache_object_create(c, id, NULL), ==, 0);
        memset(buf, (int)id, sizeof buf);
        g_assert_cmpint(cache_write(c, id, id * 100, buf, sizeof buf, NULL),
                        ==, sizeof buf);
        g_assert_cmpint(cache_fsync(c, id, NULL), ==, 0);
        g_assert_cmpint(ct_open_data_files(), <=, 64 / 4 + 1);
    }
    cache_close(c);

    /* A second cache opened with room for 256 files; then the process
     * takes all but 40 of its 1024 descriptors. */
    g_autofree char *dir2 = g_build_filename(f->dir, "second", NULL);
    CacheConfig cfg2 = f->cfg;
    cfg2.dir = dir2;
    rl.rlim_cur = MIN((rlim_t)1024, old.rlim_max);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    c = ct_open(&cfg2);
    GArray *taken = g_array_new(FALSE, FALSE, sizeof(int));
    int fd;
    while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0 &&
           fd < (int)rl.rlim_cur - 40)
        g_array_append_val(taken, fd);
    if (fd >= 0)
        close(fd);
    for (uint64_t id = 1; id <= 300; id++) {
        g_assert_cmpint(cache_object_create(c, id, NULL), ==, 0);
        memset(buf, (int)id, sizeof buf);
        g_assert_cmpint(cache_write(c, id, id * 100, buf, sizeof buf, NULL),
                        ==, sizeof buf);
        g_assert_cmpint(cache_fsync(c, id, NULL), ==, 0);
    }
    g_assert_cmpint(ct_open_data_files(), <, 40);
    for (uint64_t id = 1; id <= 300; id++) {
        g_assert_cmpint(cache_read(c, id, id * 100, back, sizeof back, NULL),
                        ==, sizeof back);
        memset(buf, (int)id, sizeof buf);
        g_assert_cmpmem(back, sizeof back, buf, sizeof buf);
    }
    for (guint i = 0; i < taken->len; i++)
        close(g_array_index(taken, int, i));
    g_array_free(taken, TRUE);
    g_autoptr(GArray) ids = cache_dirty_objects(c);
    g_assert_cmpuint(ids->len, ==, 300);
    cache_close(c);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
}

/* cache_object_usage answers whether an object's blocks are present
 * (dirty or clean) and never loads an object just to answer. */
static void test_object_usage(Fixture *f, gconstpointer data)
{
    (void)data;
    Cache *c = ct_open(&f->cfg);
    uint64_t d = 1, cl = 1;
    char buf[2 * BS];
    g_assert_cmpint(cache_object_create(c, 1, NULL), ==, 0);
    g_assert_cmpint(cache_object_create(c, 2, NULL), ==, 0);
    g_assert_cmpint(cache_object_usage(c, 1, &d, &cl, NULL), ==, 0);
    g_assert_cmpuint(d + cl, ==, 0);
    memset(buf, 7, sizeof buf);
    g_assert_cmpint(cache_write(c, 1, 0, buf, sizeof buf, NULL), ==, sizeof buf);
    g_assert_cmpint(cache_object_usage(c, 1, &d, &cl, NULL), ==, 0);
    g_assert_cmpuint(d, ==, 2 * BS);
    g_assert_cmpuint(cl, ==, 0);
    uint64_t seq;
    g_autoptr(GArray) sl = cache_dirty_slices(c, 1, 0, 0, &seq, NULL);
    g_assert_cmpint(cache_mark_clean(c, 1, 0, 0, seq, NULL), ==, 0);
    g_assert_cmpint(cache_object_usage(c, 1, &d, &cl, NULL), ==, 0);
    g_assert_cmpuint(d, ==, 0);
    g_assert_cmpuint(cl, ==, 2 * BS);
    /* A read that fills one block of object 2 keeps it (cache-on-read). */
    g_assert_cmpint(cache_read(c, 2, BS + 10, buf, 10, NULL), ==, 10);
    g_assert_cmpint(cache_object_usage(c, 2, &d, &cl, NULL), ==, 0);
    g_assert_cmpuint(d, ==, 0);
    g_assert_cmpuint(cl, ==, BS);
    g_assert_cmpint(cache_drop_clean(c, 0, NULL), ==, 0);
    for (uint64_t id = 1; id <= 2; id++) {
        g_assert_cmpint(cache_object_usage(c, id, &d, &cl, NULL), ==, 0);
        g_assert_cmpuint(d + cl, ==, 0);
    }
    g_autoptr(GError) e = NULL;
    g_assert_cmpint(cache_object_usage(c, 99, &d, &cl, &e), ==, -ENOENT);
    g_assert_error(e, CACHE_ERROR, ENOENT);
    cache_close(c);
    /* After a restart objects with nothing dirty are not loaded; asking
     * about one leaves it so. */
    c = ct_open(&f->cfg);
    CacheStats st;
    cache_stats(c, &st);
    g_assert_cmpuint(st.objects, ==, 0);
    d = cl = 1;
    g_assert_cmpint(cache_object_usage(c, 1, &d, &cl, NULL), ==, 0);
    g_assert_cmpuint(d + cl, ==, 0);
    cache_stats(c, &st);
    g_assert_cmpuint(st.objects, ==, 0);
    g_assert_cmpint(cache_object_usage(c, 99, &d, &cl, NULL), ==, -ENOENT);
    cache_close(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    CT_ADD("/cache/label/reopen", test_label_reopen);
    CT_ADD("/cache/label/refusals", test_label_refusals);
    CT_ADD("/cache/label/unlabelled-dir", test_label_unlabelled_dir);
    CT_ADD("/cache/config/bad", test_bad_config);
    CT_ADD("/cache/input/bad", test_bad_input);
    CT_ADD("/cache/io/fill-rmw-sparse", test_rw_fill_sparse);
    CT_ADD("/cache/io/truncate", test_truncate);
    CT_ADD("/cache/flush/slices-and-stale-seq", test_slices_and_seq);
    CT_ADD("/cache/flush/modes", test_modes);
    CT_ADD("/cache/state/damaged", test_state_damaged);
    CT_ADD("/cache/state/across-close", test_state_across_close);
    CT_ADD("/cache/read/cache-on-read", test_cache_on_read);
    CT_ADD("/cache/read/fill-reentrant-and-errors",
        test_fill_reentrant_and_errors);
    CT_ADD("/cache/object/delete", test_delete);
    CT_ADD("/cache/stats", test_stats);
    CT_ADD("/cache/object/open-files-budget", test_open_files_budget);
    CT_ADD("/cache/object/open-files-rlimit", test_open_files_rlimit);
    CT_ADD("/cache/object/usage", test_object_usage);
    CT_ADD("/cache/read/fill-racing-truncate", test_fill_racing_truncate);
    CT_ADD("/cache/read/fill-racing-truncate-partial",
        test_fill_racing_truncate_partial);
    return g_test_run();
}

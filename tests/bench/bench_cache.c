/* bench_cache.c — block cache throughput against plain files on the same
 * disk, in the same run.
 *
 *   cache.seq_write_2GiB   2 GiB written in 1 MiB cache_write calls into
 *                          one object, against write() of the same bytes
 *                          to a plain file (MiB/s; page cache speed: no
 *                          fsync in either). The two are interleaved in
 *                          8 MiB segments within each run, because on a
 *                          shared machine the kernel's cost of a 2 GiB
 *                          write varies several-fold from one second to
 *                          the next.
 *   cache.rand_read_4KiB   random aligned 4 KiB cache_read calls of cached
 *                          (clean) blocks, against pread() of the same
 *                          offsets in a plain file holding the same bytes,
 *                          both warm in the page cache (ops/s); the two
 *                          interleave in batches of 2000 reads
 *
 * Each figure is the median of bench_runs() runs; the order of measured
 * and baseline alternates between runs. Single-threaded; no locks.
 */
#include "bench.h"
#include "cache/cache.h"

#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define STORE "bench-store"

static void die(const char *what, GError *e)
{
    fprintf(stderr, "bench-cache: %s: %s\n", what, e ? e->message : "failed");
    exit(1);
}

static Cache *open_cache(const char *dir)
{
    CacheConfig cfg = { 0 };
    cfg.dir = dir;
    cfg.store_id = STORE;
    cfg.cache_on_read = true;
    cfg.mode = CACHE_WRITEBACK;
    GError *e = NULL;
    Cache *c = cache_open(&cfg, &e);
    if (!c)
        die("cache_open", e);
    if (cache_object_create(c, 1, &e) < 0)
        die("create", e);
    return c;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

/* One run: 2 GiB into a cache object and 2 GiB into a plain file,
 * interleaved in 8 MiB segments (which goes first alternates), so that
 * both see the same page-cache and writeback conditions. */
static void seq_write_run(const char *dir, const uint8_t *buf, uint64_t total,
                          double *tc, double *tp)
{
    const uint64_t seg = 8u << 20;
    g_autofree char *cdir = g_build_filename(dir, "cache", NULL);
    g_autofree char *path = g_build_filename(dir, "plain", NULL);
    Cache *c = open_cache(cdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("open plain file", NULL);
    GError *e = NULL;
    *tc = *tp = 0;
    sync(); /* no dirty pages of earlier runs in flight */
    for (uint64_t base = 0, k = 0; base < total; base += seg, k++) {
        uint64_t end = MIN(total, base + seg);
        for (int turn = 0; turn < 2; turn++) {
            bool cache_turn = (turn == 0) == (k % 2 == 0);
            double t0 = bench_now();
            for (uint64_t off = base; off < end; off += CHUNK) {
                if (cache_turn) {
                    if (cache_write(c, 1, off, buf, CHUNK, &e) != CHUNK)
                        die("cache_write", e);
                } else if (write(fd, buf, CHUNK) != CHUNK) {
                    die("write", NULL);
                }
            }
            *(cache_turn ? tc : tp) += bench_now() - t0;
        }
    }
    close(fd);
    cache_close(c);
    bench_rmtree(dir);
}

static void bench_seq_write(void)
{
    uint64_t total = (uint64_t)((double)(2ull << 30) * bench_scale());
    total -= total % CHUNK;
    if (total == 0)
        total = CHUNK;
    uint8_t *buf = g_malloc(CHUNK);
    fill_random(buf, CHUNK, 42);
    int runs = bench_runs();
    double *tc = g_new(double, runs), *tp = g_new(double, runs);
    for (int r = 0; r < runs; r++) {
        g_autofree char *dir = bench_tmpdir("cache-seq");
        seq_write_run(dir, buf, total, &tc[r], &tp[r]);
        fprintf(stderr, "seq_write run %d: cache %.3f s, plain %.3f s\n", r,
                tc[r], tp[r]);
    }
    double mib = (double)total / (1 << 20);
    bench_report("cache.seq_write_2GiB", mib / bench_median(tc, runs),
                 mib / bench_median(tp, runs), "MiB/s", 0.8);
    g_free(tc);
    g_free(tp);
    g_free(buf);
}

static void bench_rand_read(void)
{
    uint64_t total = (uint64_t)((double)(256ull << 20) * bench_scale());
    total -= total % CHUNK;
    if (total == 0)
        total = CHUNK;
    const size_t nops = 400000;
    g_autofree char *dir = bench_tmpdir("cache-rand");
    g_autofree char *cdir = g_build_filename(dir, "cache", NULL);
    g_autofree char *path = g_build_filename(dir, "plain", NULL);
    Cache *c = open_cache(cdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("open plain file", NULL);
    uint8_t *buf = g_malloc(CHUNK);
    GError *e = NULL;
    for (uint64_t off = 0; off < total; off += CHUNK) {
        fill_random(buf, CHUNK, off + 7);
        if (cache_write(c, 1, off, buf, CHUNK, &e) != CHUNK)
            die("cache_write", e);
        if (pwrite(fd, buf, CHUNK, (off_t)off) != CHUNK)
            die("pwrite", NULL);
    }
    uint64_t seq;
    GArray *sl = cache_dirty_slices(c, 1, 0, 0, &seq, &e);
    if (!sl || cache_mark_clean(c, 1, 0, 0, seq, &e) < 0)
        die("mark clean", e);
    g_array_unref(sl);

    uint64_t *offs = g_new(uint64_t, nops);
    uint64_t x = 12345;
    for (size_t i = 0; i < nops; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        offs[i] = ((x >> 17) % (total / 4096)) * 4096;
    }
    int runs = bench_runs();
    double *tc = g_new(double, runs), *tp = g_new(double, runs);
    uint8_t page[4096];
    uint64_t sum = 0;
    const size_t batch = 2000; /* measured and baseline interleave */
    for (int r = 0; r < runs; r++) {
        tc[r] = tp[r] = 0;
        for (size_t b0 = 0, k = 0; b0 < nops; b0 += batch, k++) {
            size_t b1 = MIN(nops, b0 + batch);
            for (int turn = 0; turn < 2; turn++) {
                bool cache_turn = (turn == 0) == ((k + (size_t)r) % 2 == 0);
                double t0 = bench_now();
                if (cache_turn) {
                    for (size_t i = b0; i < b1; i++) {
                        if (cache_read(c, 1, offs[i], page, 4096, &e) != 4096)
                            die("cache_read", e);
                        sum += page[i % 4096];
                    }
                    tc[r] += bench_now() - t0;
                } else {
                    for (size_t i = b0; i < b1; i++) {
                        if (pread(fd, page, 4096, (off_t)offs[i]) != 4096)
                            die("pread", NULL);
                        sum += page[i % 4096];
                    }
                    tp[r] += bench_now() - t0;
                }
            }
        }
    }
    CacheStats st;
    cache_stats(c, &st);
    if (st.misses != 0 || sum == 0)
        die("rand_read: blocks were not all cached", NULL);
    bench_report("cache.rand_read_4KiB", (double)nops / bench_median(tc, runs),
                 (double)nops / bench_median(tp, runs), "ops/s", 0.8);
    close(fd);
    cache_close(c);
    bench_rmtree(dir);
    g_free(offs);
    g_free(tc);
    g_free(tp);
    g_free(buf);
}

int main(void)
{
    bench_seq_write();
    bench_rand_read();
    return 0;
}

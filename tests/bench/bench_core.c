/* bench_core.c — throughput of the core: one 2 GiB file and 20,000 small
 * files (1-64 KiB) written through the core API and synced (flushed to
 * virtual tape with an index), against writing the same bytes twice to
 * plain files (the physical work: one copy in the cache, one on tape; the
 * tape-like copy is one stream made durable with fdatasync); then reading
 * everything back after a cache drop (so it comes from the volumes)
 * against reading the plain copy with its pages dropped. Figures: median
 * of bench_runs() runs, "core.write_flush" and "core.read_back" in MiB/s.
 * Single-threaded driver; the core runs its own flusher thread. */
#include "bench.h"

#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((uint64_t)1024 * 1024)
#define CHUNK (1 * MiB)

typedef struct {
    uint64_t big;        /* bytes of the big file */
    unsigned nsmall;
    uint32_t *small_len; /* per small file */
    uint64_t total;
} Work;

static void die(const char *what, GError *err)
{
    fprintf(stderr, "bench-core: %s: %s\n", what, err ? err->message : g_strerror(errno));
    exit(1);
}

static const uint8_t *bytes_at(const uint8_t *pool, uint64_t off)
{
    return pool + (off % (16 * MiB));
}

static void drop_tree_pages(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, n, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            drop_tree_pages(p);
        else
            bench_drop_file_cache(p);
    }
    g_dir_close(d);
}

/* ---- baseline ---------------------------------------------------------- */

static void write_all(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w <= 0)
            die("write", NULL);
        buf += w;
        n -= (size_t)w;
    }
}

static double baseline_write(const Work *w, const uint8_t *pool, const char *dir)
{
    g_autofree char *copy1 = g_build_filename(dir, "copy1", NULL);
    g_mkdir_with_parents(copy1, 0755);
    g_autofree char *stream = g_build_filename(dir, "stream", NULL);
    double t0 = bench_now();
    /* copy 1: one plain file per file (the cache) */
    g_autofree char *bigp = g_build_filename(copy1, "big", NULL);
    int fd = open(bigp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (uint64_t at = 0; at < w->big; at += CHUNK)
        write_all(fd, bytes_at(pool, at), (size_t)MIN(CHUNK, w->big - at));
    close(fd);
    uint64_t off = w->big;
    for (unsigned i = 0; i < w->nsmall; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "s%05u", i);
        g_autofree char *p = g_build_filename(copy1, name, NULL);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write_all(fd, bytes_at(pool, off), w->small_len[i]);
        close(fd);
        off += w->small_len[i];
    }
    /* copy 2: the same bytes as one durable stream (the tape) */
    fd = open(stream, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (uint64_t at = 0; at < w->big; at += CHUNK)
        write_all(fd, bytes_at(pool, at), (size_t)MIN(CHUNK, w->big - at));
    off = w->big;
    for (unsigned i = 0; i < w->nsmall; i++) {
        write_all(fd, bytes_at(pool, off), w->small_len[i]);
        off += w->small_len[i];
    }
    if (fdatasync(fd) < 0)
        die("fdatasync", NULL);
    close(fd);
    return bench_now() - t0;
}

static double baseline_read(const Work *w, const char *dir, uint8_t *buf)
{
    g_autofree char *copy1 = g_build_filename(dir, "copy1", NULL);
    drop_tree_pages(copy1);
    double t0 = bench_now();
    g_autofree char *bigp = g_build_filename(copy1, "big", NULL);
    int fd = open(bigp, O_RDONLY);
    uint64_t got = 0;
    ssize_t n;
    while ((n = read(fd, buf, CHUNK)) > 0)
        got += (uint64_t)n;
    close(fd);
    for (unsigned i = 0; i < w->nsmall; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "s%05u", i);
        g_autofree char *p = g_build_filename(copy1, name, NULL);
        fd = open(p, O_RDONLY);
        while ((n = read(fd, buf, CHUNK)) > 0)
            got += (uint64_t)n;
        close(fd);
    }
    if (got != w->total)
        die("baseline read: short", NULL);
    return bench_now() - t0;
}

/* ---- the core ---------------------------------------------------------- */

static double run_core_write(const Work *w, const uint8_t *pool, Core *c)
{
    GError *e = NULL;
    CoreCred cred = { getuid(), getgid() };
    double t0 = bench_now();
    struct stat st;
    uint64_t fh;
    if (core_create(c, CORE_ROOT_INO, "big", 0644, O_WRONLY | O_CREAT, &cred, &st, &fh, &e) < 0)
        die("create", e);
    for (uint64_t at = 0; at < w->big; at += CHUNK) {
        size_t n = (size_t)MIN(CHUNK, w->big - at);
        if (core_write(c, st.st_ino, fh, bytes_at(pool, at), n, (off_t)at, &e) != (ssize_t)n)
            die("write", e);
    }
    core_release(c, st.st_ino, fh, NULL);
    core_forget(c, st.st_ino, 1);
    double t1 = bench_now();
    struct stat d;
    if (core_mkdir(c, CORE_ROOT_INO, "small", 0755, &cred, &d, &e) < 0)
        die("mkdir", e);
    uint64_t off = w->big;
    for (unsigned i = 0; i < w->nsmall; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "s%05u", i);
        if (core_create(c, d.st_ino, name, 0644, O_WRONLY | O_CREAT, &cred, &st, &fh, &e) < 0)
            die("create", e);
        if (core_write(c, st.st_ino, fh, bytes_at(pool, off), w->small_len[i], 0, &e) !=
            (ssize_t)w->small_len[i])
            die("write", e);
        core_release(c, st.st_ino, fh, NULL);
        core_forget(c, st.st_ino, 1);
        off += w->small_len[i];
    }
    double t2 = bench_now();
    if (core_sync(c, &e) < 0)
        die("sync", e);
    double t3 = bench_now();
    fprintf(stderr, "  core: big file %.2f s, small files %.2f s, sync %.2f s\n", t1 - t0,
            t2 - t1, t3 - t2);
    return t3 - t0;
}

static void read_file(Core *c, uint64_t ino, uint8_t *buf, uint64_t *got)
{
    GError *e = NULL;
    uint64_t fh;
    if (core_open(c, ino, O_RDONLY, &fh, &e) < 0)
        die("open", e);
    for (;;) {
        ssize_t n = core_read(c, ino, fh, buf, CHUNK, (off_t)*got, &e);
        if (n < 0)
            die("read", e);
        if (n == 0)
            break;
        *got += (uint64_t)n;
    }
    core_release(c, ino, fh, NULL);
}

static double core_read_back(const Work *w, Core *c, const char *libdir, uint8_t *buf)
{
    GError *e = NULL;
    if (core_drop_cache(c, &e) < 0)
        die("drop cache", e);
    drop_tree_pages(libdir);
    double t0 = bench_now();
    uint64_t total = 0;
    struct stat st, d;
    if (core_lookup(c, CORE_ROOT_INO, "big", &st, &e) < 0)
        die("lookup", e);
    uint64_t got = 0;
    read_file(c, st.st_ino, buf, &got);
    total += got;
    double t1 = bench_now();
    if (core_lookup(c, CORE_ROOT_INO, "small", &d, &e) < 0)
        die("lookup", e);
    for (unsigned i = 0; i < w->nsmall; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "s%05u", i);
        if (core_lookup(c, d.st_ino, name, &st, &e) < 0)
            die("lookup", e);
        got = 0;
        /* read_file reads from offset `got` on: whole file */
        read_file(c, st.st_ino, buf, &got);
        total += got;
        core_forget(c, st.st_ino, 1);
    }
    if (total != w->total)
        die("core read: short", NULL);
    double t2 = bench_now();
    fprintf(stderr, "  core: read big file %.2f s, small files %.2f s\n", t1 - t0, t2 - t1);
    return t2 - t0;
}

int main(void)
{
    double scale = bench_scale();
    Work w = { .big = (uint64_t)(2048 * scale) * MiB, .nsmall = (unsigned)(20000 * scale) };
    if (w.big < 16 * MiB)
        w.big = 16 * MiB;
    if (w.nsmall < 100)
        w.nsmall = 100;
    w.small_len = g_new(uint32_t, w.nsmall);
    GRand *r = g_rand_new_with_seed(42);
    w.total = w.big;
    for (unsigned i = 0; i < w.nsmall; i++) {
        w.small_len[i] = (uint32_t)g_rand_int_range(r, 1024, 64 * 1024 + 1);
        w.total += w.small_len[i];
    }
    g_rand_free(r);
    uint8_t *pool = g_malloc(16 * MiB + CHUNK);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < 16 * MiB + CHUNK; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pool + i, &x, 8);
    }
    uint8_t *buf = g_malloc(CHUNK);
    int runs = bench_runs();
    double *bw = g_new(double, runs), *cw = g_new(double, runs);
    double *br = g_new(double, runs), *cr = g_new(double, runs);
    double mib = (double)w.total / MiB;
    for (int i = 0; i < runs; i++) {
        /* The baseline's tree is removed only after the core's run:
         * removing 20,000 files right before the core creates its own
         * would make the core pay for the filesystem's bookkeeping of
         * recently deleted inodes (ext4 scans them when allocating) that
         * the baseline never meets. */
        char *bdir = bench_tmpdir("core-baseline");
        bw[i] = mib / baseline_write(&w, pool, bdir);
        br[i] = mib / baseline_read(&w, bdir, buf);

        char *dir = bench_tmpdir("core-store");
        g_autofree char *store = g_build_filename(dir, "store", NULL);
        g_autofree char *lib = g_build_filename(store, "library", NULL);
        CoreMkfsOptions mo;
        core_mkfs_options_init(&mo);
        mo.volumes = 2;
        mo.volume_size = w.total + 512 * MiB;
        mo.part_size = 256 * MiB;
        mo.block_size = 64 * 1024;
        GError *e = NULL;
        if (core_store_create(store, &mo, &e) < 0)
            die("mkfs", e);
        CoreOpenOptions oo;
        core_open_options_init(&oo);
        oo.ring_size = 32 * MiB;
        oo.sync_interval = 0;
        Core *c = core_store_open(store, &oo, &e);
        if (!c)
            die("open", e);
        cw[i] = mib / run_core_write(&w, pool, c);
        cr[i] = mib / core_read_back(&w, c, lib, buf);
        if (core_store_close(c, &e) < 0)
            die("close", e);
        bench_rmtree(dir);
        g_free(dir);
        bench_rmtree(bdir);
        g_free(bdir);
        fprintf(stderr, "run %d: write+flush %.1f MiB/s (plain x2 %.1f), read back %.1f MiB/s "
                "(plain %.1f)\n", i + 1, cw[i], bw[i], cr[i], br[i]);
    }
    bench_report("core.write_flush", bench_median(cw, (size_t)runs),
                 bench_median(bw, (size_t)runs), "MiB/s", 0.8);
    bench_report("core.read_back", bench_median(cr, (size_t)runs),
                 bench_median(br, (size_t)runs), "MiB/s", 0.8);
    g_free(bw);
    g_free(cw);
    g_free(br);
    g_free(cr);
    g_free(buf);
    g_free(pool);
    g_free(w.small_len);
    return 0;
}

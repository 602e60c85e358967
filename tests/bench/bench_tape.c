/* bench_tape.c — throughput of the taper: a 2 GiB dumpfile pushed from
 * memory into a virtual library (part size 256 MiB, one volume big enough
 * for all of it), against plain write() of the same bytes to one file on
 * the same disk. Both end durable: the taper reports a part only after
 * fdatasync, and the baseline calls fdatasync before its clock stops.
 * Runs alternate between the two; the figure is the median of
 * bench_runs() runs of each. Single-threaded driver; the taper runs its
 * own device thread. */
#include "bench.h"

#include "tape/tape.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((uint64_t)1024 * 1024)
#define CHUNK (64 * MiB)          /* bytes per push / write() call */
#define BLOCK_SIZE (1024 * 1024)
#define PART_SIZE (256 * MiB)
#define RING_SIZE (32 * MiB)

static void die(const char *what, GError *err)
{
    fprintf(stderr, "bench-tape: %s: %s\n", what,
            err ? err->message : g_strerror(errno));
    exit(1);
}

static double run_baseline(const uint8_t *buf, uint64_t total)
{
    char *dir = bench_tmpdir("tape-baseline");
    g_autofree char *path = g_build_filename(dir, "plain", NULL);
    double t0 = bench_now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open", NULL);
    for (uint64_t done = 0; done < total;) {
        size_t n = (size_t)MIN((uint64_t)CHUNK, total - done);
        ssize_t w = write(fd, buf, n);
        if (w <= 0)
            die("write", NULL);
        done += (uint64_t)w;
    }
    if (fdatasync(fd) < 0)
        die("fdatasync", NULL);
    close(fd);
    double secs = bench_now() - t0;
    bench_rmtree(dir);
    g_free(dir);
    return secs;
}

static void count_part(const TapePartDone *d, void *user)
{
    unsigned *parts = user;
    if (d->successful)
        (*parts)++;
}

static double run_taper(const uint8_t *buf, uint64_t total)
{
    char *dir = bench_tmpdir("tape-taper");
    g_autofree char *libdir = g_build_filename(dir, "library", NULL);
    GError *err = NULL;
    if (tape_library_format(libdir, "bench-store", 1, total + 64 * MiB,
                            BLOCK_SIZE, &err) < 0)
        die("format", err);
    TapeLibrary *lib = tape_library_open(libdir, "bench-store", &err);
    if (!lib)
        die("open library", err);
    TapeTaperConfig cfg = {.part_size = PART_SIZE, .ring_size = RING_SIZE};
    TapeTaper *t = tape_taper_new(lib, &cfg);
    unsigned parts = 0;
    double t0 = bench_now();
    if (tape_taper_start(t, 1, 0, 0, count_part, &parts, &err) < 0)
        die("start", err);
    for (uint64_t done = 0; done < total;) {
        size_t n = (size_t)MIN((uint64_t)CHUNK, total - done);
        if (tape_taper_push(t, buf, n, &err) < 0)
            die("push", err);
        done += n;
    }
    if (tape_taper_finish(t, &err) < 0)
        die("finish", err);
    double secs = bench_now() - t0;
    uint64_t want = (total + PART_SIZE - 1) / PART_SIZE;
    if (parts != want) {
        fprintf(stderr, "bench-tape: %u parts written, expected %" G_GUINT64_FORMAT
                "\n", parts, want);
        exit(1);
    }
    tape_taper_free(t);
    tape_library_close(lib);
    bench_rmtree(dir);
    g_free(dir);
    return secs;
}

int main(void)
{
    uint64_t total = (uint64_t)(2048 * bench_scale()) * MiB;
    if (total < CHUNK)
        total = CHUNK;
    uint8_t *buf = g_malloc(CHUNK);
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < CHUNK; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    /* One unmeasured round first: the first writes after boot pay for
     * fresh page-cache memory, which would penalise whichever goes first. */
    run_baseline(buf, total);
    int runs = bench_runs();
    double *base = g_new(double, runs), *tape = g_new(double, runs);
    double mib = (double)total / MiB;
    for (int i = 0; i < runs; i++) {
        base[i] = mib / run_baseline(buf, total);
        tape[i] = mib / run_taper(buf, total);
        fprintf(stderr, "run %d: write() %.1f MiB/s, taper %.1f MiB/s\n",
                i + 1, base[i], tape[i]);
    }
    bench_report("tape.write_2GiB", bench_median(tape, (size_t)runs),
                 bench_median(base, (size_t)runs), "MiB/s", 0.9);
    g_free(base);
    g_free(tape);
    g_free(buf);
    return 0;
}

/* bench_util.c — timing, medians, scratch directories and JSON output for
 * the benchmark programs (see bench.h). Single-threaded; no locks. */
#include "bench.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_runs(void)
{
    const char *s = g_getenv("TAPEFS_BENCH_RUNS");
    int n = s ? atoi(s) : 5;
    return n > 0 ? n : 5;
}

double bench_scale(void)
{
    const char *s = g_getenv("TAPEFS_BENCH_SCALE");
    double f = s ? g_ascii_strtod(s, NULL) : 1.0;
    return (f > 0 && f <= 1) ? f : 1.0;
}

char *bench_tmpdir(const char *tag)
{
    const char *base = g_getenv("TAPEFS_BENCH_DIR");
    g_autofree char *parent = g_strdup(base ? base : "bench-tmp");
    g_mkdir_with_parents(parent, 0700);
    g_autofree char *tmpl = g_strdup_printf("%s/%s-XXXXXX", parent, tag);
    char *dir = g_mkdtemp(g_steal_pointer(&tmpl));
    if (!dir) {
        fprintf(stderr, "bench: cannot create a scratch directory in %s\n", parent);
        exit(2);
    }
    return dir;
}

void bench_rmtree(const char *path)
{
    g_autofree char *q = g_shell_quote(path);
    g_autofree char *cmd = g_strdup_printf("rm -rf -- %s", q);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", path);
}

void bench_drop_file_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

void bench_report(const char *name, double value, double baseline,
                  const char *unit, double target)
{
    double ratio = baseline > 0 ? value / baseline : 0;
    printf("{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\", "
           "\"baseline\": %.3f, \"ratio\": %.3f, \"target\": %.2f}\n",
           name, value, unit, baseline, ratio, target);
    fflush(stdout);
}
